"""The Claude Code adapter: its stream parser over real captures, and the real CLI (pinned) driven by
a scripted Anthropic endpoint in a real git repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from app.domain.agents import AgentRequest, redacted
from app.domain.records import AgentRunStatus, Stage
from app.domain.redaction import REDACTED, Redactor
from app.domain.usage import ModelPrice, TokenUsage
from app.engines.claude import ClaudeEngine, verdict
from app.engines.claude_events import ClaudeRun, cost_of_result, parse_stream, price_key
from app.engines.process import ProcessOutcome
from app.errors import ConfigError
from tests.support.fake_anthropic import (
    ApiError,
    Hang,
    Text,
    ToolUse,
    processes_in,
)

DATA = Path(__file__).parent / "data"
MODEL = "claude-sonnet-4-5"
# Where the captures made against the fake endpoint ran (the reference ones say "research/t").
CAPTURE_REPO = Path("/tmp/claude-capture/repo")
VERDICT_SCHEMA = {
    "type": "object",
    "properties": {"verdict": {"type": "string", "enum": ["pass", "fail"]}, "notes": {"type": "string"}},
    "required": ["verdict", "notes"],
    "additionalProperties": False,
}


def capture(name: str) -> list[str]:
    return (DATA / f"claude_{name}.jsonl").read_text().splitlines()


# --- the parser, over transcripts of the real CLI ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "succeeded", "final", "usage", "cost", "files", "commands"),
    [
        ("stream", True, "hi from mock", TokenUsage(input_tokens=120, output_tokens=7), "0.000465", [], []),
        ("apierror", False, "API Error: 400 invalid_request: bad thing", TokenUsage(), "0", [], []),
        (
            "tool_use",
            True,
            "All done.",
            TokenUsage(input_tokens=780, cached_input_tokens=120, output_tokens=42),
            "0.002691",
            ["src/app.py"],  # the two Edits failed (file not read / missing): nothing changed
            ["ls src", "false"],  # a command that failed still ran
        ),
        (
            "plan_denied",
            True,
            "I could not write.",
            TokenUsage(input_tokens=520, cached_input_tokens=80, output_tokens=28),
            "0.001794",
            [],
            ["git status"],  # the refused `touch` did not run
        ),
    ],
)
def test_parser_reads_captures(name, succeeded, final, usage, cost, files, commands):
    run = parse_stream(capture(name), CAPTURE_REPO)
    assert run.has_result
    assert run.succeeded is succeeded
    assert run.final_message == final
    assert run.usage == usage
    assert run.cost_usd == Decimal(cost)
    assert run.files_changed == files
    assert run.commands_run == commands


def test_parser_reads_structured_output():
    run = parse_stream(capture("schema"), Path("research/t"))
    assert run.succeeded
    assert run.structured_output == {"verdict": "pass", "notes": "looks fine"}
    assert run.model == "claude-sonnet-4-5"


def test_a_run_that_never_called_structured_output_fails_the_verdict(tmp_path):
    run = parse_stream(capture("schema_missing"), CAPTURE_REPO)
    assert run.succeeded  # the CLI's own word...
    assert run.structured_output is None
    status, error = verdict(request_for(tmp_path, output_schema=VERDICT_SCHEMA), ProcessOutcome(0), run)
    assert status is AgentRunStatus.FAILED  # ...is not enough when a schema was required
    assert error == "claude gave no structured output although a JSON schema was required"


def test_api_error_is_a_failure_although_subtype_says_success():
    run = parse_stream(capture("apierror"), Path("."))
    assert not run.succeeded
    assert run.error == "claude failed (success, HTTP 400): API Error: 400 invalid_request: bad thing"


def test_missing_result_line_is_a_failure_with_the_usage_seen_so_far():
    run = parse_stream(capture("tool_use")[:-1], CAPTURE_REPO)
    assert not run.has_result
    assert not run.succeeded
    # Six model messages of 100 + 20 + 10 input tokens each; their output count is only the first token.
    assert run.usage == TokenUsage(input_tokens=780, cached_input_tokens=120, output_tokens=6)


def test_error_subtypes_fail_with_their_errors():
    line = {"type": "result", "subtype": "error_max_turns", "is_error": False, "errors": ["too many turns"]}
    run = parse_stream(["not json", "{broken", json.dumps(line)], Path("."))
    assert not run.succeeded
    assert run.error == "claude failed (error_max_turns): too many turns"


def test_paths_outside_the_worktree_stay_absolute(tmp_path):
    lines = [
        json.dumps({"type": "assistant", "message": {"id": "m", "content": [tool_use("a", "Write", path)]}})
        for path in (str(tmp_path / "in" / "a.py"), "/etc/elsewhere", "rel/b.py")
    ]
    lines.append(json.dumps({"type": "result", "subtype": "success", "is_error": False, "result": "ok"}))
    assert parse_stream(lines, tmp_path).files_changed == ["in/a.py", "/etc/elsewhere", "rel/b.py"]


def tool_use(call_id: str, name: str, path: str) -> dict[str, object]:
    return {"type": "tool_use", "id": f"{call_id}-{path}", "name": name, "input": {"file_path": path}}


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"total_cost_usd": 0.0007475000000000001}, Decimal("0.000748")),
        ({"modelUsage": {"a": {"costUSD": 0.001}, "b": {"costUSD": 0.002}}}, Decimal("0.003")),
        ({"total_cost_usd": None, "modelUsage": {}}, None),
        ({"total_cost_usd": "NaN"}, None),
        ({"total_cost_usd": -1}, None),
    ],
)
def test_cost_comes_from_the_cli(result, expected):
    assert cost_of_result(result) == expected


def test_price_key_drops_the_context_variant():
    assert price_key("claude-opus-4-8[1m]") == "claude-opus-4-8"
    assert price_key(None) is None


# --- the decision over a finished process ---------------------------------------------------------


def request_for(workdir: Path, stage: Stage = Stage.EXECUTION, **fields: object) -> AgentRequest:
    fields = {"timeout_seconds": 60, **fields}
    return AgentRequest(stage=stage, prompt="Do the task.", workdir=workdir, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("outcome", "run", "schema", "status", "error_part"),
    [
        (ProcessOutcome(0), ClaudeRun(has_result=True, succeeded=True), None, "succeeded", None),
        (ProcessOutcome(1), ClaudeRun(has_result=True, succeeded=True), None, "failed", "exited with code 1"),
        (ProcessOutcome(None, timed_out=True), ClaudeRun(False, False), None, "timed_out", "within 5 s"),
        (
            ProcessOutcome(1, stderr="boom\n"),
            ClaudeRun(False, False),
            None,
            "failed",
            "without a result: boom",
        ),
        (ProcessOutcome(0), ClaudeRun(True, True), VERDICT_SCHEMA, "failed", "no structured output"),
    ],
)
def test_verdict(tmp_path, outcome, run, schema, status, error_part):
    request = request_for(tmp_path, output_schema=schema, timeout_seconds=5)
    got_status, error = verdict(request, outcome, run)
    assert got_status == AgentRunStatus(status)
    assert (error is None) if error_part is None else (error_part in (error or ""))


# --- the command line ------------------------------------------------------------------------------


def engine(binary: str = "claude", env: dict[str, str] | None = None, **options: object) -> ClaudeEngine:
    return ClaudeEngine(
        binary=binary,
        base_env=env or {},
        prices={"claude-sonnet-4-5": ModelPrice(input=Decimal(3), output=Decimal(15))},
        max_output_bytes=1024 * 1024,
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("stage", "options", "expected"),
    [
        (Stage.EXECUTION, {}, ["--permission-mode=acceptEdits"]),
        (Stage.EXECUTION, {"permission_mode": "dontAsk"}, ["--permission-mode=dontAsk"]),
        (Stage.EXECUTION, {"bypass_sandbox": True}, ["--dangerously-skip-permissions"]),
        (Stage.PLANNING, {"bypass_sandbox": True}, ["--permission-mode=plan"]),
        (Stage.QA, {}, ["--permission-mode=plan"]),
        (Stage.DISCOVERY, {"permission_mode": "acceptEdits"}, ["--permission-mode=plan"]),
    ],
)
def test_permissions_per_stage(tmp_path, stage, options, expected):
    argv = engine(**options).command(request_for(tmp_path, stage))
    assert argv[:3] == ["claude", "-p", "--output-format=stream-json"]
    assert argv[3:5] == ["--verbose", "--no-session-persistence"]
    assert argv[5:] == expected
    assert ("--dangerously-skip-permissions" in argv) == (expected == ["--dangerously-skip-permissions"])


def test_model_and_schema_are_passed(tmp_path):
    argv = engine().command(request_for(tmp_path, Stage.QA, model="-sonnet", output_schema=VERDICT_SCHEMA))
    assert "--model=-sonnet" in argv  # one argument: a leading dash cannot make it an option
    [schema] = [arg.removeprefix("--json-schema=") for arg in argv if arg.startswith("--json-schema=")]
    assert json.loads(schema) == VERDICT_SCHEMA
    assert "Do the task." not in argv  # the prompt goes to stdin


def test_the_remaining_usd_budget_is_passed_only_when_there_is_one(tmp_path):
    capped = engine().command(request_for(tmp_path, Stage.QA, max_budget_usd=Decimal("0.250000")))
    assert "--max-budget-usd=0.250000" in capped
    assert not any(arg.startswith("--max-budget-usd") for arg in engine().command(request_for(tmp_path)))


@pytest.mark.parametrize("mode", ["bypassPermissions", "yolo"])
def test_unsafe_or_unknown_permission_modes_are_refused(mode):
    with pytest.raises(ConfigError):
        engine(permission_mode=mode)


async def test_a_missing_binary_is_a_config_error_naming_the_setting(tmp_path):
    with pytest.raises(ConfigError, match=r"not found.*TASKSGODZILLA_CLAUDE_BIN"):
        await engine(binary=str(tmp_path / "no-claude")).run(request_for(tmp_path))


async def test_a_cli_refusing_our_arguments_did_not_start(tmp_path):
    """Like a Claude Code too old for one of our options: exit 1 and a complaint, no stream."""
    fake = tmp_path / "claude"
    fake.write_text("#!/bin/sh\necho \"error: unknown option '--no-session-persistence'\" >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(ConfigError, match="unknown option '--no-session-persistence'") as refused:
        await engine(binary=str(fake)).run(request_for(tmp_path))
    assert "TASKSGODZILLA_CLAUDE_BIN" in refused.value.message


async def test_the_version_probe_runs_the_real_cli(claude_bin):
    check = await engine(binary=claude_bin, env={"PATH": os.environ["PATH"]}).check()
    assert (check.status, check.version) == ("ok", "2.1.197 (Claude Code)")


# --- the real CLI against the scripted endpoint --------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A real git repository with one commit."""
    path = tmp_path / "repo"
    path.mkdir()
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=path, check=True)
    (path / "README.md").write_text("# demo\n")
    subprocess.run([*git, "add", "."], cwd=path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], cwd=path, check=True)
    return path


