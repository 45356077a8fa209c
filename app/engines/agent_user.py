"""The OS user agents run as, so that they do not share the service's privileges.

A service running as root runs every agent as another, unprivileged user (TASKSGODZILLA_AGENT_USER,
`tasksgodzilla-agent` by default, created on first use). That user cannot read the service's
environment (`/proc/<pid>/environ` is readable by its owner only), its data directory's secrets
(the database password file is 0600) or the embedded database's socket directory (0700, owned by
the database's own user); it has no supplementary groups.

What the agent user may touch:
- Its own home (`<data dir>/agent-home`, 0700) and the agents' config folders named by CODEX_HOME and
  CLAUDE_CONFIG_DIR when those are passed to agents (handed to it: they hold the agents' own login).
- The worktree of the step it executes, lent for the run: everything inside it but the `.git` file
  is chowned to the agent user before the agent starts and back to the worktree's owner afterwards.
  The worktree folder itself stays the service's (git refuses a repository whose top folder another
  user owns), group-writable by the agent's group and sticky, so the agent can add and remove files
  but not replace `.git`. Planning, QA and discovery get nothing lent: they read, and the OS makes
  them read-only even for the `command` engine.
- Reading what is world-readable, as any local user can: the folders above a worktree are opened for
  traversal (o+x, not listing) when they are not already.

Agents run git in a worktree whose top folder the service owns; they get `safe.directory=*` through
the environment (command-line scope, which git honours for that key).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import stat
import subprocess
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from app.errors import ConfigError

DEFAULT_AGENT_USER = "tasksgodzilla-agent"
AGENT_HOME = "agent-home"  # in the data directory
SETTING = "TASKSGODZILLA_AGENT_USER"
USERADD_PATH = "/usr/sbin:/sbin:/usr/bin:/bin"
# Folders an agent's CLI keeps its login and state in, when they are passed to agents.
CONFIG_FOLDER_VARIABLES = ("CODEX_HOME", "CLAUDE_CONFIG_DIR")
LENT_TOP_BITS = stat.S_ISVTX | stat.S_IRWXG
GIT_SAFE_DIRECTORY = {
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "safe.directory",
    "GIT_CONFIG_VALUE_0": "*",
}

USERADD_ATTEMPTS = 10
# useradd's exit codes for "could not update the password / group file", e.g. another useradd's lock.
USERADD_BUSY = {1, 10}


@dataclass(frozen=True)
class AgentUser:
    """Who agents run as: a user other than the service's."""

    name: str
    uid: int
    gid: int
    home: Path

    def environment(self, env: Mapping[str, str]) -> dict[str, str]:
        """`env` as this user's: its own home and name, and git's ownership check relaxed for it."""
        return {
            **env,
            "HOME": str(self.home),
            "USER": self.name,
            "LOGNAME": self.name,
            **GIT_SAFE_DIRECTORY,
        }


def agent_user_for(setting: str | None, *, home: Path) -> AgentUser | None:
    """The user agents run as (None: the service's own), from TASKSGODZILLA_AGENT_USER.

    As root, unset means DEFAULT_AGENT_USER, created when missing; `root` keeps agents as root. Not
    as root, another user cannot be switched to: a ConfigError, unless it names the service's user.
    """
    me = pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() != 0:
        if setting in (None, "", me):
            return None
        raise ConfigError(
            f"{SETTING}={setting}: only a service running as root can run agents as another user "
            f"(this one runs as {me}); unset it to run agents as {me}",
            setting=SETTING,
        )
    name = setting or DEFAULT_AGENT_USER
    if name == me:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if name != DEFAULT_AGENT_USER:
            raise ConfigError(f"{SETTING}: no user named {name!r} on this machine", setting=SETTING) from None
        entry = _create_user(name)
    if entry.pw_uid == 0:
        return None
    return AgentUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid, home=home)


