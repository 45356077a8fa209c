"""Remote mode: `tasksgodzilla --server URL …` (or TASKSGODZILLA_API_BASE) as a real process against a
live service (the real application on a socket, with a token and a worker), never a database of its own:
the same lines and exit codes as local mode, refusals as the server's error classes."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from app.cli.common import Session, reports_errors, run_session
from app.cli.remote import SERVER
from app.config import Settings
from app.web.app import create_app
from tests.support.workflow import make_repos, workflow_settings

CLI = shutil.which("tasksgodzilla", path=str(Path(sys.executable).parent)) or "tasksgodzilla"
TOKEN = "remote-cli-token-0123456789"
TIMEOUT = 120


@dataclass
class Done:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
async def remote(database_url, aiohttp_server, tmp_path):
    """The service's URL, and an environment with its token but no database of its own."""
    settings = workflow_settings(tmp_path / "server", api_token=TOKEN)
    server = await aiohttp_server(create_app(settings, database_url))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKSGODZILLA_", "AGENT_"))}
    # A data dir of its own, empty: a command that opened a database here would be slow and say so.
    env.update(TASKSGODZILLA_API_TOKEN=TOKEN, TASKSGODZILLA_DATA_DIR=str(tmp_path / "elsewhere"))
    return str(server.make_url("")).rstrip("/"), env


