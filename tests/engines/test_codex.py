"""The codex adapter with the real Codex CLI (pinned) against a scripted Responses API endpoint, in a
real git repository: codex's own agent loop runs the commands, in codex's own sandbox."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from app.domain.agents import AgentRequest, redacted
from app.domain.records import AgentRunStatus, Stage
from app.domain.redaction import REDACTED, Redactor
from app.domain.usage import ModelPrice, TokenUsage
from app.engines.codex import CodexEngine
from app.errors import ConfigError
from tests.support.fake_openai import (
    ApplyPatch,
    FakeOpenAI,
    Hang,
    HttpError,
    Message,
    ToolCall,
    Usage,
    codex_env,
    provider_overrides,
    total_usage,
)

MODEL = "mock-model"
PRICE = ModelPrice(input=Decimal("2"), cached_input=Decimal("1"), output=Decimal("10"))
SCHEMA = {
    "type": "object",
    "properties": {"summary": {"type": "string"}, "files": {"type": "array", "items": {"type": "string"}}},
    "required": ["summary", "files"],
    "additionalProperties": False,
}
SECRET = f"sk-secret-{uuid.uuid4().hex}"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one commit."""
    path = tmp_path / "repo"
    path.mkdir()
    git = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    (path / "README.md").write_text("# demo\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], check=True)
    return path


@pytest.fixture
def agent_env(codex_home: Path, tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return codex_env(codex_home, os.environ["PATH"], home)


@pytest.fixture
def make_engine(codex_bin: str, agent_env: dict[str, str], fake_openai: FakeOpenAI):
    def build(**options: object) -> CodexEngine:
        settings: dict[str, object] = {
            "binary": codex_bin,
            "base_env": agent_env,
            "prices": {MODEL: PRICE},
            "max_output_bytes": 1024 * 1024,
            "config_overrides": provider_overrides(fake_openai.base_url),
        }
        return CodexEngine(**{**settings, **options})  # type: ignore[arg-type]

    return build


def processes_mentioning(marker: str) -> list[str]:
    """Command lines of live (not zombie) processes that mention `marker`."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if marker in cmdline and stat.rsplit(b")", 1)[1].split()[0] != b"Z":
            found.append(cmdline)
    return found


def survivors(marker: str) -> list[str]:
    """Processes mentioning `marker` that are still there after a short wait for them to go."""
    deadline = time.monotonic() + 3
    while (found := processes_mentioning(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


async def test_the_agent_edits_the_repo_and_answers_in_the_schema(
    make_engine, fake_openai: FakeOpenAI, repo: Path, tmp_path: Path
) -> None:
    write = ToolCall("printf 'hello from agent' > notes.txt", usage=Usage(1000, 200, 50, 10))
    leak = ToolCall(f"echo token={SECRET}", usage=Usage(1200, 1000, 20, 0))
    answer = {"summary": "wrote notes", "files": ["notes.txt"]}
    fake_openai.play(write, leak, Message(json.dumps(answer), usage=Usage(1500, 1200, 30, 5)))
    request = AgentRequest(
        stage=Stage.EXECUTION,
        prompt=f"Write notes.txt. The deploy token is {SECRET}.",
        workdir=repo,
        model=MODEL,
        output_schema=SCHEMA,
        timeout_seconds=60,
    )
    result = await make_engine().run(request)

    assert result.status is AgentRunStatus.SUCCEEDED, result.error
    assert result.exit_code == 0
    assert (repo / "notes.txt").read_text() == "hello from agent"
    assert result.structured_output == answer
    assert result.final_message is not None
    assert json.loads(result.final_message) == answer
    assert any("printf 'hello from agent' > notes.txt" in command for command in result.commands_run)
    assert result.usage == total_usage(fake_openai.script)
    assert result.usage == TokenUsage(
        input_tokens=3700, cached_input_tokens=2400, output_tokens=100, reasoning_tokens=15
    )
    # (3700 - 2400) * $2 + 2400 * $1 + 100 * $10, per million tokens
    assert result.cost_usd == Decimal("0.006000")
    assert result.engine == "codex"
    assert result.model == MODEL
    # The model got the prompt, the schema, and the output of the command it asked for.
    assert any(SECRET in text for text in fake_openai.prompts())
    assert fake_openai.requests[0]["text"]["format"]["schema"] == SCHEMA
    assert fake_openai.requests[0]["model"] == MODEL
    assert fake_openai.other_requests == []  # codex only ever POSTs /v1/responses
    assert fake_openai.call_outputs(write.call_id)  # codex sent the command's result back
    assert f"token={SECRET}" in fake_openai.call_outputs(leak.call_id)[0]
    # What the service stores has the secret redacted, in every field (app.services.agents.run_agent).
    stored = redacted(result, Redactor({"THE_TOKEN": SECRET}))
    assert "notes.txt" in stored.transcript
    assert SECRET not in stored.model_dump_json()
    assert REDACTED in stored.transcript
    assert stored.secrets_redacted["transcript"] == ["THE_TOKEN"]


async def test_files_changed_by_codex_patches_are_listed(
    make_engine, fake_openai: FakeOpenAI, repo: Path
) -> None:
    patch = "*** Begin Patch\n*** Add File: src/new.py\n+print('hi')\n*** End Patch\n"
    patch_call = ApplyPatch(patch)
    fake_openai.play(patch_call, Message("added src/new.py"))
    # The default model: codex only offers its apply_patch tool to models it knows.
    request = AgentRequest(stage=Stage.EXECUTION, prompt="add a file", workdir=repo, timeout_seconds=60)
    result = await make_engine().run(request)
    assert result.status is AgentRunStatus.SUCCEEDED, result.error
    assert (repo / "src" / "new.py").read_text() == "print('hi')\n"
    assert result.files_changed == ["src/new.py"]
    assert "src/new.py" in fake_openai.call_outputs(patch_call.call_id)[0]
    assert result.final_message == "added src/new.py"
    assert result.cost_usd is None  # no model named, no price known


@pytest.mark.parametrize("stage", [Stage.QA, Stage.PLANNING])
async def test_a_read_only_stage_cannot_write(
    make_engine, fake_openai: FakeOpenAI, repo: Path, stage: Stage
) -> None:
    read = ToolCall("cat README.md")
    write = ToolCall("printf 'x' > written.txt")
    fake_openai.play(read, write, Message("checked"))
    request = AgentRequest(stage=stage, prompt="check", workdir=repo, model=MODEL, timeout_seconds=60)
    result = await make_engine().run(request)
    assert result.status is AgentRunStatus.SUCCEEDED, result.error
    assert not (repo / "written.txt").exists()
    assert "# demo" in fake_openai.call_outputs(read.call_id)[0]  # reading is allowed
    assert "Read-only file system" in fake_openai.call_outputs(write.call_id)[0]


@pytest.mark.parametrize(
    ("status", "message", "reported"),
    [
        (400, "invalid_request: scripted failure", "invalid_request: scripted failure"),
        # codex words every 5xx its own way
        (500, "server_error: scripted outage", "temporary errors"),
    ],
)
async def test_a_failing_model_endpoint_is_a_failed_run(
    make_engine, fake_openai: FakeOpenAI, repo: Path, status: int, message: str, reported: str
) -> None:
    fake_openai.play(HttpError(status, message))
    request = AgentRequest(stage=Stage.EXECUTION, prompt="go", workdir=repo, model=MODEL, timeout_seconds=60)
    started = time.monotonic()
    result = await make_engine().run(request)
    assert time.monotonic() - started < 20
    assert result.status is AgentRunStatus.FAILED
    assert result.error is not None
    assert reported in result.error
    assert result.exit_code not in (0, None)
    assert len(fake_openai.requests) == 1  # no retries: the provider override says so
    assert result.structured_output is None


async def test_a_hanging_model_times_out_and_leaves_no_process(
    make_engine, fake_openai: FakeOpenAI, repo: Path
) -> None:
    fake_openai.play(Hang())
    request = AgentRequest(stage=Stage.EXECUTION, prompt="go", workdir=repo, model=MODEL, timeout_seconds=3)
    started = time.monotonic()
    result = await make_engine().run(request)
    assert result.status is AgentRunStatus.TIMED_OUT
    assert time.monotonic() - started < 8
    assert result.error is not None
    assert "3 s" in result.error
    assert len(fake_openai.requests) == 1  # it did reach the model
    assert survivors(str(repo)) == []


async def test_cancelling_kills_codex_and_the_command_it_runs(
    make_engine, fake_openai: FakeOpenAI, repo: Path
) -> None:
    marker = f"{40 + uuid.uuid4().int % 10_000 / 10_000:.4f}"
    fake_openai.play(ToolCall(f"sleep {marker}"), Hang())
    request = AgentRequest(stage=Stage.EXECUTION, prompt="go", workdir=repo, model=MODEL, timeout_seconds=60)
    task = asyncio.create_task(make_engine().run(request))
    for _ in range(400):  # codex starts the command within a second or so
        if processes_mentioning(f"sleep {marker}"):
            break
        await asyncio.sleep(0.05)
    assert processes_mentioning(f"sleep {marker}"), "codex never ran the command"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert survivors(str(repo)) == []
    assert survivors(f"sleep {marker}") == []


async def test_the_answer_and_usage_survive_an_output_cap(
    make_engine, fake_openai: FakeOpenAI, repo: Path, tmp_path: Path
) -> None:
    fake_openai.play(ToolCall("seq 1 20000"), Message("counted", usage=Usage(500, 0, 9, 0)))
    request = AgentRequest(
        stage=Stage.EXECUTION, prompt="count", workdir=repo, model=MODEL, timeout_seconds=60
    )
    result = await make_engine(max_output_bytes=300).run(request)
    assert result.status is AgentRunStatus.SUCCEEDED, result.error
    assert result.output_truncated
    assert result.final_message == "counted"
    assert result.usage == total_usage(fake_openai.script)
    assert "truncated" in result.transcript
    assert len(result.transcript) < 2000


async def test_the_agent_sees_only_the_environment_it_was_given(
    make_engine,
    agent_env: dict[str, str],
    fake_openai: FakeOpenAI,
    repo: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEAKY_PARENT_VARIABLE", "from-the-service")
    dump = ToolCall("env")
    fake_openai.play(dump, Message("done"))
    # codex hands its commands every variable it got, even *TOKEN* ones: the filter must be ours.
    base_env = {**agent_env, "TASKSGODZILLA_API_TOKEN": "our-own", "ALLOWED_EXTRA_TOKEN": "yes-please"}
    request = AgentRequest(stage=Stage.EXECUTION, prompt="env", workdir=repo, model=MODEL, timeout_seconds=60)
    result = await make_engine(base_env=base_env).run(request)
    assert result.status is AgentRunStatus.SUCCEEDED, result.error
    seen = fake_openai.call_outputs(dump.call_id)[0]
    assert "ALLOWED_EXTRA_TOKEN=yes-please" in seen
    assert "TASKSGODZILLA_API_TOKEN" not in seen
    assert "LEAKY_PARENT_VARIABLE" not in seen


async def test_outside_a_git_repository_codex_refuses_to_start(
    make_engine, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    """Exit 1 before any event: the CLI did not start, and no retry would change that."""
    plain = tmp_path / "not-a-repo"
    plain.mkdir()
    request = AgentRequest(stage=Stage.EXECUTION, prompt="go", workdir=plain, model=MODEL, timeout_seconds=60)
    with pytest.raises(ConfigError, match="skip-git-repo-check") as refused:  # codex's reason, from stderr
        await make_engine().run(request)
    assert "exit code 1" in refused.value.message
    assert "TASKSGODZILLA_CODEX_BIN" in refused.value.message
    assert fake_openai.requests == []


async def test_a_missing_binary_is_a_config_error_naming_the_setting(
    make_engine, repo: Path, tmp_path: Path
) -> None:
    request = AgentRequest(stage=Stage.EXECUTION, prompt="go", workdir=repo, timeout_seconds=10)
    with pytest.raises(ConfigError, match=r"not found.*TASKSGODZILLA_CODEX_BIN"):
        await make_engine(binary=str(tmp_path / "no-codex")).run(request)


async def test_the_version_probe_runs_the_real_cli_and_is_cached(make_engine, tmp_path: Path) -> None:
    engine = make_engine()
    first = await engine.check()
    assert (first.status, first.version) == ("ok", "codex-cli 0.169.0")
    assert await engine.check() is first, "asked again within the minute: the cached answer"
    missing = await make_engine(binary=str(tmp_path / "no-codex")).check()
    assert missing.status == "error"
    assert missing.error == f"executable not found: {tmp_path / 'no-codex'} (check TASKSGODZILLA_CODEX_BIN)"


async def test_a_prompt_that_is_a_subcommand_name_is_still_a_prompt(
    make_engine, fake_openai: FakeOpenAI, repo: Path
) -> None:
    fake_openai.play(Message("reviewed"))
    request = AgentRequest(stage=Stage.QA, prompt="review", workdir=repo, model=MODEL, timeout_seconds=60)
    result = await make_engine().run(request)
    assert result.status is AgentRunStatus.SUCCEEDED, result.error
    assert "review" in fake_openai.prompts()
