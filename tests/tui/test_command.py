"""The `tui` command: where it connects, that the token never is an argument, and that the other
commands do not import Textual."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from app.cli.main import cli
from app.cli.tui import server_url
from app.config import Settings


def test_the_server_is_the_option_else_the_api_base_else_the_local_port():
    assert server_url(None, Settings(port=9123)) == "http://127.0.0.1:9123"
    assert server_url(None, Settings(api_base="https://tg.example.com")) == "https://tg.example.com"
    assert server_url("http://10.0.0.5:8011", Settings(api_base="https://tg.example.com")) == (
        "http://10.0.0.5:8011"
    )


def test_the_token_comes_from_the_environment_never_an_argument():
    shown = CliRunner().invoke(cli, ["tui", "--help"])
    assert shown.exit_code == 0, shown.output
    assert "--server" in shown.output
    assert "TASKSGODZILLA_API_TOKEN" in shown.output
    refused = CliRunner().invoke(cli, ["tui", "--token", "secret-0123456789abc"])
    assert refused.exit_code == 2
    assert "No such option" in refused.output


def test_other_commands_do_not_import_textual():
    code = "import sys, app.cli.main; sys.exit('textual' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
