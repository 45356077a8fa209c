"""Second QA opinions: when a step takes one, which engine gives it, and what two opinions decide.

A step is *critical* when its run's effective policy sets `qa.second_opinion`, or an operator marked
it critical. Its QA runs twice: first as any QA (the choice of `engine_for`), then a second opinion
from the first of these that is *distinct* from the first opinion's engine and model:
  1. the policy's `qa.second_opinion` (`{engine, model}`; without an engine, the first's engine);
  2. the settings' QA engine and model (TASKSGODZILLA_QA_ENGINE, TASKSGODZILLA_QA_MODEL), which
     differ from the first when the step, run, project or policy chose another QA engine or model.
Distinct means another engine, or the same engine with both models named and different: a choice
naming no model runs its engine's default model, which may well be the other's.
With neither distinct, a step cannot be judged twice: marking it critical is refused (naming what to
configure), and a policy whose second opinion is not distinct leaves one QA to decide, said as the
finding `qa.second_opinion_unavailable`.

Two opinions decide together: both pass → completed; both fail → failed; they disagree → blocked,
for a person to approve or retry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.domain.policy_engines import ENGINES
from app.domain.qa import QaVerdict
from app.domain.selection import EngineChoice
from app.domain.statuses import StepStatus


def policy_second_opinion(policy: Mapping[str, Any]) -> tuple[str | None, str | None] | None:
    """The policy's `qa.second_opinion` as (engine, model), None when it sets none (or names an engine
    that does not exist: the policy's `policy.unknown_engine` finding says so)."""
    qa = policy.get("qa")
    node = qa.get("second_opinion") if isinstance(qa, Mapping) else None
    if not isinstance(node, Mapping):
        return None
    engine, model = _text(node.get("engine")), _text(node.get("model"))
    if engine is not None and engine not in ENGINES:
        return None
    return engine, model


def is_critical(marked: bool, policy: Mapping[str, Any]) -> bool:
    """Whether a step's QA takes a second opinion: the operator marked it, or the policy asks for one."""
    return marked or policy_second_opinion(policy) is not None


def distinct(a: EngineChoice, b: EngineChoice) -> bool:
    """Provably another judge: another engine, or both models named and different."""
    if a.engine != b.engine:
        return True
    return a.model is not None and b.model is not None and a.model != b.model


def second_opinion_for(
    policy: Mapping[str, Any], first: EngineChoice, settings_qa: EngineChoice
) -> EngineChoice | None:
    """The second opinion's engine and model for a step whose first QA is `first`; None: none distinct."""
    candidates = []
    if (asked := policy_second_opinion(policy)) is not None:
        engine, model = asked
        candidates.append(EngineChoice(engine or first.engine, model))
    candidates.append(settings_qa)
    return next((c for c in candidates if distinct(c, first)), None)


def unavailable_reason(first: EngineChoice) -> str:
    """Why a step cannot take a second opinion, and what to configure."""
    return (
        f"no second QA opinion differs from the first ({label(first)}): set `qa.second_opinion` "
        "({engine, model}: another engine, or another named model) in the project's policy pack or "
        "overrides (a run keeps the policy it was planned with), or give the run a QA engine or model "
        "other than the settings' (TASKSGODZILLA_QA_ENGINE, TASKSGODZILLA_QA_MODEL)"
    )


def label(choice: EngineChoice) -> str:
    return f"{choice.engine}/{choice.model}" if choice.model else choice.engine


def decide(verdicts: Sequence[QaVerdict]) -> StepStatus:
    """What one or two QA opinions make of a step: completed, failed, or blocked when they disagree."""
    if not verdicts:
        raise ValueError("QA decides on at least one verdict")
    if all(v.passed for v in verdicts):
        return StepStatus.COMPLETED
    if not any(v.passed for v in verdicts):
        return StepStatus.FAILED
    return StepStatus.BLOCKED


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None
