"""Projects: register one, and set it up (clone or locate its repository, recommend policies)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app import prompts
from app.config import EngineName
from app.domain.records import Project, ProjectStatus, Stage
from app.domain.refnames import check_branch_name
from app.domain.selection import EngineChoice
from app.domain.visible import check_visible_text
from app.domain.workflow import setup_work
from app.domain.workspace import check_project_name, protocol_branch_name
from app.errors import ConflictError, InvalidInputError
from app.git import check_local_repository, check_remote_url, split_credentials
from app.services.agents import Subject, run_agent
from app.services.choices import engine_for
from app.services.context import Services
from app.services.credentials import store_git_credential
from app.services.engine_checks import require_project_engines
from app.services.events import record
from app.services.findings import review_onboarding, review_project
from app.services.policy import policy_for_project
from app.services.workspace import checked_local_path, ensure_clone
from app.store import idempotency as idempotency_keys
from app.store import jobs, projects
from app.store.idempotency import Claim


async def register_project(
    svc: Services,
    *,
    name: str,
    git_url: str | None = None,
    local_path: str | None = None,
    base_branch: str = "main",
    idempotency: Claim | None = None,
    organisation_id: int | None = None,
    **choices: Any,
) -> Project:
    """Check and store a project in `organisation_id` (else the default organisation), then queue its
    setup; with `idempotency`, the project its key created already, if it did (the key is stored
    with the project)."""
    check_project_name(name, field="name")
    if not git_url and not local_path:
        raise InvalidInputError(
            "a git URL or a local path is required: give `git_url` (CLI: --git-url) or "
            "`local_path` (CLI: --local-path)",
            field="git_url",
        )
    credential = None
    if git_url:
        check_remote_url(
            git_url,
            allow_local=svc.settings.git_allow_local_remotes,
            allow_private=svc.settings.git_allow_private_remotes,
        )
        # Stored, shown and written into .git/config bare; the credential is kept apart, encrypted.
        git_url, credential = split_credentials(git_url)
    if local_path:
        # One spelling per folder (symlinks resolved), so two names for one repository are caught.
        local_path = str(checked_local_path(svc.settings, local_path))
    check_branch_name(base_branch, field="base_branch")
    _check_branch_pattern(svc, name)
    if local_path:
        check_local_repository(
            Path(local_path),
            allow_local=svc.settings.git_allow_local_remotes,
            allow_private=svc.settings.git_allow_private_remotes,
        )
    async with svc.database.transaction() as conn:
        if (earlier := await idempotency_keys.claim(conn, idempotency)) is not None:
            return await projects.get(conn, earlier)
        await _refuse_sharing(svc, conn, local_path=local_path, git_url=git_url)
        project = await projects.create(
            conn,
            name=name,
            git_url=git_url,
            local_path=local_path,
            # A folder exists on one machine: this one runs the project's jobs.
            host=svc.settings.machine if local_path else None,
            base_branch=base_branch,
            organisation_id=organisation_id,
            **choices,
        )
        if credential is not None:
            await store_git_credential(svc, conn, project.id, credential)
        await idempotency_keys.settle(conn, idempotency, project.id)
        await record(
            conn,
            project.id,
            "project.created",
            f"project {name} registered",
            name=name,
            git_url=git_url,
            local_path=local_path,
            host=project.host,
        )
        await jobs.defer(conn, setup_work(project.id))
    return project


def _check_branch_pattern(svc: Services, name: str) -> None:
    """The project's name must make valid protocol branches (`x.lock` would make none)."""
    try:
        protocol_branch_name(svc.settings.branch_pattern, number=1, slug="task", project=name)
    except InvalidInputError as exc:
        raise InvalidInputError(
            f"the name makes no valid branch name: {exc.message}; choose another name", field="name"
        ) from None


async def _refuse_sharing(
    svc: Services, conn: AsyncConnection, *, local_path: str | None, git_url: str | None
) -> None:
    """Two projects in one folder would check their protocol branches out over each other; two on one
    remote would push the same branch names unless the pattern names the project."""
    shares_remote = git_url is not None and "{project}" not in svc.settings.branch_pattern
    other = await projects.find_sharing(
        conn, local_path=local_path, git_url=git_url if shares_remote else None
    )
    if other is None:
        return
    if local_path is not None and other.local_path == local_path:
        raise ConflictError(
            f"project {other.name!r} uses {local_path} already: give this project a folder of its own "
            f"(a clone), or delete project {other.name!r} first",
            field="local_path",
            project_id=other.id,
        )
    raise ConflictError(
        f"project {other.name!r} uses this git URL already and TASKSGODZILLA_BRANCH_PATTERN has no "
        "{project}: their protocol branches would collide; add {project} to the pattern "
        "(the default is tasksgodzilla/{project}/{name}) or use project " + repr(other.name),
        field="git_url",
        project_id=other.id,
    )


