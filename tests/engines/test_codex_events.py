"""The codex adapter without the binary: its event parser over real captures, its verdict, its argv."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.domain.agents import AgentRequest
from app.domain.records import AgentRunStatus, Stage
from app.domain.usage import TokenUsage
from app.engines.codex import (
    BYPASS_FLAG,
    CodexEngine,
    structured_answer,
    transcript_lines,
    verdict,
    worktree_paths,
)
from app.engines.codex_events import CodexSummary, error_text, parse_codex_events
from app.engines.process import ProcessOutcome

DATA = Path(__file__).parent / "data"
SCHEMA = {
    "type": "object",
    "properties": {"verdict": {"type": "string"}, "notes": {"type": "string"}},
    "required": ["verdict", "notes"],
    "additionalProperties": False,
}


def capture(name: str) -> list[str]:
    return (DATA / f"codex_{name}.jsonl").read_text().splitlines()


def event(kind: str, **fields: object) -> str:
    return json.dumps({"type": kind, **fields})


def completed(input_tokens: int, cached: int, output: int, reasoning: int) -> str:
    usage = {
        "input_tokens": input_tokens,
        "cached_input_tokens": cached,
        "cache_write_input_tokens": 0,
        "output_tokens": output,
        "reasoning_output_tokens": reasoning,
    }
    return event("turn.completed", usage=usage)


# --- the parser, over transcripts of the real CLI ------------------------------------------------


def test_schema_capture_gives_the_json_answer_and_usage() -> None:
    summary = parse_codex_events(capture("schema"))
    assert summary.final_message == '{"verdict": "pass", "notes": "looks fine"}'
    assert summary.usage == TokenUsage(
        input_tokens=120, cached_input_tokens=100, output_tokens=7, reasoning_tokens=3
    )
    assert summary.turns_completed == 1
    assert summary.failure is None
    assert summary.thread_id == "01a2105e-3e05-7980-afae-99379ed2bbec"
    # "Model metadata … not found" is an error *item*: a warning, not a failure.
    assert len(summary.warnings) == 1
    assert "Model metadata" in summary.warnings[0]


def test_tool_call_capture_lists_the_command_and_the_final_message() -> None:
    summary = parse_codex_events(capture("tool_call"))
    assert summary.commands == ("/bin/bash -lc \"printf 'hello from agent' > hello.txt && ls\"",)
    assert summary.final_message == "done: created hello.txt"
    assert summary.usage == TokenUsage(
        input_tokens=2000, cached_input_tokens=400, output_tokens=100, reasoning_tokens=20
    )
    assert summary.files_changed == ()
    assert summary.failure is None


def test_fail_capture_is_a_failure_with_the_api_message() -> None:
    summary = parse_codex_events(capture("fail"))
    assert summary.failure == "invalid_request: bad thing"
    assert summary.stream_errors == ("invalid_request: bad thing",)
    assert summary.turns_completed == 0
    assert summary.final_message is None
    assert summary.usage == TokenUsage()


@pytest.mark.parametrize(
    ("totals", "expected"),
    [
        ([(100, 40, 10, 2)], (100, 40, 10, 2)),
        # A resumed thread reports running totals: the second turn adds only its difference.
        ([(100, 40, 10, 2), (250, 90, 30, 5)], (250, 90, 30, 5)),
        ([(100, 40, 10, 2), (250, 90, 30, 5), (400, 90, 31, 5)], (400, 90, 31, 5)),
        # Totals that go back (a new thread) never subtract.
        ([(100, 40, 10, 2), (60, 0, 5, 0)], (100, 40, 10, 2)),
    ],
)
def test_cumulative_usage_is_summed_as_differences(
    totals: list[tuple[int, int, int, int]], expected: tuple[int, int, int, int]
) -> None:
    lines = [event("turn.started")]
    for total in totals:
        lines += [event("turn.started"), completed(*total)]
    summary = parse_codex_events(lines)
    assert summary.usage == TokenUsage(
        input_tokens=expected[0],
        cached_input_tokens=expected[1],
        output_tokens=expected[2],
        reasoning_tokens=expected[3],
    )
    assert summary.turns_completed == len(totals)


def test_the_last_agent_message_is_the_answer() -> None:
    lines = [
        event("item.completed", item={"id": "item_0", "type": "agent_message", "text": "first"}),
        event("item.completed", item={"id": "item_1", "type": "reasoning", "text": "thinking"}),
        event("item.completed", item={"id": "item_2", "type": "agent_message", "text": "second"}),
        completed(1, 0, 1, 0),
    ]
    assert parse_codex_events(lines).final_message == "second"


def test_noise_is_ignored() -> None:
    lines = [
        "",
        "plain text from a wrapper",
        "{not json",
        "[1, 2]",
        '"a string"',
        event("item.completed", item="not an object"),
        event("item.completed", item={"type": "agent_message"}),  # no text
        event("turn.completed", usage={"input_tokens": "many", "output_tokens": -3}),
        event("something.new", data=1),
    ]
    summary = parse_codex_events(lines)
    assert summary == CodexSummary(turns_completed=1)


def test_a_command_only_started_still_counts_once() -> None:
    item = {"id": "item_1", "type": "command_execution", "command": "sleep 100", "status": "in_progress"}
    done = {**item, "status": "completed", "exit_code": 0}
    lines = [
        event("item.started", item=item),
        event("item.completed", item=done),
        event("item.started", item={**item, "id": "item_2", "command": "make test"}),
    ]
    assert parse_codex_events(lines).commands == ("sleep 100", "make test")
    assert parse_codex_events(lines).commands_passed == ("sleep 100",)


def test_only_commands_that_exited_zero_passed() -> None:
    base = {"type": "command_execution", "status": "completed"}
    lines = [
        event("item.completed", item={**base, "id": "a", "command": "pytest -q", "exit_code": 1}),
        event(
            "item.completed", item={**base, "id": "b", "command": "ruff", "exit_code": 0, "status": "failed"}
        ),
        event("item.completed", item={**base, "id": "c", "command": "pytest -q", "exit_code": 0}),
        event("item.completed", item={**base, "id": "d", "command": "make", "exit_code": None}),
    ]
    summary = parse_codex_events(lines)
    assert summary.commands == ("pytest -q", "ruff", "pytest -q", "make")
    assert summary.commands_passed == ("pytest -q",)


def test_file_changes_count_when_applied() -> None:
    changes = [{"path": "/repo/a.py", "kind": "update"}, {"path": "/repo/b.py", "kind": "add"}]
    lines = [
        event(
            "item.started",
            item={"id": "i1", "type": "file_change", "changes": changes, "status": "in_progress"},
        ),
        event(
            "item.completed",
            item={"id": "i1", "type": "file_change", "changes": changes, "status": "completed"},
        ),
        event(
            "item.completed",
            item={"id": "i2", "type": "file_change", "changes": [{"path": "/repo/c.py"}], "status": "failed"},
        ),
        event(
            "item.completed",
            item={"id": "i3", "type": "file_change", "changes": changes, "status": "completed"},
        ),
    ]
    assert parse_codex_events(lines).files_changed == ("/repo/a.py", "/repo/b.py")


def test_a_retry_notice_alone_is_not_a_failure() -> None:
    lines = [
        event("error", message="Reconnecting... 1/5"),
        event("item.completed", item={"id": "item_0", "type": "agent_message", "text": "ok"}),
        completed(10, 0, 2, 0),
    ]
    summary = parse_codex_events(lines)
    assert summary.failure is None
    assert summary.stream_errors == ("Reconnecting... 1/5",)
    assert summary.final_message == "ok"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ('{"error":{"message":"quota exceeded","type":"insufficient_quota"}}', "quota exceeded"),
        ('{"message":"flat body"}', "flat body"),
        ('{"error":"not an object"}', '{"error":"not an object"}'),
        ("stream disconnected before completion", "stream disconnected before completion"),
        (None, "unknown error"),
    ],
)
def test_error_text_unwraps_api_error_bodies(message: str | None, expected: str) -> None:
    assert error_text(message) == expected


# --- the verdict ---------------------------------------------------------------------------------


def request(tmp_path: Path, stage: Stage = Stage.EXECUTION, **fields: object) -> AgentRequest:
    return AgentRequest(stage=stage, prompt="do it", workdir=tmp_path, **fields)  # type: ignore[arg-type]


OK = CodexSummary(final_message='{"verdict": "pass", "notes": "n"}', turns_completed=1)


@pytest.mark.parametrize(
    ("outcome", "summary", "schema", "status", "error_part"),
    [
        (ProcessOutcome(exit_code=0), OK, None, AgentRunStatus.SUCCEEDED, None),
        (ProcessOutcome(exit_code=0), OK, SCHEMA, AgentRunStatus.SUCCEEDED, None),
        (ProcessOutcome(exit_code=-15, timed_out=True), OK, None, AgentRunStatus.TIMED_OUT, "within 60 s"),
        (
            ProcessOutcome(exit_code=1),
            CodexSummary(failure="bad thing"),
            None,
            AgentRunStatus.FAILED,
            "bad thing",
        ),
        (
            ProcessOutcome(exit_code=2, stderr="Error: boom\n"),
            CodexSummary(),
            None,
            AgentRunStatus.FAILED,
            "boom",
        ),
        (
            ProcessOutcome(exit_code=1),
            CodexSummary(stream_errors=("Reconnecting", "stream gone")),
            None,
            AgentRunStatus.FAILED,
            "code 1: stream gone",
        ),
        (ProcessOutcome(exit_code=1), OK, None, AgentRunStatus.FAILED, "code 1"),
        (ProcessOutcome(exit_code=0), CodexSummary(), None, AgentRunStatus.FAILED, "without completing"),
        (
            ProcessOutcome(exit_code=0),
            CodexSummary(final_message="not json", turns_completed=1),
            SCHEMA,
            AgentRunStatus.FAILED,
            "not JSON",
        ),
    ],
)
def test_verdict(
    tmp_path: Path,
    outcome: ProcessOutcome,
    summary: CodexSummary,
    schema: dict[str, object] | None,
    status: AgentRunStatus,
    error_part: str | None,
) -> None:
    got_status, error, structured = verdict(
        request(tmp_path, output_schema=schema, timeout_seconds=60), outcome, summary, summary.final_message
    )
    assert got_status is status
    if error_part is None:
        assert error is None
    else:
        assert error is not None
        assert error_part in error
    expected_structured = (
        {"verdict": "pass", "notes": "n"} if schema and status.value == "succeeded" else None
    )
    assert structured == expected_structured


@pytest.mark.parametrize(
    ("final", "problem"),
    [
        ('{"verdict": "pass", "notes": ""}', None),
        (None, "no final message"),
        ("```json\n{}\n```", "not JSON"),
        ('["pass"]', "not an object"),
        ('{"verdict": "pass"}', "lacks required keys: notes"),
        ('{"verdict": "pass", "notes": "", "extra": 1}', "forbids: extra"),
    ],
)
def test_structured_answer(final: str | None, problem: str | None) -> None:
    value, error = structured_answer(final, SCHEMA)
    if problem is None:
        assert error is None
        assert value == json.loads(final or "")
    else:
        assert value is None
        assert error is not None
        assert problem in error


def test_worktree_paths_are_relative_inside_and_kept_outside(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    paths = [f"{real}/a.py", f"{link}/b/c.py", "/elsewhere/d.py", f"{real}/a.py", "relative.txt"]
    assert worktree_paths(paths, link) == ["a.py", "b/c.py", "/elsewhere/d.py", "relative.txt"]


def test_transcript_has_stdout_then_a_cut_note_then_stderr() -> None:
    outcome = ProcessOutcome(exit_code=1, stdout_lines=["{}", "{}"], stderr="warn\nfatal\n", truncated=True)
    lines = transcript_lines(outcome)
    assert lines[:2] == ["{}", "{}"]
    assert "truncated" in lines[2]
    assert lines[3:] == ["--- stderr ---", "warn", "fatal"]


# --- the command line ----------------------------------------------------------------------------


def engine(**options: object) -> CodexEngine:
    defaults: dict[str, object] = {
        "binary": "/opt/codex",
        "base_env": {},
        "prices": {},
        "max_output_bytes": 65536,
    }
    return CodexEngine(**{**defaults, **options})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("stage", "sandbox"),
    [
        (Stage.EXECUTION, "workspace-write"),
        (Stage.PLANNING, "read-only"),
        (Stage.QA, "read-only"),
        (Stage.DISCOVERY, "read-only"),
    ],
)
def test_each_stage_gets_its_sandbox(tmp_path: Path, stage: Stage, sandbox: str) -> None:
    argv = engine().command(request(tmp_path, stage))
    assert argv[:3] == ["/opt/codex", "exec", "--json"]
    assert argv[argv.index("-s") + 1] == sandbox
    assert argv[argv.index("-C") + 1] == str(tmp_path)
    assert BYPASS_FLAG not in argv
    assert {"--ephemeral", "--ignore-rules", "--ignore-user-config"} <= set(argv)
    assert argv[-1] == "-"  # the prompt comes on stdin
    assert "do it" not in argv


def test_bypass_replaces_the_sandbox_only_when_asked(tmp_path: Path) -> None:
    argv = engine(bypass_sandbox=True).command(request(tmp_path, Stage.QA))
    assert BYPASS_FLAG in argv
    assert "-s" not in argv


def test_model_schema_overrides_and_user_config(tmp_path: Path) -> None:
    overrides = ["model_provider=local", 'model_providers.local={name="l", base_url="http://h/v1"}']
    argv = engine(config_overrides=overrides, user_config=True).command(
        request(tmp_path, model="gpt-5.1-codex"), tmp_path / "schema.json"
    )
    assert argv[argv.index("-m") + 1] == "gpt-5.1-codex"
    assert argv[argv.index("--output-schema") + 1] == str(tmp_path / "schema.json")
    assert [argv[i + 1] for i, arg in enumerate(argv) if arg == "-c"] == overrides
    assert "--ignore-user-config" not in argv
    assert argv[-1] == "-"
