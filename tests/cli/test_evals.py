"""`tasksgodzilla eval` on the shipped sample suite (evals/sample), as an operator runs it: a real
process, real git repositories, the real Codex CLI against the scripted model endpoint, and a `command`
agent. No database: the command needs none."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from app import prompts
from app.cli.main import cli
from app.config import Settings
from app.errors import ConfigError
from app.services.evals import Evaluator, load_suite, run_suite
from tests.support.fake_openai import API_KEY_ENV, Message, ToolCall, codex_env, provider_overrides

CLI = shutil.which("tasksgodzilla", path=str(Path(sys.executable).parent)) or "tasksgodzilla"
SAMPLE = Path(__file__).resolve().parents[2] / "evals" / "sample"
EVAL_AGENT = Path(__file__).resolve().parents[1] / "support" / "eval_agent.py"
TIMEOUT = 120


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKSGODZILLA_")}
    env.update(
        TASKSGODZILLA_DATA_DIR=str(tmp_path / "data"),
        TASKSGODZILLA_AGENT_TIMEOUT_SECONDS="60",
        TASKSGODZILLA_COMMAND_AGENT=json.dumps([sys.executable, str(EVAL_AGENT)]),
        TASKSGODZILLA_AGENT_ENV_PASSTHROUGH="PATH,HOME,EVAL_AGENT_SKIP",
    )
    env.update(extra)
    return env


def _eval(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "eval", *args], env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def _rows(stdout: str) -> dict[str, list[str]]:
    """The table's rows by variant, cells split on runs of spaces (no cell holds two spaces)."""
    lines = [line.split("  ") for line in stdout.splitlines()]
    cells = [[cell.strip() for cell in line if cell.strip()] for line in lines]
    assert cells[0] == [
        "variant", "runs", "passed", "pass rate", "mean tokens", "total tokens", "cost", "mean time"
    ]  # fmt: skip
    return {row[0]: row for row in cells[1:]}


def test_command_agent_runs_the_sample_suite(tmp_path):
    report_path = tmp_path / "report.json"
    result = _eval(
        _env(tmp_path, EVAL_AGENT_SKIP="readme-line"),
        str(SAMPLE), "--variant", "command", "--json", str(report_path), "--min-pass-rate", "0.9",
    )  # fmt: skip
    assert result.returncode == 1, f"2 of 3 is under the minimum pass rate\n{result.stderr}"
    assert "variant command passed 67%, under 90%" in result.stderr
    assert _rows(result.stdout)["command"][:7] == ["command", "3", "2", "67%", "1050", "3150", "unknown"]
    report = json.loads(report_path.read_text())
    outcomes = {run["task"]: (run["passed"], run["check_exit_code"]) for run in report["runs"]}
    assert outcomes == {"add-function": (True, 0), "fix-failing-test": (True, 0), "readme-line": (False, 1)}
    assert all(run["tokens"] == 1050 and run["cost_usd"] is None for run in report["runs"])
    [summary] = report["variants"]
    assert (summary["variant"], summary["runs"], summary["passed"]) == ("command", 3, 2)
    assert summary["cost_usd"] is None, "unknown, never 0"
    assert "[3/3] fail (check exited 1: (no output))" in result.stderr, "progress on stderr"