async def test_structured_output_run(claude_bin, claude_env, fake_anthropic, repo, tmp_path):
    fake_anthropic.play(ToolUse("StructuredOutput", {"verdict": "pass", "notes": "fine"}))
    request = request_for(repo, Stage.QA, model=MODEL, output_schema=VERDICT_SCHEMA)
    result = await engine(claude_bin, claude_env).run(request)
    assert result.status is AgentRunStatus.SUCCEEDED, result.error
    assert result.structured_output == {"verdict": "pass", "notes": "fine"}
    assert result.usage == TokenUsage(input_tokens=130, cached_input_tokens=20, output_tokens=7)
    assert result.cost_usd is not None
    assert result.cost_usd > 0
    assert result.model == MODEL
    assert result.exit_code == 0
    assert json.loads(result.transcript.splitlines()[-1])["structured_output"] == result.structured_output
    sessions = tmp_path / "claude-home" / ".claude" / "projects"
    assert [p for p in sessions.rglob("*") if p.is_file()] == []  # no unredacted copy of the session
    sent = fake_anthropic.main_requests[0].body
    assert sent["model"] == MODEL
    tools = {tool["name"]: tool for tool in sent["tools"]}
    assert tools["StructuredOutput"]["input_schema"] == VERDICT_SCHEMA
    assert "Do the task." in fake_anthropic.main_requests[0].user_text()  # the prompt came through stdin


