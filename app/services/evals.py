"""Offline evaluation (app.domain.evals): each task of a suite run by each variant in a fresh repository.

No database: a run is a temporary git repository holding the task's fixture and its one-step protocol,
the variant's engine executing the step as in a real run (as the agent user, prompt and result
redacted), then the task's checker, run as the agent user too (it runs what the agent wrote).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from app import prompts
from app.config import Settings
from app.config_environment import GIT_ENV, agent_environment, inherited_environment
from app.domain.agents import AgentRequest, AgentResult, redacted
from app.domain.evals import (
    SUITE_FILES,
    EvalRun,
    EvalTask,
    EvalVariant,
    Suite,
    parse_suite,
    prompt_values,
    protocol_files,
)
from app.domain.records import Stage
from app.domain.redaction import Redactor
from app.engines.agent_user import AGENT_HOME, AgentUser, agent_user_for, lent_workdir
from app.engines.base import Engine, stderr_tail, without_our_variables
from app.engines.process import run_process
from app.engines.registry import build_engines, pick
from app.errors import ConfigError, InvalidInputError, TasksGodzillaError
from app.git import GitRepository
from app.logs import named_secrets

MAX_SUITE_BYTES = 1024 * 1024
CHECK_OUTPUT_CHARS = 500


@dataclass(frozen=True)
class LoadedSuite:
    """A suite read from its folder, with each variant's prompt template."""

    folder: Path
    suite: Suite
    templates: Mapping[str, prompts.PromptTemplate]  # by variant name


def load_suite(folder: Path) -> LoadedSuite:
    """The suite in `folder`, checked whole (fixtures and templates too); InvalidInputError otherwise."""
    if not folder.is_dir():
        raise InvalidInputError(f"{folder} is not a folder", field="suite")
    found = [folder / name for name in SUITE_FILES if (folder / name).is_file()]
    if not found:
        raise InvalidInputError(f"{folder} has no {' or '.join(SUITE_FILES)}", field="suite")
    if found[0].stat().st_size > MAX_SUITE_BYTES:
        raise InvalidInputError(f"{found[0]} is larger than {MAX_SUITE_BYTES} bytes", field="suite")
    suite = parse_suite(found[0].name, found[0].read_text(encoding="utf-8", errors="replace"))
    root = folder.resolve()
    for task in suite.tasks:
        if not _inside(root, task.repo).is_dir():
            raise InvalidInputError(
                f"task {task.name}: repo {task.repo} is not a folder of the suite", field="repo"
            )
    templates = {variant.name: _template(root, variant, suite.tasks[0]) for variant in suite.variants}
    return LoadedSuite(folder=root, suite=suite, templates=templates)


def _inside(root: Path, relative: str) -> Path:
    path = (root / relative).resolve()
    if not path.is_relative_to(root):  # a symlink out of the suite
        raise InvalidInputError(f"{relative} leads out of the suite folder", field="suite")
    return path


def _template(root: Path, variant: EvalVariant, sample: EvalTask) -> prompts.PromptTemplate:
    if variant.prompt is None:
        return prompts.load("execution")
    path = _inside(root, variant.prompt)
    if not path.is_file():
        raise InvalidInputError(
            f"variant {variant.name}: prompt {variant.prompt} is not a file", field="prompt"
        )
    text = path.read_text(encoding="utf-8", errors="replace")
    template = prompts.PromptTemplate(name=f"eval-{variant.name}", text=text)
    try:
        if not template.render(**prompt_values(sample)).strip():
            raise ValueError("it is empty")
    except ValueError as error:  # an unknown $placeholder, a stray $, or nothing to say
        raise InvalidInputError(
            f"variant {variant.name}: prompt {variant.prompt}: {error}", field="prompt"
        ) from None
    return template