async def test_codex_variants_pass_and_fail_as_their_agent_works(
    tmp_path, fake_openai, codex_bin, codex_home
):
    home = tmp_path / "home"
    home.mkdir()
    env = _env(
        tmp_path,
        TASKSGODZILLA_CODEX_BIN=codex_bin,
        TASKSGODZILLA_CODEX_CONFIG=json.dumps(provider_overrides(fake_openai.base_url)),
        TASKSGODZILLA_AGENT_ENV_PASSTHROUGH=f"PATH,HOME,CODEX_HOME,{API_KEY_ENV}",
        **codex_env(codex_home, os.environ["PATH"], home),
    )
    fake_openai.play(
        # Variant `codex` (the shipped prompt) does the task ...
        ToolCall("printf 'Run the tests with `python3 -m unittest`.\\n' >> README.md"),
        Message("added the line"),
        # ... variant `codex-terse` (the suite's own prompt) answers without doing it.
        Message("nothing to do"),
    )
    result = await asyncio.to_thread(
        _eval, env, str(SAMPLE), "--task", "readme-line", "--variant", "codex", "--variant", "codex-terse",
        "--json", str(tmp_path / "report.json"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = _rows(result.stdout)
    assert rows["codex"][1:4] == ["1", "1", "100%"]
    assert rows["codex-terse"][1:4] == ["1", "0", "0%"]
    assert rows["codex"][5] == "220", "two model requests of 100 input and 10 output tokens (scripted)"
    report = json.loads((tmp_path / "report.json").read_text())
    assert [(r["variant"], r["passed"], r["agent_status"]) for r in report["runs"]] == [
        ("codex", True, "succeeded"),
        ("codex-terse", False, "succeeded"),
    ]
    versions = [run["prompt_version"] for run in report["runs"]]
    assert versions[0] == prompts.load("execution").version
    assert versions[1].startswith("eval-codex-terse@")
    asked = fake_openai.prompts()
    assert any(".protocols/0001-readme-line/01-readme-line.md" in p for p in asked), "the shipped prompt"
    assert any(p.startswith("You work in the git repository") and "`python3 -m unittest`" in p for p in asked)


def _in_process(*args: str) -> Result:
    """The command in this process: for errors found before the settings are read (no process start)."""
    return CliRunner().invoke(cli, ["eval", *args])


def test_a_bad_suite_is_a_clear_error(tmp_path):
    suite = tmp_path / "suite"
    (suite / "fixtures").mkdir(parents=True)
    (suite / "suite.yaml").write_text(
        "tasks:\n  - name: Bad Name\n    repo: fixtures\n    task: do it\n    check: []\n"
        "variants:\n  - name: v\n    engine: gpt\n"
    )
    result = _in_process(str(suite))
    assert result.exit_code == 65, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("error: suite.yaml: tasks.0.name: String should match pattern")
    assert "tasks.0.check: List should have at least 1 item" in line
    assert "variants.0.engine: Input should be 'codex', 'claude' or 'command'" in line
    assert result.stdout == ""

    (suite / "suite.yaml").write_text(
        "tasks:\n  - {name: t, repo: ../elsewhere, task: do it, check: [true]}\n"
        "variants:\n  - {name: v, engine: codex}\n"
    )
    result = _in_process(str(suite))
    assert result.exit_code == 65
    assert "tasks.0.repo: Value error, must be a relative path inside the suite folder" in result.stderr

    (suite / "suite.yaml").write_text(
        'tasks:\n  - {name: t, repo: fixtures, task: do it, check: ["true"]}\n'
        "variants:\n  - {name: v, engine: codex, prompt: p.md}\n"
    )
    (suite / "p.md").write_text("Do $task in $where\n")
    result = _in_process(str(suite))
    assert result.exit_code == 65
    assert "error: variant v: prompt p.md: prompt 'eval-v' needs a value for 'where'" in result.stderr

    (suite / "suite.yaml").write_text("tasks: [oops\n")
    result = _in_process(str(suite))
    assert result.exit_code == 65
    assert result.stderr.startswith("error: suite.yaml is not valid YAML")

    (suite / "suite.yaml").unlink()
    result = _in_process(str(suite))
    assert result.exit_code == 65
    assert "has no suite.yaml or suite.yml or suite.json" in result.stderr

    unknown = _in_process(str(SAMPLE), "--variant", "nope")
    assert unknown.exit_code == 65
    assert "no variant named nope in the suite (it has codex, codex-terse, claude, command)" in unknown.stderr

    missing = _in_process(str(tmp_path / "absent"))
    assert missing.exit_code == 65
    assert "is not a folder" in missing.stderr


async def test_a_variant_whose_engine_is_not_configured_is_refused_before_any_run(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")  # no TASKSGODZILLA_COMMAND_AGENT
    loaded = load_suite(SAMPLE)
    loaded = dataclasses.replace(loaded, suite=loaded.suite.selected(["command"], []))
    started = []
    with pytest.raises(
        ConfigError, match=r"engine 'command' is not available \(set TASKSGODZILLA_COMMAND_AGENT\)"
    ):
        await run_suite(Evaluator.from_settings(settings), loaded, started=lambda *run: started.append(run))
    assert started == []


async def test_a_variant_whose_engine_cannot_run_is_refused_before_any_run(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", claude_bin=str(tmp_path / "no-claude"))
    loaded = load_suite(SAMPLE)
    loaded = dataclasses.replace(loaded, suite=loaded.suite.selected(["claude"], []))
    started = []
    with pytest.raises(
        ConfigError, match=r"engine claude \(variant claude\) cannot run: .*TASKSGODZILLA_CLAUDE_BIN"
    ):
        await run_suite(Evaluator.from_settings(settings), loaded, started=lambda *run: started.append(run))
    assert started == []