async def test_no_structured_output_fails_closed(claude_bin, claude_env, fake_anthropic, repo):
    fake_anthropic.play(Text("I will not use the tool."), Text("Still not."))
    request = request_for(repo, Stage.QA, output_schema=VERDICT_SCHEMA)
    result = await engine(claude_bin, claude_env).run(request)
    assert result.status is AgentRunStatus.FAILED
    assert result.exit_code == 0  # the CLI itself calls this a success
    assert "no structured output" in (result.error or "")


async def test_api_error_is_a_failed_run(claude_bin, claude_env, fake_anthropic, repo):
    fake_anthropic.play(ApiError(400, "invalid_request_error", "tool schema rejected by policy"))
    result = await engine(claude_bin, claude_env).run(request_for(repo))
    assert result.status is AgentRunStatus.FAILED
    assert result.exit_code == 1
    assert result.error is not None
    assert "HTTP 400" in result.error
    assert "tool schema rejected by policy" in result.error
    assert len(fake_anthropic.main_requests) == 1


async def test_execution_writes_through_the_write_tool(claude_bin, claude_env, fake_anthropic, repo):
    target = repo / "notes" / "hello.txt"
    fake_anthropic.play(ToolUse("Write", {"file_path": str(target), "content": "hello\n"}), Text("Wrote it."))
    result = await engine(claude_bin, claude_env).run(request_for(repo))
    assert result.status is AgentRunStatus.SUCCEEDED, result.error
    assert target.read_text() == "hello\n"
    assert processes_in(repo) == []
    assert result.files_changed == ["notes/hello.txt"]
    assert result.final_message == "Wrote it."
    [tool_result] = fake_anthropic.main_requests[1].tool_results()
    assert not tool_result.get("is_error")


