"""Which engine and model a stage uses, for a project, a run and maybe a step."""

from __future__ import annotations

from app.domain.records import Project, ProtocolRun, Stage, StepRun
from app.domain.selection import Choice, EngineChoice, choose_engine
from app.services.context import Services

_PREFIX = {
    Stage.PLANNING: "planning",
    Stage.EXECUTION: "execution",
    Stage.QA: "qa",
    Stage.DISCOVERY: "planning",
}


def engine_for(
    svc: Services, stage: Stage, project: Project, run: ProtocolRun | None = None, step: StepRun | None = None
) -> EngineChoice:
    """Step, then run, then project, then the settings (see app.domain.selection)."""
    prefix = _PREFIX[stage]
    layers = []
    if step is not None and stage is Stage.EXECUTION:
        layers.append(Choice(step.engine, step.model))
    if step is not None and stage is Stage.QA:
        layers.append(Choice(step.qa_engine, step.qa_model))
    for holder in (run, project):
        if holder is not None:
            layers.append(Choice(getattr(holder, f"{prefix}_engine"), getattr(holder, f"{prefix}_model")))
    settings = svc.settings
    default = EngineChoice(str(getattr(settings, f"{prefix}_engine")), getattr(settings, f"{prefix}_model"))
    return choose_engine(layers, default)
