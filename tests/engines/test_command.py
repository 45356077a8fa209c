"""The `command` engine: small real scripts as agents, in temporary git-less folders."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from app.domain.agents import AgentRequest
from app.domain.records import AgentRunStatus, Stage
from app.domain.usage import ModelPrice, TokenUsage
from app.engines.command import CommandEngine, parse_output, schema_violations
from app.errors import AgentError, ConfigError
from tests.support.fake_anthropic import processes_in

SCHEMA = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string"},
        "details": {
            "type": "object",
            "properties": {"reason": {"type": "string"}},
            "required": ["reason"],
            "additionalProperties": False,
        },
    },
    "required": ["verdict", "details"],
    "additionalProperties": False,
}


def script(folder: Path, body: str, name: str = "agent.py") -> Path:
    """An executable Python script (the interpreter of this test run) named `name` in `folder`."""
    path = folder / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path


def engine(argv: list[str], env: dict[str, str] | None = None, cap: int = 1024 * 1024) -> CommandEngine:
    return CommandEngine(
        argv=argv,
        base_env=env if env is not None else {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        prices={"house-model": ModelPrice(input=Decimal(1), output=Decimal(2))},
        max_output_bytes=cap,
    )


def request(workdir: Path, **fields: object) -> AgentRequest:
    fields = {"stage": Stage.EXECUTION, "timeout_seconds": 30, **fields}
    return AgentRequest(prompt="Fix the bug.", workdir=workdir, **fields)  # type: ignore[arg-type]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


ECHO_JSON = """
    import json, os, sys
    prompt = sys.stdin.read()
    open("touched.txt", "w").write(prompt)
    print("working...")
    print(json.dumps({
        "final_message": f"did: {prompt}",
        "usage": {"input_tokens": 1000, "cached_input_tokens": 200, "output_tokens": 50},
        "cost_usd": 0.0123,
    }))