async def test_the_cli_stops_itself_at_the_usd_budget_it_is_given(
    claude_bin, claude_env, fake_anthropic, repo
):
    target = repo / "notes" / "hello.txt"
    fake_anthropic.play(ToolUse("Write", {"file_path": str(target), "content": "hello\n"}), Text("Wrote it."))
    request = request_for(repo, model=MODEL, max_budget_usd=Decimal("0.000001"))
    result = await engine(claude_bin, claude_env).run(request)
    assert result.status is AgentRunStatus.FAILED
    assert "budget" in (result.error or "").lower(), result.error
    assert len(fake_anthropic.main_requests) == 1  # no turn after the one that crossed it


async def test_the_run_is_stopped_once_its_streamed_usage_passes_the_token_budget(
    claude_bin, claude_env, fake_anthropic, repo
):
    target = repo / "notes" / "hello.txt"
    fake_anthropic.play(ToolUse("Write", {"file_path": str(target), "content": "hello\n"}), Text("Wrote it."))
    result = await engine(claude_bin, claude_env).run(request_for(repo, model=MODEL, max_tokens=50))
    assert result.status is AgentRunStatus.FAILED
    assert result.error is not None
    assert result.error.startswith("claude was stopped at "), result.error
    assert result.error.endswith(" tokens: its token budget had 50 left")
    assert result.usage.total_tokens > 50  # what the messages read so far used
    assert len(fake_anthropic.main_requests) == 1
    assert processes_in(repo) == []


async def test_the_result_is_read_past_the_output_cap(claude_bin, claude_env, fake_anthropic, repo):
    big = "x" * 2_500  # each line fits the cap; all of them together do not
    fake_anthropic.play(ToolUse("Write", {"file_path": str(repo / "big.txt"), "content": big}), Text("Done."))
    claude = ClaudeEngine(binary=claude_bin, base_env=claude_env, prices={}, max_output_bytes=4096)
    result = await claude.run(request_for(repo))
    assert result.output_truncated
    assert result.status is AgentRunStatus.SUCCEEDED, result.error
    assert result.final_message == "Done."
    assert result.files_changed == ["big.txt"]


