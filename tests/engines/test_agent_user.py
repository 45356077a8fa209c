"""Agents run as another OS user when the service runs as root: who that is, what it is lent, what not.

These tests need root (the test machine's CI runs as root); they are the path every agent takes there.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from app.domain.agents import AgentRequest
from app.domain.records import AgentRunStatus, Stage
from app.engines.agent_user import (
    DEFAULT_AGENT_USER,
    AgentUser,
    agent_user_for,
    lent_workdir,
)
from app.engines.claude import ClaudeEngine
from app.engines.command import CommandEngine
from app.errors import ConfigError
from tests.support.fake_anthropic import Text, ToolUse
from tests.support.workflow import git, make_repos

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


@pytest.fixture
def agent(tmp_path: Path) -> AgentUser:
    user = agent_user_for(None, home=tmp_path / "agent-home")
    assert user is not None
    return user


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    """A protocol's worktree, as the service makes them: a `.git` file, files checked out by root."""
    repos = make_repos(tmp_path)
    path = tmp_path / "worktrees" / "0001-demo"
    git("worktree", "add", "-q", "-b", "work", str(path), cwd=repos.local)
    (path / "src").mkdir()
    (path / "src" / "app.py").write_text("print('hi')\n")
    return path


def owners(folder: Path) -> set[int]:
    return {p.lstat().st_uid for p in folder.rglob("*") if p.name != ".git" or p.parent != folder}


def test_as_root_agents_run_as_the_default_user_created_on_first_use(tmp_path: Path, agent: AgentUser):
    entry = pwd.getpwnam(DEFAULT_AGENT_USER)
    assert (agent.name, agent.uid, agent.gid) == (DEFAULT_AGENT_USER, entry.pw_uid, entry.pw_gid)
    assert agent.uid != 0
    assert agent_user_for("root", home=tmp_path) is None  # the operator's explicit choice
    with pytest.raises(ConfigError, match="no user named 'no-such-agent-user'"):
        agent_user_for("no-such-agent-user", home=tmp_path)


def test_the_agent_environment_is_the_agent_users_own(agent: AgentUser):
    env = agent.environment({"PATH": "/usr/bin", "HOME": "/root", "USER": "root"})
    assert env["HOME"] == str(agent.home)
    assert (env["USER"], env["LOGNAME"]) == (agent.name, agent.name)
    assert env["PATH"] == "/usr/bin"


async def test_a_writing_run_borrows_the_worktree_and_gives_everything_back(
    worktree: Path, agent: AgentUser, tmp_path: Path
):
    outside = tmp_path / "outside.txt"
    outside.write_text("not the agent's")
    (worktree / "src" / "link").symlink_to(outside)
    (worktree / "linked-folder").symlink_to(tmp_path, target_is_directory=True)
    top = os.stat(worktree)
    async with lent_workdir(agent, worktree, writes=True):
        assert owners(worktree) == {agent.uid}
        assert os.stat(outside).st_uid == 0  # links are lent, never what they point to
        assert (worktree / ".git").stat().st_uid == 0  # git's ownership check stays satisfied
        lent = os.stat(worktree)
        assert (lent.st_uid, lent.st_gid) == (0, agent.gid)
        assert lent.st_mode & stat.S_ISVTX  # the agent may not replace .git
        made = as_agent(agent, worktree, "import os; open('new.txt', 'w').write('x'); os.mkdir('d')")
        assert made.returncode == 0, made.stderr
        refused = as_agent(agent, worktree, "import os; os.rename('.git', 'moved')")
        assert refused.returncode != 0
    assert owners(worktree) == {0}
    assert (worktree / "new.txt").read_text() == "x"
    back = os.stat(worktree)
    assert (back.st_uid, back.st_gid, back.st_mode) == (top.st_uid, top.st_gid, top.st_mode)
    assert "?? new.txt" in git("status", "--porcelain", cwd=worktree)  # root's git trusts it still


async def test_a_reading_run_cannot_write_even_through_the_command_engine(
    worktree: Path, agent: AgentUser, tmp_path: Path
):
    script = tmp_path / "writer.py"
    script.write_text("open('planted.txt', 'w').write('x')\n")
    engine = CommandEngine(
        argv=[sys.executable, str(script)],
        base_env={"PATH": os.environ["PATH"]},
        prices={},
        max_output_bytes=65536,
        user=agent,
    )
    result = await engine.run(AgentRequest(stage=Stage.QA, prompt="check", workdir=worktree))
    assert result.status is AgentRunStatus.FAILED
    assert "Permission denied" in (result.error or "")
    assert not (worktree / "planted.txt").exists()


async def test_claude_code_edits_the_worktree_as_the_agent_user(
    claude_bin, claude_env, fake_anthropic, worktree: Path, agent: AgentUser
):
    target = worktree / "notes" / "hello.txt"
    fake_anthropic.play(
        ToolUse("Bash", {"command": "id -un > whoami.txt", "description": "who"}),
        ToolUse("Write", {"file_path": str(target), "content": "hello\n"}),
        Text("Wrote it."),
    )
    claude = ClaudeEngine(
        binary=claude_bin,
        base_env=claude_env,
        prices={},
        max_output_bytes=1024 * 1024,
        allowed_tools=["Bash(id:*)"],
        user=agent,
    )
    request = AgentRequest(stage=Stage.EXECUTION, prompt="Do the task.", workdir=worktree)
    result = await claude.run(request)
    assert result.status is AgentRunStatus.SUCCEEDED, result.error
    assert target.read_text() == "hello\n"
    assert (worktree / "whoami.txt").read_text().strip() == agent.name
    assert owners(worktree) == {0}


def as_agent(agent: AgentUser, cwd: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        user=agent.uid,
        group=agent.gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        check=False,
    )
