"""Running one git command: hardened configuration, a minimal environment, a deadline, masked errors.

Every command is an argument list (never a shell string) prefixed by `--no-pager` and `-c` options
that no repository configuration can override: every single-valued key that names a program is set
to a harmless value (hooks, fsmonitor, ssh command, askpass, credential helpers, gpg signing and
verification, alternate refs command, editors), only https and ssh transports are allowed (plus `file`
when local remotes are allowed; `GIT_ALLOW_PROTOCOL` makes that list beat any per-protocol setting),
no submodule recursion, no credential prompts. Neither a system nor a global config file is read.
Keys `-c` cannot neutralise are refused before git runs (app.git.config_guard). The child runs in its
own process group, which is killed as a whole when the deadline passes or the caller is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.errors import GitError
from app.git.credentials import GitCredential, helper_config, helper_environment
from app.git.redact import mask_credentials

log = logging.getLogger("app.git")

GIT_BIN = "git"
KILL_GRACE_SECONDS = 2.0
ERROR_STDERR_CHARS = 2000

# The single-valued keys (of git-config(1)) that name a program git may run for the commands we use,
# each set to a harmless value; the repository's own value is never obeyed. An empty helper, askpass
# or alternate refs command means "none".
HARDENING = (
    ("core.hooksPath", "/dev/null"),
    ("core.fsmonitor", "false"),
    ("core.sshCommand", "ssh"),
    ("core.askPass", ""),
    ("core.alternateRefsCommand", ""),
    ("core.editor", "false"),
    ("sequence.editor", "false"),
    ("credential.helper", ""),
    ("commit.gpgSign", "false"),
    ("tag.gpgSign", "false"),
    ("push.gpgSign", "false"),
    ("log.showSignature", "false"),
    ("protocol.allow", "never"),
    ("protocol.https.allow", "always"),
    ("protocol.ssh.allow", "always"),
)
LOCAL_TRANSPORT = ("protocol.file.allow", "always")
HARDENING_TAIL = (
    ("submodule.recurse", "false"),
    # `git status` (and `git add`, for submodules it knows) would otherwise run git inside nested
    # repositories, with their own config; app.git.config_guard checks the ones `git add` enters.
    ("diff.ignoreSubmodules", "all"),
    ("credential.interactive", "never"),
    ("http.sslVerify", "true"),
)
FIXED_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "LC_ALL": "C",
    "GIT_CONFIG_NOSYSTEM": "1",
    # The operator's ~/.gitconfig is not ours to obey either: an agent running as the same user could
    # write it. Everything git needs is given on the command line.
    "GIT_CONFIG_GLOBAL": "/dev/null",
}
ALLOWED_PROTOCOLS = "https:ssh"
# The CA bundle of the service's environment, given to git as config: TLS libraries differ on
# whether they read SSL_CERT_FILE themselves (GnuTLS, Debian's git, does not).
CA_CONFIG = (("SSL_CERT_FILE", "http.sslCAInfo"), ("SSL_CERT_DIR", "http.sslCAPath"))
# The git commands we run. Keys naming programs for any other (difftool, mergetool, send-email,
# imap-send, instaweb, web--browse, help, gui, submodule...) can never take effect.
COMMANDS = frozenset(
    {
        "add", "bundle", "cat-file", "check-ref-format", "clean", "clone", "commit", "config", "diff",
        "fetch", "init", "log", "ls-files", "ls-remote", "ls-tree", "merge-base", "push", "remote", "reset",
        "rev-parse", "status", "update-ref", "worktree",
    }
)  # fmt: skip
# What git may inherit: where programs and ~/.ssh are, the ssh agent, proxies and CA bundles.
# Never GIT_* (GIT_DIR, GIT_SSH_COMMAND, GIT_CONFIG_PARAMETERS... would override our hardening).
ENV_PASSTHROUGH = (
    "PATH", "HOME", "TMPDIR", "SSH_AUTH_SOCK",
    "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR",
)  # fmt: skip


def default_base_env() -> dict[str, str]:
    """PATH of this process, and nothing else.

    The one place app/git reads os.environ: callers that pass no `base_env` (scripts, tests) still need
    git to be found. Services pass `base_env` explicitly, built from Settings at start-up.
    """
    return {"PATH": os.environ.get("PATH", os.defpath)}


def git_environment(base_env: Mapping[str, str], *, allow_local_remotes: bool = False) -> dict[str, str]:
    """The environment of every git child: the pass-through subset of `base_env` plus fixed values."""
    env = {name: base_env[name] for name in ENV_PASSTHROUGH if name in base_env}
    env.update(FIXED_ENV)
    # Beats every protocol.*.allow of any config (git-config(1), protocol.allow).
    env["GIT_ALLOW_PROTOCOL"] = f"{ALLOWED_PROTOCOLS}:file" if allow_local_remotes else ALLOWED_PROTOCOLS
    return env


@dataclass(frozen=True)
class GitResult:
    """What a finished git command printed; stdout is bytes because paths need not be UTF-8."""

    exit_code: int
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        """stdout decoded like file names are, so odd bytes survive a round trip."""
        return os.fsdecode(self.stdout)


class GitRunner:
    """Runs git commands with one deadline, one environment and one transport policy."""

    def __init__(
        self,
        *,
        timeout: float,
        allow_local_remotes: bool = False,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.timeout = timeout
        self.allow_local_remotes = allow_local_remotes
        base = default_base_env() if base_env is None else base_env
        self.env = git_environment(base, allow_local_remotes=allow_local_remotes)
        self.ca_config = [(key, base[name]) for name, key in CA_CONFIG if base.get(name)]

    def argv(
        self,
        args: Sequence[str],
        config: Sequence[tuple[str, str]] = (),
        *,
        work_tree: Path | None = None,
    ) -> list[str]:
        """The full command line: git, the hardening `-c` options, per-call `-c` options, then `args`.

        `work_tree` pins git's working tree, so no `core.worktree` can move it elsewhere.
        """
        if not args or args[0] not in COMMANDS:
            raise ValueError(f"git {args[0] if args else ''}: not a command this service runs")
        pairs = [*HARDENING]
        if self.allow_local_remotes:
            pairs.append(LOCAL_TRANSPORT)
        pairs += [*HARDENING_TAIL, *self.ca_config, *config]
        argv = [GIT_BIN, "--no-pager"]
        if work_tree is not None:
            argv.append(f"--work-tree={work_tree}")
        for key, value in pairs:
            argv += ["-c", f"{key}={value}"]
        return argv + list(args)

    async def run(
        self,
        args: Sequence[str],
        *,
        cwd: Path | None,
        stdin: bytes | None = None,
        config: Sequence[tuple[str, str]] = (),
        ok_codes: Container[int] = (0,),
        work_tree: Path | None = None,
        credential: GitCredential | None = None,
    ) -> GitResult:
        """Run `git <args>` in `cwd`; an exit code outside `ok_codes` or the deadline raises GitError.

        A `credential` reaches this one command through our credential helper and its environment.
        """
        command = args[0] if args else "git"
        _check_cwd(cwd, command)
        env = self.env
        if credential is not None:
            config = [*config, *helper_config()]
            env = {**env, **helper_environment(credential)}
        argv = self.argv(args, config, work_tree=work_tree)
        started = time.monotonic()
        process = await self._spawn(argv, cwd, env, command, with_stdin=stdin is not None)
        try:
            async with asyncio.timeout(self.timeout):
                stdout, stderr = await process.communicate(stdin)
                exit_code = await process.wait()
        except TimeoutError:
            await kill_process_group(process)
            raise GitError(
                f"git {command} timed out after {self.timeout:g} s and was killed",
                command=command,
                timed_out=True,
            ) from None
        except BaseException:
            await kill_process_group(process)  # cancelled: never leave git running
            raise
        result = GitResult(exit_code, stdout, stderr.decode("utf-8", errors="replace"))
        elapsed_ms = int((time.monotonic() - started) * 1000)
        log.debug("git %s exit=%s %sms", mask_credentials(" ".join(args)), result.exit_code, elapsed_ms)
        if result.exit_code not in ok_codes:
            raise failure(command, result)
        return result

    async def _spawn(
        self, argv: list[str], cwd: Path | None, env: Mapping[str, str], command: str, *, with_stdin: bool
    ) -> asyncio.subprocess.Process:
        try:
            return await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.PIPE if with_stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise GitError(
                f"git {command}: the git executable was not found on PATH", command=command
            ) from None
        except PermissionError:
            raise GitError(f"git {command}: the git executable is not runnable", command=command) from None


def _check_cwd(cwd: Path | None, command: str) -> None:
    # Spawning into a missing folder raises FileNotFoundError, which would read as "no git".
    if cwd is not None and not cwd.is_dir():
        raise GitError(f"git {command}: no such directory {cwd}", command=command)


def failure(command: str, result: GitResult) -> GitError:
    """The GitError of a failed command: git's own words (the end of them), credentials masked."""
    said = mask_credentials(result.stderr.strip())[-ERROR_STDERR_CHARS:] or "no error output"
    return GitError(
        f"git {command} failed (exit {result.exit_code}): {said}",
        command=command,
        exit_code=result.exit_code,
    )


async def kill_process_group(process: asyncio.subprocess.Process) -> None:
    """SIGTERM git's process group, SIGKILL it if it lingers: helpers (remote-https, ssh) go too."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            await asyncio.wait_for(process.wait(), KILL_GRACE_SECONDS)
            break
        except TimeoutError:
            continue
    # The leader may be gone while its helpers linger in the group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
