"""Which engine and model a stage uses, for a project, a run and maybe a step: the one place it is decided."""

from __future__ import annotations

import dataclasses
from typing import Literal

from app.domain import findings as rules
from app.domain.fallbacks import fallback_list, parse_choice
from app.domain.policy import UNKNOWN_ENGINE
from app.domain.policy_engines import (
    policy_choices,
    policy_fallbacks,
    unknown_engine_message,
    unknown_engines,
)
from app.domain.records import Project, ProtocolRun, Stage, StepRun
from app.domain.selection import Choice, EngineChoice, choose_engine
from app.services.context import Services
from app.services.findings import record_findings
from app.services.policy import RunPolicy, policy_for_project, policy_for_run

_PREFIX: dict[Stage, Literal["planning", "execution", "qa"]] = {
    Stage.PLANNING: "planning",
    Stage.EXECUTION: "execution",
    Stage.QA: "qa",
    Stage.DISCOVERY: "planning",
}


async def engine_for(
    svc: Services,
    stage: Stage,
    project: Project,
    run: ProtocolRun | None = None,
    step: StepRun | None = None,
) -> EngineChoice:
    """Step, then run, then project, then the run's effective policy (the project's before a run
    exists), then the settings (see app.domain.selection and app.domain.policy_engines).

    A policy naming an engine that does not exist (a run recorded before names were checked, a pack
    stored before) is skipped and said once as a `policy.unknown_engine` finding on the run or project.
    """
    policy = await (policy_for_run(svc, run.id) if run is not None else policy_for_project(svc, project.id))
    choice = choose_stage_engine(svc, stage, project, run, step, policy=policy)
    await _report_unknown_engines(svc, project, run, policy)
    return choice


def choose_stage_engine(
    svc: Services,
    stage: Stage,
    project: Project,
    run: ProtocolRun | None = None,
    step: StepRun | None = None,
    *,
    policy: RunPolicy,
) -> EngineChoice:
    """engine_for's decision, given the policy in force (no I/O); its fallbacks are the policy's for
    the stage, else the settings' (app.domain.fallbacks)."""
    prefix = _PREFIX[stage]
    layers = []
    if step is not None and stage is Stage.EXECUTION:
        layers.append(Choice(step.engine, step.model))
    if step is not None and stage is Stage.QA:
        layers.append(Choice(step.qa_engine, step.qa_model))
    for holder in (run, project):
        if holder is not None:
            layers.append(Choice(getattr(holder, f"{prefix}_engine"), getattr(holder, f"{prefix}_model")))
    layers += policy_choices(policy.policy, str(stage))
    settings = svc.settings
    default = EngineChoice(str(getattr(settings, f"{prefix}_engine")), getattr(settings, f"{prefix}_model"))
    chosen = choose_engine(layers, default)
    fallbacks = [
        EngineChoice(str(f.engine), f.model) for f in policy_fallbacks(policy.policy, str(stage))
    ] or [parse_choice(text) for text in settings.engine_fallbacks.get(prefix) or []]
    return dataclasses.replace(chosen, fallbacks=fallback_list(chosen, fallbacks))


async def _report_unknown_engines(
    svc: Services, project: Project, run: ProtocolRun | None, policy: RunPolicy
) -> None:
    said = [(p.code, p.message) for p in policy.problems if p.code == UNKNOWN_ENGINE]
    recorded = unknown_engines(policy.policy)
    said += [(UNKNOWN_ENGINE, f"recorded policy: {unknown_engine_message(f, v)}") for f, v in recorded]
    if not said:
        return
    async with svc.database.transaction() as conn:
        found = rules.from_policy_problems(said)
        await record_findings(conn, project.id, found, run_id=run.id if run is not None else None)