@pytest.mark.parametrize(
    ("stage", "tool"),
    [
        (Stage.PLANNING, ToolUse("Write", {"file_path": "{repo}/plan.txt", "content": "x"})),
        (Stage.QA, ToolUse("Bash", {"command": "echo x > {repo}/plan.txt", "description": "write"})),
        (
            Stage.DISCOVERY,
            ToolUse("Edit", {"file_path": "{repo}/README.md", "old_string": "#", "new_string": "!"}),
        ),
    ],
)
async def test_read_only_stages_cannot_write(claude_bin, claude_env, fake_anthropic, repo, stage, tool):
    script_input = json.loads(json.dumps(tool.input).replace("{repo}", str(repo)))
    # Edit needs a Read first; reading is allowed and makes the refusal the permission's doing.
    read = ToolUse("Read", {"file_path": str(repo / "README.md")})
    fake_anthropic.play(read, ToolUse(tool.name, script_input), Text("done"))
    result = await engine(claude_bin, claude_env).run(request_for(repo, stage))
    assert result.status is AgentRunStatus.SUCCEEDED, result.error
    assert not (repo / "plan.txt").exists()
    assert (repo / "README.md").read_text() == "# demo\n"
    assert result.files_changed == []
    [refusal] = fake_anthropic.main_requests[2].tool_results()
    assert refusal["is_error"] is True


async def test_hanging_endpoint_times_out_and_leaves_no_process(claude_bin, claude_env, fake_anthropic, repo):
    fake_anthropic.play(Hang())
    # Long enough for the CLI (node) to start and ask on a loaded machine: the hang is the endpoint's.
    result = await engine(claude_bin, claude_env).run(request_for(repo, timeout_seconds=10))
    assert result.status is AgentRunStatus.TIMED_OUT
    assert result.exit_code != 0
    assert "within 10 s" in (result.error or "")
    assert len(fake_anthropic.main_requests) == 1
    assert processes_in(repo) == []


async def test_environment_is_exactly_the_base_env_and_secrets_are_redacted(
    claude_bin, claude_env, fake_anthropic, repo, tmp_path
):
    # The CLI refuses to show its environment to the model (`env` needs approval), so a wrapper
    # records what the engine handed over before it becomes the real CLI.
    seen = tmp_path / "env.json"
    wrapper = tmp_path / "claude-wrapper"
    wrapper.write_text(
        f"#!{sys.executable}\nimport os, shutil, sys\n"  # /proc: the block as given, before Python's own
        f"shutil.copyfile('/proc/self/environ', {str(seen)!r})\n"
        f"os.execv({claude_bin!r}, [{claude_bin!r}, *sys.argv[1:]])\n"
    )
    wrapper.chmod(0o755)
    env = {**claude_env, "TASKSGODZILLA_DATABASE_URL": "postgresql://x", "PROJECT_TOKEN": "s3cr3t-value-42"}
    fake_anthropic.play(
        ToolUse("Bash", {"command": "git status", "description": "look"}), Text("s3cr3t-value-42")
    )
    claude = engine(str(wrapper), env)
    result = redacted(await claude.run(request_for(repo)), Redactor(["s3cr3t-value-42"]))
    assert result.status is AgentRunStatus.SUCCEEDED, result.error
    handed_over = dict(item.split("=", 1) for item in seen.read_text().split("\0") if item)
    assert handed_over == {k: v for k, v in env.items() if not k.startswith("TASKSGODZILLA_")}
    assert result.commands_run == ["git status"]
    assert "On branch main" in json.dumps(fake_anthropic.main_requests[1].tool_results())
    assert result.final_message == REDACTED
    assert "s3cr3t-value-42" not in result.transcript
    assert REDACTED in result.transcript


async def test_a_prompt_beyond_the_argument_limit_arrives_whole(claude_bin, claude_env, fake_anthropic, repo):
    prompt = "Context:\n" + "x" * 200_000 + "\nEND"  # one argv entry may hold 128 KiB at most
    fake_anthropic.play(Text("read it"))
    request = AgentRequest(stage=Stage.PLANNING, prompt=prompt, workdir=repo)
    result = await engine(claude_bin, claude_env).run(request)
    assert result.status is AgentRunStatus.SUCCEEDED, result.error
    assert prompt in fake_anthropic.main_requests[0].user_text()