@dataclass(frozen=True)
class Evaluator:
    """What every run needs, built once from the settings: engines, redactor, environments, agent user."""

    settings: Settings
    engines: Mapping[str, Engine]
    redactor: Redactor
    git_env: Mapping[str, str]
    agent_env: Mapping[str, str]
    user: AgentUser | None

    @classmethod
    def from_settings(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> Evaluator:
        agent_env = agent_environment(settings, environ)
        user = agent_user_for(settings.agent_user, home=settings.data_dir / AGENT_HOME)
        return cls(
            settings=settings,
            engines=build_engines(settings, base_env=agent_env, user=user),
            redactor=Redactor(named_secrets(settings)),
            git_env=inherited_environment(GIT_ENV, environ),
            agent_env=agent_env,
            user=user,
        )


Started = Callable[[int, int, EvalVariant, EvalTask, int], None]
Finished = Callable[[int, int, EvalRun], None]


async def run_suite(
    evaluator: Evaluator,
    loaded: LoadedSuite,
    *,
    repeat: int = 1,
    started: Started | None = None,
    finished: Finished | None = None,
) -> list[EvalRun]:
    """Every (variant, task, repeat) in order, one at a time. An engine that is not available, or an
    agent that cannot start, is a ConfigError before (or instead of) any result: no run could pass."""
    await check_engines(evaluator, loaded.suite.variants)
    plan = [
        (variant, task, number)
        for variant in loaded.suite.variants
        for task in loaded.suite.tasks
        for number in range(1, repeat + 1)
    ]
    runs = []
    for index, (variant, task, number) in enumerate(plan, start=1):
        if started is not None:
            started(index, len(plan), variant, task, number)
        run = await run_one(evaluator, loaded, variant, task, number)
        runs.append(run)
        if finished is not None:
            finished(index, len(plan), run)
    return runs


async def check_engines(evaluator: Evaluator, variants: Sequence[EvalVariant]) -> None:
    """Each engine the variants use is configured and its executable runs; else a ConfigError that
    names the variant and the setting to fix, before any run is spent."""
    for name in dict.fromkeys(variant.engine.value for variant in variants):
        found = await pick(evaluator.engines, name).check()
        if found.status == "error":
            users = ", ".join(variant.name for variant in variants if variant.engine.value == name)
            raise ConfigError(
                f"engine {name} (variant {users}) cannot run: {found.error} (check {found.setting})",
                setting=found.setting,
            )


async def run_one(
    evaluator: Evaluator, loaded: LoadedSuite, variant: EvalVariant, task: EvalTask, repeat: int
) -> EvalRun:
    """One task by one variant in a fresh repository, removed afterwards."""
    scratch = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="tasksgodzilla-eval-"))
    try:
        repo = scratch / "repo"
        await asyncio.to_thread(_lay_out, loaded.folder / task.repo, repo, task)
        await _commit_fixture(evaluator, repo, task)
        result = await _run_agent(evaluator, loaded, variant, task, repo)
        check: tuple[int | None, int, str | None] = (
            None,
            0,
            f"agent {result.status}: {result.error or 'no detail'}",
        )
        if result.succeeded:
            check = await _check(evaluator, task, repo)
        code, check_ms, error = check
        return EvalRun(
            variant=variant.name,
            task=task.name,
            repeat=repeat,
            passed=result.succeeded and code == 0,
            agent_status=str(result.status),
            prompt_version=loaded.templates[variant.name].version,
            tokens=result.usage.total_tokens,
            cost_usd=result.cost_usd,
            duration_ms=result.duration_ms + check_ms,
            check_exit_code=code,
            error=error,
        )
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, ignore_errors=True)


def _lay_out(fixture: Path, repo: Path, task: EvalTask) -> None:
    """The fixture's files (never a repository of its own) and the task's protocol files."""
    shutil.copytree(fixture, repo, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    for relative, text in protocol_files(task).items():
        path = repo / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


async def _commit_fixture(evaluator: Evaluator, repo: Path, task: EvalTask) -> None:
    settings = evaluator.settings
    git = await GitRepository.init(
        repo,
        timeout=settings.git_timeout_seconds,
        author_name=settings.git_user_name,
        author_email=settings.git_user_email,
        base_env=evaluator.git_env,
    )
    await git.commit_all(f"eval: {task.name} fixture")


async def _run_agent(
    evaluator: Evaluator, loaded: LoadedSuite, variant: EvalVariant, task: EvalTask, repo: Path
) -> AgentResult:
    redactor = evaluator.redactor
    prompt = loaded.templates[variant.name].render(**prompt_values(task))
    request = AgentRequest(
        stage=Stage.EXECUTION,
        prompt=redactor(prompt),  # no known secret ever reaches a model
        workdir=repo,
        model=variant.model,
        timeout_seconds=evaluator.settings.agent_timeout_seconds,
        silence_seconds=evaluator.settings.agent_silence_seconds or None,
    )
    try:
        result = await pick(evaluator.engines, variant.engine.value).run(request)
    except TasksGodzillaError as exc:  # its message may quote the agent (a CLI's stderr)
        exc.message = redactor(exc.message)
        exc.args = (exc.message,)
        raise
    return await asyncio.to_thread(redacted, result, redactor)


async def _check(evaluator: Evaluator, task: EvalTask, repo: Path) -> tuple[int | None, int, str | None]:
    """The checker's exit code (None: it did not start or was killed at its deadline), its time, and
    why it failed (the end of what it said), redacted."""
    env = without_our_variables(evaluator.agent_env)
    if evaluator.user is not None:
        env = evaluator.user.environment(env)
    try:
        async with lent_workdir(evaluator.user, repo, writes=True):
            outcome = await run_process(
                task.check,
                cwd=repo,
                env=env,
                stdin_data=None,
                timeout_seconds=task.timeout_seconds,
                max_output_bytes=evaluator.settings.agent_max_output_bytes,
                user=evaluator.user,
            )
    except ConfigError as error:  # its program is missing or not runnable: a result, like a failure
        return None, 0, evaluator.redactor(f"check did not start: {error.message}")
    if outcome.exit_code == 0 and not outcome.timed_out:
        return 0, outcome.duration_ms, None
    said = stderr_tail(outcome.stderr) or "\n".join(outcome.stdout_lines).strip() or "(no output)"
    how = (
        f"timed out after {task.timeout_seconds:g} s" if outcome.timed_out else f"exited {outcome.exit_code}"
    )
    code = None if outcome.timed_out else outcome.exit_code
    return code, outcome.duration_ms, evaluator.redactor(f"check {how}: {said[-CHECK_OUTPUT_CHARS:]}")
