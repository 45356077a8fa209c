from __future__ import annotations

import io
import json
import logging

from app.config import Settings
from app.logs import configure_logging, correlation_scope, current_correlation_id, get_logger


def _configure(**settings) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(Settings(**settings), stream=stream)
    return stream


def test_json_lines_carry_the_correlation_id():
    stream = _configure(log_format="json")
    with correlation_scope("req-42", path="/x"):
        get_logger("t").info("hello", answer=42)
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["event"] == "hello"
    assert line["answer"] == 42
    assert line["correlation_id"] == "req-42"
    assert line["path"] == "/x"
    assert line["level"] == "info"
    assert current_correlation_id() is None


def test_standard_library_loggers_share_the_format():
    stream = _configure(log_format="json")
    with correlation_scope() as cid:
        logging.getLogger("aiohttp.access").warning("plain %s", "stdlib")
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["event"] == "plain stdlib"
    assert line["correlation_id"] == cid


def test_secrets_are_redacted_wherever_they_appear():
    stream = _configure(
        log_format="json", api_token="tok-abcdef1234567", database_url="postgresql://u:pw-987654@h/db"
    )
    log = get_logger("t")
    log.info("calling with tok-abcdef1234567", header="Bearer tok-abcdef1234567")
    logging.getLogger("x").error("connect postgresql://u:pw-987654@h/db failed")
    out = stream.getvalue()
    assert "tok-abcdef1234567" not in out
    assert "pw-987654" not in out
    assert out.count("********") == 3


def test_console_format_is_readable():
    stream = _configure(log_format="console")
    get_logger("t").warning("disk low", free_mb=12)
    line = stream.getvalue()
    assert "disk low" in line
    assert "free_mb=12" in line
    assert "warning" in line


def test_console_lines_show_control_characters_instead_of_sending_them():
    stream = _configure(log_format="console", api_token="tok-abcdef1234567")
    get_logger("t").warning("ignored", branch="feature\x1b[2J\x07x")
    logging.getLogger("x").error("stdlib \x1b]0;title\x07 tok-abcdef1234567")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        get_logger("t").exception("failed")
    out = stream.getvalue()
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "feature\\x1b[2J\\x07x" in out
    assert "Traceback (most recent call last):\n" in out  # newlines stay: a traceback stays readable
    assert "tok-abcdef1234567" not in out
