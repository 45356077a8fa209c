"""Known secrets are found in every form an agent's output may carry them in, and only there."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from urllib.parse import quote

import pytest

from app.domain.agents import AgentResult, redacted
from app.domain.records import AgentRunStatus
from app.domain.redaction import REDACTED, UNNAMED, WINDOW_CHARS, Redactor
from app.domain.usage import TokenUsage

SECRET = "ghp_Q7xT2mLk9VbR4sWz8NcYd3HfJa6Pe1Uo"
NAME = "TASKSGODZILLA_GITHUB_TOKEN"
REDACT = Redactor({NAME: SECRET, "TASKSGODZILLA_API_TOKEN": "api-token-5f0c9e27b1d84a36"})


def leaks(text: str) -> bool:
    """Whether `text` still holds SECRET in a form a reader could decode."""
    flat = "".join(text.replace("\\n", "").split())
    if SECRET in flat or SECRET.encode().hex() in flat.lower():
        return True
    for candidate in (flat, flat.replace("-", "+").replace("_", "/")):
        for start in range(len(candidate)):
            for end in range(len(candidate), start + 40, -1):
                chunk = candidate[start:end]
                try:
                    if SECRET.encode() in base64.b64decode(chunk + "=" * (-len(chunk) % 4)):
                        return True
                except ValueError:
                    continue
    return False


@pytest.mark.parametrize(
    "shape",
    [
        "plain",
        "json-escaped",
        "percent-encoded",
        "base64",
        "base64 without padding",
        "urlsafe base64",
        "hex",
        "HEX",
    ],
)
def test_each_form_of_a_secret_is_redacted_and_named(shape: str) -> None:
    forms = {
        "plain": SECRET,
        "json-escaped": json.dumps(SECRET)[1:-1],
        "percent-encoded": quote(SECRET, safe=""),
        "base64": base64.b64encode(SECRET.encode()).decode(),
        "base64 without padding": base64.b64encode(SECRET.encode()).decode().rstrip("="),
        "urlsafe base64": base64.urlsafe_b64encode(SECRET.encode()).decode(),
        "hex": SECRET.encode().hex(),
        "HEX": SECRET.encode().hex().upper(),
    }
    text, found = REDACT.scan(f"before {forms[shape]} after")
    assert found == {NAME}
    assert REDACTED in text
    assert text.startswith("before ")
    assert not leaks(text)


@pytest.mark.parametrize("offset", [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize("urlsafe", [False, True])
def test_a_secret_inside_longer_base64_is_found_at_any_alignment(offset: int, urlsafe: bool) -> None:
    data = b"Authorization: basic "[:offset] + b"user:" + SECRET.encode() + b"\n-- end of credentials --"
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    text, found = REDACT.scan(encode(data).decode())
    assert found == {NAME}
    assert not leaks(text)


@pytest.mark.parametrize("cut", range(1, len(SECRET)))
@pytest.mark.parametrize("gap", ["\n", "\r\n", "\\n", "\n    ", " ", "\t"])
def test_a_secret_split_anywhere_by_a_line_break_or_spaces_is_found(cut: int, gap: str) -> None:
    text, found = REDACT.scan(f"value: {SECRET[:cut]}{gap}{SECRET[cut:]}; done")
    assert found == {NAME}
    assert text == f"value: {REDACTED}; done"


def test_base64_wrapped_at_76_columns_is_found() -> None:
    wrapped = base64.encodebytes(b"x" * 70 + SECRET.encode() + b"y" * 70).decode()
    assert "\n" in wrapped.strip()
    assert REDACT.scan(wrapped)[1] == {NAME}


def test_ordinary_text_is_left_alone() -> None:
    text = "ghp_ tokens look like ghp_xxx; api-token-5f0c9e2 is too short to be one.\n" * 50
    assert REDACT.scan(text) == (text, set())


def test_a_secret_on_the_seam_of_two_windows_of_a_long_text_is_found() -> None:
    for seam in (WINDOW_CHARS - 10, WINDOW_CHARS - 1, WINDOW_CHARS, 2 * WINDOW_CHARS - 20):
        text = "x" * seam + SECRET[:9] + "\n" + SECRET[9:] + "y" * WINDOW_CHARS
        clean, found = REDACT.scan(text)
        assert found == {NAME}
        assert clean == "x" * seam + REDACTED + "y" * WINDOW_CHARS


def test_every_string_of_a_json_value_is_redacted_keys_too() -> None:
    value = {"summary": f"saw {SECRET}", "findings": [{"message": "ok", SECRET: 1}], "count": 3}
    clean, found = REDACT.redact_value(value)
    assert found == {NAME}
    assert clean == {"summary": f"saw {REDACTED}", "findings": [{"message": "ok", REDACTED: 1}], "count": 3}


def test_bare_values_are_reported_unnamed_and_short_ones_ignored() -> None:
    redactor = Redactor(["short", "a-longer-value"])
    assert redactor.scan("short a-longer-value") == (f"short {REDACTED}", {UNNAMED})


def test_an_extended_redactor_knows_both_sets_and_the_original_is_unchanged() -> None:
    wider = REDACT.extended({"the project's git password": "hunter2-correct-horse"})
    assert wider.scan(f"{SECRET} hunter2-correct-horse")[1] == {NAME, "the project's git password"}
    assert REDACT.scan("hunter2-correct-horse")[1] == set()


def test_every_field_of_an_agent_result_is_redacted_and_what_was_found_recorded() -> None:
    result = AgentResult(
        engine="command",
        model=f"model-{SECRET}",
        status=AgentRunStatus.SUCCEEDED,
        exit_code=0,
        final_message=f"done with {SECRET}",
        structured_output={"summary": base64.b64encode(SECRET.encode()).decode(), "n": 1},
        files_changed=["a.txt"],
        commands_run=[f"echo {SECRET[:5]}\\n{SECRET[5:]}"],
        usage=TokenUsage(input_tokens=5),
        cost_usd=Decimal("0.01"),
        error=f"failed: {SECRET}",
        transcript=f"line\n{SECRET}\n",
    )
    clean = redacted(result, REDACT)
    assert not leaks(clean.model_dump_json())
    assert clean.secrets_redacted == {
        field: [NAME]
        for field in ("model", "final_message", "structured_output", "commands_run", "error", "transcript")
    }
    assert clean.status is AgentRunStatus.SUCCEEDED
    assert clean.usage == result.usage
    assert clean.files_changed == ["a.txt"]
    assert redacted(clean, REDACT) == clean  # nothing left to find
