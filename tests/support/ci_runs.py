"""Helpers for CI webhook tests: a run with committed steps in the database, signed deliveries."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.domain.ci import Provider, WebhookDelivery
from app.domain.records import Project, ProtocolRun, StepRun
from app.domain.statuses import ProtocolStatus as P
from app.domain.statuses import StepStatus as S
from app.forges.signatures import github_signature
from app.store import deliveries, projects, protocols, steps
from app.store.database import Database
from app.store.transitions import move_protocol, move_step
from tests.support.workflow import wait_for

PAYLOADS = Path(__file__).resolve().parents[1] / "forges" / "payloads"
SECRET = "gh-webhook-secret-0123"
GITLAB_SECRET = "gl-webhook-token-0123"
FIRST, SECOND, OTHER = "1" * 40, "2" * 40, "f" * 40
BRANCH = "0001-add-login"


@dataclass(frozen=True)
class Seeded:
    project: Project
    run: ProtocolRun
    steps: list[StepRun]


async def seed_run(
    database: Database, *, ci_provider: str = "github", repository: str = "acme/shop"
) -> Seeded:
    """A running protocol on BRANCH: step 1 completed at FIRST, step 2 waiting for QA at SECOND (the head)."""
    async with database.transaction() as conn:
        project = await projects.create(
            conn, name="shop", local_path="/srv/shop", ci_provider=ci_provider, forge_repo=repository
        )
        run = await protocols.create(conn, project.id, title="Add login", slug="add-login")
        for target in (P.PLANNING, P.PLANNED, P.RUNNING):
            run = await move_protocol(conn, run.id, target, expected_version=run.version)
        plan = await steps.create_many(
            conn, run.id, [{"step_index": i, "name": f"Part {i}", "step_file": f"0{i}.md"} for i in (1, 2)]
        )
        done = []
        for step, sha, final in ((plan[0], FIRST, S.COMPLETED), (plan[1], SECOND, S.NEEDS_QA)):
            step = await move_step(conn, step.id, S.RUNNING, expected_version=step.version)
            step = await move_step(
                conn, step.id, S.NEEDS_QA, expected_version=step.version, changes={"commit_sha": sha}
            )
            if final is S.COMPLETED:
                step = await move_step(conn, step.id, S.COMPLETED, expected_version=step.version)
            done.append(step)
        run = await protocols.update_fields(
            conn, run.id, expected_version=run.version, branch_name=BRANCH, head_sha=SECOND
        )
    return Seeded(project, run, done)


def payload(provider: str, name: str, **changes: Any) -> dict[str, Any]:
    """A captured-shape payload with its repository, branch and commit replaced (`sha=`, `branch=`)."""
    data = json.loads((PAYLOADS / provider / f"{name}.json").read_text())
    sha, branch = changes.pop("sha", None), changes.pop("branch", None)
    text = json.dumps(data)
    if sha:
        text = text.replace("ec26c3e57ca3a959ca5aad62de7213c562f8c821", sha)
        text = text.replace("bcbb5ec396a2c0f828686f14fac9b80b780504f2", sha)
    if branch:
        text = text.replace('"0001-add-login"', json.dumps(branch))
    data = json.loads(text)
    data.update(changes)
    return data


def github_request(event: str, body: Any, *, secret: str = SECRET, delivery: str | None = None) -> dict:
    """Keyword arguments for `client.post`: the body as bytes and GitHub's headers, signed."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": github_signature(secret, raw),
        "User-Agent": "GitHub-Hookshot/abc123",
    }
    return {"data": raw, "headers": headers}


def gitlab_request(event: str, body: Any, *, token: str = GITLAB_SECRET, delivery: str | None = None) -> dict:
    key = delivery or str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        "X-Gitlab-Event": event,
        "X-Gitlab-Token": token,
        "X-Gitlab-Event-UUID": key,
        "Idempotency-Key": key,
    }
    return {"data": json.dumps(body).encode(), "headers": headers}


async def applied(database: Database, provider: str, delivery_id: str) -> WebhookDelivery:
    """The delivery, once a worker has applied it."""

    async def done() -> WebhookDelivery | None:
        async with database.read() as conn:
            found = await deliveries.find(conn, Provider(provider), delivery_id)
        return found if found is not None and found.outcome is not None else None

    return await wait_for(done, seconds=30, what=f"delivery {delivery_id} to be applied")


async def statuses(database: Database, seeded: Seeded) -> tuple[str, list[tuple[str, str | None]]]:
    async with database.snapshot() as conn:  # the run and its steps as of one moment
        run = await protocols.get(conn, seeded.run.id)
        plan = await steps.list_for_protocol(conn, run.id)
    return str(run.status), [(str(s.status), s.ci_status) for s in plan]