async def tg(remote, *args: str, cwd: Path | None = None, via_env: bool = False) -> Done:
    """Run the CLI against the service (`--server URL`, or TASKSGODZILLA_API_BASE with `via_env`)
    without blocking the event loop the service answers in."""
    url, env = remote
    argv = [CLI, *args] if via_env else [CLI, "--server", url, *args]
    child = await asyncio.create_subprocess_exec(
        *argv,
        env={**env, "TASKSGODZILLA_API_BASE": url} if via_env else env,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(child.communicate(), TIMEOUT)
    done = Done(child.returncode or 0, out.decode(), err.decode())
    assert "local mode" not in done.stderr, f"{args} opened a local database:\n{done.stderr}"
    return done


async def ok(remote, *args: str, **kwargs) -> str:
    done = await tg(remote, *args, **kwargs)
    assert done.code == 0, f"{args}: exit {done.code}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


async def test_project_commands_over_http(remote, tmp_path):
    repos = make_repos(tmp_path / "repos")
    # A relative --local-path is the operator's folder's, made absolute before it is sent.
    added = await ok(remote, "project", "add", "demo", "--local-path", "local", cwd=repos.local.parent)
    assert "project demo registered" in added
    assert f"project demo ready ({repos.local})" in added
    listed = await ok(remote, "project", "list", via_env=True)
    assert "demo" in listed
    assert "ready" in listed

    edited = await ok(remote, "project", "edit", "demo", "--base-branch", "nope", "--no-setup")
    assert "project demo changed: base_branch" in edited
    assert "`tasksgodzilla project setup demo`" in edited
    failed = await tg(remote, "project", "setup", "demo")
    assert failed.code == 75, failed
    assert "setup of project demo failed" in failed.stderr
    assert "nope" in failed.stderr
    back = await ok(remote, "project", "edit", "demo", "--base-branch", "main", "--setup")
    assert "project demo ready" in back

    assert "strict" in await ok(remote, "policy", "list")
    assert json.loads(await ok(remote, "policy", "show", "strict"))[0]["pack"]["auto_merge"] is False
    put = await ok(remote, "policy", "set", "demo", "--pack", "strict@1.0", "--strict")
    assert put.strip() == "project demo: pack strict@1.0, strict True"
    assert json.loads(await ok(remote, "policy", "effective", "demo"))["pack"] == "strict@1.0"

    missing = await tg(remote, "project", "edit", "999999", "--ci-provider", "github")
    assert missing.code == 66, missing  # NotFoundError's exit code, as in local mode
    assert missing.stderr.startswith("error: ")

    assert "project demo deleted" in await ok(remote, "project", "delete", "demo", "--yes")
    assert "no projects yet" in await ok(remote, "project", "list")


def test_a_command_without_a_remote_form_refuses_rather_than_open_a_database(tmp_path):
    """Every command has its remote form; one added without it refuses in remote mode."""

    @click.group()
    @click.pass_context
    def group(context: click.Context) -> None:
        context.meta[SERVER] = "http://127.0.0.1:9"

    @group.command("local-only")
    @reports_errors
    def local_only() -> None:
        run_session(Settings(data_dir=tmp_path / "never"), _never)

    refused = CliRunner().invoke(group, ["local-only"])
    assert refused.exit_code == 69, refused.output
    assert "`group local-only` is not available over HTTP yet" in refused.output
    assert not (tmp_path / "never").exists()


async def _never(session: Session) -> None:
    raise AssertionError("a remote command opened a local database")


async def test_a_wrong_token_or_no_server_fails_with_the_servers_refusal(remote):
    url, env = remote
    wrong = await tg((url, {**env, "TASKSGODZILLA_API_TOKEN": "wrong"}), "project", "list")
    assert wrong.code != 0
    assert wrong.stderr.startswith("error: ")
    gone = await tg(("http://127.0.0.1:9", env), "project", "list")
    assert gone.code == 69, gone
    assert "cannot reach the server" in gone.stderr


async def test_protocol_org_budget_and_audit_commands_over_http(remote, tmp_path):
    repos = make_repos(tmp_path / "repos")
    await ok(remote, "project", "add", "demo", "--local-path", str(repos.local))
    assert (await ok(remote, "protocol", "new", "demo", "Write two parts")).startswith("created demo/0001 ")

    out = (await ok(remote, "protocol", "run", "demo/0001")).splitlines()
    assert out[0].split()[1] == "protocol.created"  # the run's history first
    assert out[1] == "demo/0001: started"
    assert [line.split()[1] for line in out[2:-1]].count("step.completed") == 2
    assert out[-1].startswith(
        "demo/0001 completed: 2 steps on branch tasksgodzilla/demo/0001-write-two-parts"
    )

    shown = json.loads(await ok(remote, "protocol", "status", "demo/0001", "--json"))
    assert shown["protocol"]["status"] == "completed"
    assert [s["status"] for s in shown["steps"]] == ["completed", "completed"]
    assert shown["usage"]["total"]["runs"] >= 5  # planning, two executions, two QA
    table = (await ok(remote, "protocol", "status", "demo/0001")).splitlines()
    assert table[0] == "demo/0001  Write two parts  [completed]"
    by_engine = json.loads(await ok(remote, "usage", "demo", "--group", "engine", "--json"))
    assert [row["key"] for row in by_engine["rows"]] == ["command"]
    assert by_engine["total"]["runs"] == shown["usage"]["total"]["runs"]
    events = [
        json.loads(line) for line in (await ok(remote, "protocol", "events", "1", "--json")).splitlines()
    ]
    assert events[0]["event_type"] == "protocol.created"
    assert events[-1]["event_type"] == "protocol.completed"
    cancelled = await tg(remote, "protocol", "cancel", "demo/0001")
    assert cancelled.code == 75, cancelled  # the server's IllegalTransitionError, as in local mode
    assert "cannot go from completed to cancelled" in cancelled.stderr
    assert (await tg(remote, "protocol", "status", "demo/0009")).code == 66
    # Over HTTP the server records the token's holder as who acted: a name of the caller's is refused.
    claimed = await tg(remote, "protocol", "approve", "demo/0001/01", "--by", "alice")
    assert claimed.code == 2, claimed
    assert "--by is for commands on this machine's database" in claimed.stderr

    assert "organisation acme created" in await ok(remote, "org", "add", "Acme", "--slug", "acme")
    assert "acme" in await ok(remote, "org", "list")
    token = await tg(remote, "org", "token", "acme")
    assert token.code == 0, token
    assert "shown once" in token.stderr
    assert token.stdout.strip()

    raised = await ok(remote, "budget", "raise", "project", "5", "--project", "demo")
    assert raised.startswith("project budget raised by 5")

    trail = [
        json.loads(line) for line in (await ok(remote, "audit", "export", "--project", "demo")).splitlines()
    ]
    kinds = [row["event_type"] for row in trail]
    assert "project.created" in kinds
    assert "budget.raised" in kinds
    # Acting through the API, the CLI is the operator of the token it sent, not a local OS user.
    assert {(row["actor_kind"], row["via"]) for row in trail} == {("operator", "api")}
