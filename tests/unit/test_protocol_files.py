from __future__ import annotations

import pytest

from app.domain.protocol_files import (
    agent_log_name,
    artifact_path,
    protocol_folder,
    qa_report_name,
    step_file_name,
    step_index_of,
)
from app.errors import InvalidInputError


@pytest.mark.parametrize(
    "name",
    [
        "../../x.md",
        "..",
        "/etc/passwd",
        "a/../../b",
        "a\\b.md",
        "nul\x00.md",
        ".hidden",
        ".git/config",
        "CON.md",
        "lpt1",
        "with space.md",
        "line\nbreak.md",
        "a//b",
        "",
        "-rf",
        "a/b/c/d.md",
        "x" * 301,
        "é.md",
    ],
)
def test_unsafe_artifact_names_are_refused(name):
    with pytest.raises(InvalidInputError) as raised:
        artifact_path(name, field="filename")
    assert raised.value.details == {"field": "filename"}


@pytest.mark.parametrize(
    "name", ["plan.md", "01-setup.md", "qa/03-attempt-2.md", "logs/01-execution-1.jsonl"]
)
def test_safe_artifact_names_pass(name):
    assert str(artifact_path(name)) == name


def test_protocol_folder_and_names():
    assert str(protocol_folder("0007-add-login")) == ".protocols/0007-add-login"
    with pytest.raises(InvalidInputError):
        protocol_folder("../0007")
    assert step_file_name(3, "add-tests") == "03-add-tests.md"
    assert step_index_of("03-add-tests.md") == 3
    assert step_index_of("plan.md") is None
    assert qa_report_name(3, 2) == "qa/03-attempt-2.md"
    assert agent_log_name(3, "execution", 1) == "logs/03-execution-1.jsonl"
    with pytest.raises(InvalidInputError):
        step_file_name(100, "x")
    with pytest.raises(InvalidInputError):
        agent_log_name(1, "../x", 1)