"""


async def test_json_result_with_prompt_on_stdin_in_the_workdir(workdir, tmp_path):
    agent = script(tmp_path, ECHO_JSON)
    result = await engine([str(agent)]).run(request(workdir))
    assert result.status is AgentRunStatus.SUCCEEDED, result.error
    assert result.final_message == "did: Fix the bug."
    assert (workdir / "touched.txt").read_text() == "Fix the bug."
    assert result.usage == TokenUsage(input_tokens=1000, cached_input_tokens=200, output_tokens=50)
    assert result.cost_usd == Decimal("0.0123")
    assert result.engine == "command"
    assert result.exit_code == 0
    assert result.transcript.startswith("working...\n")


async def test_relative_executable_and_its_flags(workdir):
    script(workdir, "import sys\nprint(' '.join(sys.argv[1:]))\n", name="my-agent")
    result = await engine(["./my-agent", "--flag", "two words"]).run(request(workdir))
    assert result.status is AgentRunStatus.SUCCEEDED, result.error
    assert result.final_message == "--flag two words"


async def test_plain_text_is_the_final_message(workdir, tmp_path):
    agent = script(tmp_path, 'print("first line")\nprint()\nprint("{not json")\n')
    result = await engine([str(agent)]).run(request(workdir, model="house-model"))
    assert result.status is AgentRunStatus.SUCCEEDED
    assert result.final_message == "first line\n\n{not json"
    assert result.usage == TokenUsage()
    assert result.cost_usd is None


async def test_cost_falls_back_to_the_price_table(workdir, tmp_path):
    usage = {"input_tokens": 1_000_000, "output_tokens": 500_000}
    agent = script(tmp_path, f"print('thinking')\nprint({json.dumps(json.dumps({'usage': usage}))})\n")
    result = await engine([str(agent)]).run(request(workdir, model="house-model"))
    assert result.status is AgentRunStatus.SUCCEEDED
    assert result.final_message == "thinking"  # the lines before the result line
    assert result.cost_usd == Decimal("2.000000")


async def test_the_result_line_counts_even_past_the_output_cap(workdir, tmp_path):
    result_line = json.dumps({"structured_output": {"verdict": "pass", "details": {"reason": "ok"}}})
    agent = script(tmp_path, f"for i in range(500):\n    print('chatter', i)\nprint({result_line!r})\n")
    result = await engine([str(agent)], cap=1000).run(request(workdir, output_schema=SCHEMA))
    assert result.output_truncated
    assert result.status is AgentRunStatus.SUCCEEDED, result.error
    assert result.structured_output == {"verdict": "pass", "details": {"reason": "ok"}}
    assert (result.final_message or "").startswith("chatter 0\nchatter 1\n")


async def test_non_zero_exit_fails_with_stderr(workdir, tmp_path):
    agent = script(
        tmp_path, 'import sys\nprint("partial")\nsys.stderr.write("boom: disk full\\n")\nsys.exit(3)\n'
    )
    result = await engine([str(agent)]).run(request(workdir))
    assert result.status is AgentRunStatus.FAILED
    assert result.exit_code == 3
    assert result.error == "the agent command exited with code 3: boom: disk full"


async def test_timeout_kills_the_agent_and_its_children(workdir, tmp_path):
    agent = script(
        tmp_path,
        """
        import subprocess, time
        subprocess.Popen(["sleep", "60"])  # a child of its own, in the worktree
        print("started", flush=True)
        time.sleep(60)
        """,
    )
    result = await engine([str(agent)]).run(request(workdir, timeout_seconds=1))
    assert result.status is AgentRunStatus.TIMED_OUT
    assert result.error == "the agent command did not finish within 1 s"
    assert result.final_message == "started"
    assert processes_in(workdir) == []


async def test_a_silent_agent_is_stopped_as_stalled_long_before_its_deadline(workdir, tmp_path):
    agent = script(
        tmp_path,
        """
        import time
        print("thinking", flush=True)
        time.sleep(60)
        """,
    )
    result = await engine([str(agent)]).run(request(workdir, timeout_seconds=60, silence_seconds=1))
    assert result.status is AgentRunStatus.TIMED_OUT
    assert result.error == (
        "the agent command was stalled: no output for 1 s (TASKSGODZILLA_AGENT_SILENCE_SECONDS), "
        "so it was stopped"
    )
    assert result.duration_ms < 30_000
    assert processes_in(workdir) == []


@pytest.mark.parametrize("stage", list(Stage))
async def test_stage_variable_and_no_settings_of_ours(workdir, tmp_path, stage):
    agent = script(
        tmp_path,
        'import json, os\nprint(json.dumps({"final_message": json.dumps(dict(os.environ))}))\n',
    )
    env = {"PATH": "/usr/bin:/bin", "TASKSGODZILLA_API_TOKEN": "secret", "tasksgodzilla_x": "y", "KEEP": "1"}
    result = await engine([str(agent)], env).run(request(workdir, stage=stage))
    seen = json.loads(result.final_message or "{}")
    seen.pop("LC_CTYPE", None)  # Python's own locale coercion inside the script
    assert seen == {"PATH": "/usr/bin:/bin", "KEEP": "1", "AGENT_STAGE": stage.value}


STRUCTURED = """
    import json, os
    schema = json.load(open(os.environ["AGENT_OUTPUT_SCHEMA"]))
    print(json.dumps({"final_message": "ok", "structured_output": ANSWER, "usage": {}}))
    open("schema-seen.json", "w").write(json.dumps(schema))
