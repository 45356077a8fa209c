"""What the console shows of agent- and user-produced text: escapes removed, HTML inert."""

from __future__ import annotations

from app.domain.text import strip_terminal_escapes
from app.web.console.format import agent_log, markdown, web_url


def test_terminal_sequences_are_removed_and_text_kept():
    hostile = (
        "\x1b[31mred\x1b[0m \x1b]0;title\x07ok\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ "
        "\x9b2Jdone\r\nnext\x00\x7f"
    )
    assert strip_terminal_escapes(hostile) == "red oklink done\nnext"
    assert strip_terminal_escapes("tab\there\nline") == "tab\there\nline"


def test_agent_log_keeps_the_end_of_a_long_log():
    text = agent_log("x" * 500_000 + "END")
    assert text.endswith("END")
    assert text.startswith("[… earlier output cut …]")


def test_markdown_escapes_raw_html_and_refuses_script_links():
    html = str(
        markdown("# Plan\n\n<script>alert(1)</script>\n\n[click](javascript:alert(1)) [ok](https://a.test)")
    )
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="javascript:' not in html
    assert '<a href="https://a.test">ok</a>' in html
    assert "<h1>Plan</h1>" in html


def test_only_web_addresses_become_links():
    assert web_url("https://github.com/a/b/pull/1") == "https://github.com/a/b/pull/1"
    assert web_url("javascript:alert(1)") == "#"
    assert web_url(None) == "#"