def _create_user(name: str) -> pwd.struct_passwd:
    """A system user with a group of its own, no password, and no home of its own (we give it one)."""
    useradd = shutil.which("useradd", path=USERADD_PATH) or "useradd"
    # Processes starting together (a fleet's workers, a parallel test run) race here: the loser finds
    # /etc/passwd locked and tries again, or finds the user the winner made.
    for attempt in range(USERADD_ATTEMPTS):
        done = subprocess.run(  # noqa: S603 - an argument list of our own, no shell
            [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/bin/bash", name],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
        if done.returncode not in USERADD_BUSY:
            break
        time.sleep(0.1 * (attempt + 1))
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise ConfigError(
            f"could not create the agent user {name!r} ({done.stderr.strip() or done.returncode}); "
            f"create it, or set {SETTING}",
            setting=SETTING,
        ) from None


async def prepare_user(user: AgentUser, env: Mapping[str, str]) -> None:
    """The agent user's home and config folders, made its own; the folders above them traversable."""
    await asyncio.to_thread(_prepare_user, user, dict(env))


def _prepare_user(user: AgentUser, env: dict[str, str]) -> None:
    folders = [user.home, *(Path(env[v]) for v in CONFIG_FOLDER_VARIABLES if env.get(v))]
    for folder in folders:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        open_for_traversal(folder.parent)
        if folder.stat().st_uid != user.uid:
            _chown_tree(folder, user.uid, user.gid, include_top=True)


@asynccontextmanager
async def lent_workdir(user: AgentUser | None, workdir: Path, *, writes: bool) -> AsyncIterator[None]:
    """For the block: `workdir` reachable by `user`, and writable when the agent `writes`.

    A file system that refuses (no chown on it) is a ConfigError naming the setting."""
    if user is None:
        yield
        return
    await asyncio.to_thread(open_for_traversal, workdir)
    top = await asyncio.to_thread(_stat_or_none, workdir)
    if not writes or top is None:  # a missing folder: the process start says so
        yield
        return
    try:
        await asyncio.to_thread(_hand_over, workdir, user, top)
    except PermissionError as exc:
        await asyncio.shield(asyncio.to_thread(_take_back, workdir, top))
        raise ConfigError(
            f"cannot lend {workdir} to the agent user {user.name} ({exc.strerror}): run the service as "
            f"root on a file system that allows chown, or set {SETTING}=root",
            setting=SETTING,
        ) from None
    try:
        yield
    finally:
        await asyncio.shield(asyncio.to_thread(_take_back, workdir, top))


def open_for_traversal(folder: Path) -> None:
    """`folder` and every folder above it searchable by others (o+x), as another user must pass them."""
    for path in [folder, *folder.parents]:
        with contextlib.suppress(FileNotFoundError):
            mode = path.stat().st_mode
            if not mode & stat.S_IXOTH:
                path.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _hand_over(workdir: Path, user: AgentUser, top: os.stat_result) -> None:
    os.chown(workdir, top.st_uid, user.gid)
    workdir.chmod(stat.S_IMODE(top.st_mode) | LENT_TOP_BITS)
    _chown_tree(workdir, user.uid, user.gid, include_top=False)


def _take_back(workdir: Path, top: os.stat_result) -> None:
    mode, gid = stat.S_IMODE(top.st_mode), top.st_gid
    if mode & stat.S_ISVTX:  # still marked as lent when handed over: a run that died left it so
        mode, gid = 0o755, os.getgid()
    _chown_tree(workdir, top.st_uid, gid, include_top=False)
    os.chown(workdir, top.st_uid, gid)
    workdir.chmod(mode)


def _chown_tree(folder: Path, uid: int, gid: int, *, include_top: bool) -> None:
    """Everything below `folder` (not the worktree's own `.git`) owned by uid:gid.

    Through directory descriptors, never following a link: another agent running as the same user
    meanwhile cannot swap a folder for a link and have us chown what it points to."""
    if include_top:
        os.chown(folder, uid, gid, follow_symlinks=False)
    for root, dirs, files, root_fd in os.fwalk(folder, follow_symlinks=False):
        names = [*dirs, *files]
        if root == str(folder):
            dirs[:] = [d for d in dirs if d != ".git"]
            names = [n for n in names if n != ".git"]
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.chown(name, uid, gid, dir_fd=root_fd, follow_symlinks=False)