"""


@pytest.mark.parametrize(
    ("answer", "status", "error"),
    [
        ({"verdict": "pass", "details": {"reason": "tests pass"}}, "succeeded", None),
        (None, "failed", "the agent command gave no structured_output for the required schema"),
        ({"verdict": "pass"}, "failed", "$.details is missing"),
        ({"verdict": "pass", "details": {"reason": "x"}, "extra": 1}, "failed", "$.extra is not allowed"),
        ({"verdict": "pass", "details": {"why": "x"}}, "failed", "$.details.reason is missing"),
        ({"verdict": "pass", "details": "text"}, "failed", "$.details must be an object"),
    ],
)
async def test_schema_is_handed_over_and_enforced(workdir, tmp_path, answer, status, error):
    agent = script(tmp_path, STRUCTURED.replace("ANSWER", repr(answer)))
    result = await engine([str(agent)]).run(request(workdir, stage=Stage.QA, output_schema=SCHEMA))
    assert result.status == AgentRunStatus(status)
    if error is None:
        assert result.error is None
        assert result.structured_output == answer
    else:
        assert error in (result.error or "")
    assert json.loads((workdir / "schema-seen.json").read_text()) == SCHEMA


async def test_schema_file_is_temporary_and_outside_the_worktree(workdir, tmp_path):
    agent = script(tmp_path, 'import os\nprint(os.environ["AGENT_OUTPUT_SCHEMA"])\n')
    result = await engine([str(agent)]).run(request(workdir, output_schema=SCHEMA))
    schema_path = Path(result.final_message or "")
    assert schema_path.is_absolute()
    assert workdir not in schema_path.parents
    assert left_behind(schema_path, workdir) == []  # the file is removed after the run


def left_behind(schema_path: Path, workdir: Path) -> list[Path]:
    return [p for p in (schema_path, schema_path.parent, *workdir.iterdir()) if p.exists()]


async def test_no_schema_no_schema_variable(workdir, tmp_path):
    agent = script(tmp_path, 'import os\nprint(os.environ.get("AGENT_OUTPUT_SCHEMA", "unset"))\n')
    result = await engine([str(agent)]).run(request(workdir))
    assert result.final_message == "unset"


async def test_missing_executable_is_a_config_error_naming_the_setting(workdir, tmp_path):
    with pytest.raises(ConfigError, match=r"not found.*TASKSGODZILLA_COMMAND_AGENT"):
        await engine([str(tmp_path / "nothing-here")]).run(request(workdir))


async def test_the_check_finds_the_executable_or_says_why_not(workdir, tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("not a program\n")
    assert (await engine([sys.executable]).check()).status == "ok"
    assert (await engine(["python3"]).check()).status == "ok", "a bare name is looked up on PATH"
    refused = await engine([str(plain)]).check()
    assert (refused.status, refused.error) == (
        "error",
        f"not an executable file: {plain} (check TASKSGODZILLA_COMMAND_AGENT)",
    )
    relative = engine(["./agent.sh"])
    assert (await relative.check()).status == "unknown", "relative to each worktree"
    (workdir / "agent.sh").write_text("#!/bin/sh\n")
    (workdir / "agent.sh").chmod(0o755)
    assert (await relative.check(workdir)).status == "ok"


def test_an_empty_command_is_refused():
    with pytest.raises(AgentError):
        engine([])


@pytest.mark.parametrize(
    ("lines", "final", "structured", "error"),
    [
        ([], None, None, None),
        (["hello", "world"], "hello\nworld", None, None),
        (['{"verdict": "pass"}'], '{"verdict": "pass"}', None, None),  # not our keys: plain text
        (["[1, 2]"], "[1, 2]", None, None),
        (['{"final_message": "done", "structured_output": {"a": 1}}'], "done", {"a": 1}, None),
        (["note", '{"structured_output": {"a": 1}}', ""], "note", {"a": 1}, None),
        (['{"final_message": 3}'], None, None, "final_message must be a string"),
        (['{"structured_output": [1]}'], None, None, "structured_output must be an object"),
        (['{"usage": {"input_tokens": -1}}'], None, None, "usage must hold non-negative token counts"),
        (['{"usage": {"input_tokens": "many"}}'], None, None, "usage must hold non-negative token counts"),
        (['{"cost_usd": "free"}'], None, None, "cost_usd must be a non-negative number"),
        (['{"cost_usd": -0.5}'], None, None, "cost_usd must be a non-negative number"),
    ],
)
def test_parse_output(lines, final, structured, error):
    output = parse_output(lines)
    assert output.final_message == final
    assert output.structured_output == structured
    assert (output.error is None) if error is None else (error in (output.error or ""))


@pytest.mark.parametrize(
    ("value", "schema", "problems"),
    [
        ({"a": 1}, {"type": "object", "required": ["a"]}, []),
        ({}, {"type": "object", "required": ["a", "b"]}, ["$.a is missing", "$.b is missing"]),
        ({"a": 1, "z": 2}, {"type": "object", "properties": {"a": {}}}, []),  # extra keys allowed
        (
            {"z": 2},
            {"type": "object", "properties": {}, "additionalProperties": False},
            ["$.z is not allowed"],
        ),
        ("text", {"type": "object"}, ["$ must be an object"]),
        ("text", {"type": "string"}, []),  # types other than objects are not checked
    ],
)
def test_schema_violations(value, schema, problems):
    assert schema_violations(value, schema) == problems