async def change_project(
    svc: Services, project_id: int, changes: dict[str, Any], *, expected_version: int | None = None
) -> Project:
    """Change a project's settings (compare-and-set on its version when one is given)."""
    if "base_branch" in changes:
        check_branch_name(changes["base_branch"], field="base_branch")
    async with svc.database.transaction() as conn:
        current = await projects.get(conn, project_id)
        version = expected_version or current.version
        changed = await projects.update_fields(conn, project_id, expected_version=version, **changes)
        names = sorted(changes)
        await record(conn, project_id, "project.updated", f"changed: {', '.join(names)}", fields=names)
    return changed


async def request_setup(svc: Services, project_id: int) -> bool:
    """Queue the project's setup again (after a failure, or to re-run discovery); False if already queued."""
    async with svc.database.transaction() as conn:
        await projects.get(conn, project_id)
        queued = await jobs.defer(conn, setup_work(project_id))
        if queued:
            await record(conn, project_id, "project.setup_requested", "setup queued again")
        return queued


async def setup_project(svc: Services, project_id: int) -> Project:
    """Clone (or find) the repository, check it, say what we recommend; its place is derived, not stored."""
    async with svc.database.transaction() as conn:
        project = await projects.get(conn, project_id)
        project = await projects.set_status(
            conn, project.id, ProjectStatus.SETTING_UP, expected_version=project.version
        )
        await record(conn, project.id, "project.setup_started", "setup started", attempt=1)
    repository = await ensure_clone(svc, project)
    if svc.settings.setup_git_config:
        # A clone's origin is its git URL already; a folder's is made so when the project names one.
        await repository.configure(origin=project.git_url if project.local_path else None)
    await repository.check_remote()  # a registered folder's origin is checked like any git URL
    if not await repository.has_branch(project.base_branch):
        raise InvalidInputError(
            f"the repository has no branch {project.base_branch!r}: change the project's base_branch "
            "(PATCH /projects/{id}) to one it has, then re-run setup",
            field="base_branch",
        )
    await require_project_engines(svc, project, repository.path)
    chosen = {stage: await engine_for(svc, stage, project) for stage in (Stage.EXECUTION, Stage.QA)}
    questions = recommendations(repository.path, chosen[Stage.EXECUTION], chosen[Stage.QA])
    questions += pack_questions((await policy_for_project(svc, project.id)).policy, questions)
    if svc.settings.setup_discovery:
        await _discover(svc, project, repository.path)
    # A strict project waits while an onboarding finding its pack lists as blocking remains (a
    # required question unanswered, no test command), whatever TASKSGODZILLA_SETUP_WAIT_FOR_ANSWERS says.
    _, holding = await review_onboarding(svc, project)
    waiting = svc.settings.setup_wait_for_answers or holding is not None
    async with svc.database.transaction() as conn:
        project = await projects.set_status(
            conn,
            project.id,
            ProjectStatus.AWAITING_ANSWERS if waiting else ProjectStatus.READY,
            expected_version=project.version,
        )
        await record(
            conn,
            project.id,
            "setup.clarifications",
            f"{len(questions)} questions" + (f"; setup waits: {holding.message}" if holding else ""),
            questions=questions,
            blocking=waiting,
            held_by=holding.code if holding else None,
        )
        if not waiting:
            await record(
                conn,
                project.id,
                "project.ready",
                "repository ready",
                local_path=str(repository.path),
                base_branch=project.base_branch,
            )
    await review_project(svc, project)  # policy findings (issue 14): onboarding readiness
    return project


async def _discover(svc: Services, project: Project, repo: Path) -> None:
    """A read-only agent describes the repository; its report becomes an event for the operator."""
    template = prompts.load("discovery")
    prompt = template.render(project_name=project.name, base_branch=project.base_branch)
    _, result = await run_agent(
        svc,
        Subject(project.id),
        stage=Stage.DISCOVERY,
        choice=await engine_for(svc, Stage.DISCOVERY, project),
        prompt=prompt,
        prompt_version=template.version,
        workdir=repo,
    )
    async with svc.database.transaction() as conn:
        await record(
            conn,
            project.id,
            "setup.discovery",
            f"discovery {result.status}",
            report=result.final_message or "",
            status=str(result.status),
        )


ANSWERABLE = frozenset(
    {
        "ci_provider",
        "base_branch",
        *(f"{s}_{w}" for s in ("planning", "execution", "qa") for w in ("engine", "model")),
    }
)


MAX_ANSWER_CHARS = 500
ENGINES = frozenset(value.value for value in EngineName)
CI_PROVIDERS = ("github", "gitlab", "none")
DEFAULT_MODEL = "default"  # the answer that leaves the engine's own default model


