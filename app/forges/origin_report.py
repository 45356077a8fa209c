"""The original project's scripts/ci/report.sh, recognised and accepted.

Teams migrating from it post, signed like ours, a GitHub `status` of the shape
`{"state", "branches": [{"name"}], "target_url", "ref"}` or a GitLab `Pipeline Hook` of the shape
`{"object_kind": "pipeline", "object_attributes": {"status", "ref"}}`, with `?protocol_run_id=N`
when set, and never a commit SHA or a repository. With the run's id it is accepted: applied to the
run's head step (its current commit), and recorded so. Without one it cannot be placed: refused
with a 422 saying how to switch to this project's scripts/ci/report.sh (never a 200 that does nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.domain.ci import CiResult, Provider, RunCiSignal
from app.errors import InvalidInputError
from app.forges.payloads import branch, field, link, text

RESULTS = {"success": CiResult.PASSED, "failure": CiResult.FAILED, "failed": CiResult.FAILED}
SWITCH = (
    "this looks like the original project's scripts/ci/report.sh (no commit SHA, no repository): "
    "set TASKSGODZILLA_PROTOCOL_RUN_ID for it, or better switch to this service's scripts/ci/report.sh "
    "(it sends the commit SHA, branch and repository: TASKSGODZILLA_API_BASE and "
    "TASKSGODZILLA_WEBHOOK_TOKEN as before)"
)


def origin_signal(
    provider: Provider, event: str, payload: Any, query: Mapping[str, str]
) -> RunCiSignal | None:
    """The origin script's report as a signal; None when the delivery is not of its shape."""
    if not _origin_shape(provider, event, payload):
        return None
    state = (
        text(payload, "state")
        if provider is Provider.GITHUB
        else text(payload, "object_attributes", "status")
    )
    result = RESULTS.get(state or "")
    if result is None:
        raise InvalidInputError(
            f"{SWITCH}; its state {state!r} is neither success nor failure", field="state"
        )
    run_id = query.get("protocol_run_id")
    if run_id is None:
        raise InvalidInputError(SWITCH, field="protocol_run_id")
    if not run_id.isdigit() or not 0 < int(run_id) < 2**31:
        raise InvalidInputError("protocol_run_id must be a protocol run's id", field="protocol_run_id")
    ref = text(payload, "ref") if provider is Provider.GITHUB else text(payload, "object_attributes", "ref")
    return RunCiSignal(
        provider=provider,
        protocol_run_id=int(run_id),
        result=result,
        branch=branch(ref),
        url=link(text(payload, "target_url")),
    )


def _origin_shape(provider: Provider, event: str, payload: Any) -> bool:
    """A status / pipeline without a commit and without a repository: what only the origin sends."""
    if provider is Provider.GITHUB:
        return event == "status" and field(payload, "sha") is None and field(payload, "repository") is None
    attributes = field(payload, "object_attributes")
    return (
        event == "Pipeline Hook"
        and field(payload, "project") is None
        and isinstance(attributes, Mapping)
        and attributes.get("sha") is None
    )
