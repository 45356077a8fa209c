# PLACEHOLDER: replaced by helper/policy-core at merge
"""The effective policy of a project or a run (a minimal stand-in for the contract's interface).

Reads the project's pack (else `default@1.0`) and merges `projects.policy_overrides` over it,
shallowly. Strict mode is read from the overrides' `strict` key until projects carry their own
column. No repo-local file, no schema, no locked fields: helper/policy-core's version does those.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from app.errors import NotFoundError
from app.services.context import Services
from app.store import policy_packs, projects, protocols

SECTIONS = ("plan", "steps", "checks", "qa", "engines", "limits", "git", "paths", "findings", "onboarding")


@dataclass(frozen=True)
class RunPolicy:
    policy: dict[str, Any]
    hash: str
    strict: bool
    pack_key: str
    pack_version: str


async def policy_for_project(svc: Services, project_id: int) -> RunPolicy:
    """The project's pack with its overrides laid over it (a shallow merge)."""
    async with svc.database.read() as conn:
        project = await projects.get(conn, project_id)
        key = project.policy_pack_key or "default"
        version = project.policy_pack_version or "1.0"
        try:
            pack = (await policy_packs.get(conn, key, version)).pack
        except NotFoundError:
            key, version = "default", "1.0"
            pack = (await policy_packs.get(conn, key, version)).pack
    overrides = dict(project.policy_overrides)
    strict = overrides.pop("strict", False) is True
    policy: dict[str, Any] = {section: {} for section in SECTIONS} | dict(pack) | overrides
    canonical = json.dumps(policy, sort_keys=True, separators=(",", ":"), default=str)
    return RunPolicy(policy, hashlib.sha256(canonical.encode()).hexdigest(), strict, key, version)


async def policy_for_run(svc: Services, run_id: int) -> RunPolicy:
    """The policy the run's project has now."""
    async with svc.database.read() as conn:
        project_id = (await protocols.get(conn, run_id)).project_id
    return await policy_for_project(svc, project_id)