def stored_answer(key: str, value: str) -> dict[str, str | None]:
    """The project's fields an answer to setting `key` sets, as what it means: `none` CI and the
    `default` model are no value (never the text), and `engine:model` sets both fields."""
    if key == "ci_provider":
        if value not in CI_PROVIDERS:
            raise InvalidInputError(f"ci_provider must be one of {', '.join(CI_PROVIDERS)}", field=key)
        return {key: None if value == "none" else value}
    if key.endswith("_engine"):
        if value not in ENGINES:
            raise InvalidInputError(f"{key} must be one of {', '.join(sorted(ENGINES))}", field=key)
        return {key: value}
    if key.endswith("_model"):
        engine, colon, model = value.partition(":")
        if colon and engine in ENGINES:  # the `engine:model` form
            return {key.replace("_model", "_engine"): engine, key: _model(model)}
        return {key: _model(value)}
    return {key: value}


def _model(value: str) -> str | None:
    return None if value.strip() in ("", DEFAULT_MODEL, "None") else value.strip()


async def answer_clarifications(
    svc: Services, project_id: int, answers: dict[str, str], *, by: str = "operator"
) -> Project:
    """Apply the operator's answers: a setting (ANSWERABLE) changes the project; an answer to a
    question of its pack is recorded (in `setup.answered`). A project waiting for answers becomes ready
    unless, strict, an onboarding finding its pack lists as blocking remains."""
    asked = {q["key"] for q in pack_questions((await policy_for_project(svc, project_id)).policy)}
    unknown = sorted(set(answers) - ANSWERABLE - asked)
    if unknown:
        raise InvalidInputError(
            f"{unknown[0][:64]!r} is not a setup question of this project", field=unknown[0]
        )
    if "base_branch" in answers:
        check_branch_name(answers["base_branch"], field="base_branch")
    for key, value in answers.items():
        check_visible_text(value, field=key)
        if len(value) > MAX_ANSWER_CHARS:
            raise InvalidInputError(f"{key}: at most {MAX_ANSWER_CHARS} characters", field=key)
    settings: dict[str, str | None] = {}
    for key, value in answers.items():
        if key in ANSWERABLE:
            settings.update(stored_answer(key, value))
    async with svc.database.read() as conn:
        project = await projects.get(conn, project_id)
    _, holding = await review_onboarding(svc, project, answers)
    async with svc.database.transaction() as conn:
        project = await projects.get(conn, project_id)
        waited = project.status is ProjectStatus.AWAITING_ANSWERS
        status = ProjectStatus.READY if waited and holding is None else project.status
        project = await projects.set_status(
            conn, project.id, status, expected_version=project.version, **settings
        )
        message = f"{len(answers)} answers from {by}"
        if waited and holding is not None:
            message += f"; setup still waits: {holding.message}"
        await record(conn, project.id, "setup.answered", message, answers=answers, by=by)
        if status is ProjectStatus.READY:
            await record(
                conn,
                project.id,
                "project.ready",
                "repository ready",
                local_path=project.local_path,
                base_branch=project.base_branch,
            )
    await review_project(svc, project)  # policy findings (issue 14): the answers may settle some
    return project


def pack_questions(
    policy: Mapping[str, Any], asked: Sequence[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """The questions of the policy's `onboarding.questions`, as setup records them (`source` "policy"),
    but those whose key is already in `asked`."""
    taken = {q["key"] for q in asked}
    return [
        {
            "key": q["key"],
            "question": q["question"],
            "recommended": "",
            "required": bool(q.get("required")),
            "source": "policy",
        }
        for q in (policy.get("onboarding") or {}).get("questions") or []
        if q["key"] not in taken
    ]


def recommendations(repo: Path, execution: EngineChoice, qa: EngineChoice) -> list[dict[str, str]]:
    """Questions for the operator, each with the answer we would pick, from what the repository shows
    and the engines the project's stages would use now (`execution`, `qa`: from engine_for)."""
    if (repo / ".github" / "workflows").is_dir():
        ci = "github"
    elif (repo / ".gitlab-ci.yml").is_file():
        ci = "gitlab"
    else:
        ci = "none"
    return [
        {"key": "ci_provider", "question": "Which CI reports on protocol branches?", "recommended": ci},
        *_engine_questions("execution", "executes steps", execution),
        *_engine_questions("qa", "checks steps", qa),
    ]


def _engine_questions(stage: str, does: str, choice: EngineChoice) -> list[dict[str, str]]:
    """Two questions, each answered into its own field (an engine is no model)."""
    return [
        {"key": f"{stage}_engine", "question": f"Which engine {does}?", "recommended": str(choice.engine)},
        {
            "key": f"{stage}_model",
            "question": f"Which model {does} (`{DEFAULT_MODEL}`: the engine's own)?",
            "recommended": choice.model or DEFAULT_MODEL,
        },
    ]


async def fail_setup(svc: Services, project_id: int, reason: str, *, terminal: bool = True) -> None:
    """Setup gave up (for good, or after its last try): say so on the project."""
    async with svc.database.transaction() as conn:
        project = await projects.get(conn, project_id)
        await projects.set_status(conn, project.id, ProjectStatus.FAILED, expected_version=project.version)
        await record(conn, project.id, "project.setup_failed", f"setup failed: {reason}", reason=reason)
