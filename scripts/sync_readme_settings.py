"""Rewrite the README's settings table from the code: `.venv/bin/python scripts/sync_readme_settings.py`."""

from pathlib import Path

from app.config_display import settings_reference

README = Path(__file__).resolve().parents[1] / "README.md"
text = README.read_text()
start = text.index("| variable | default | meaning |")
end = text.index("\n\n", start)
README.write_text(text[:start] + settings_reference() + text[end:])
