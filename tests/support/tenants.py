"""Two tenants side by side, each with an organisation, a project, a run, a step, an agent run, events
and tokens; and console sign-ins made by hand (a client with no cookie jar of its own)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from app.domain.records import (
    AgentRun,
    AgentRunStatus,
    Organisation,
    Project,
    ProjectStatus,
    ProtocolRun,
    StepRun,
)
from app.domain.tokens import new_organisation_token, new_project_token
from app.services import organisations as organisation_service
from app.services import planning
from app.services.context import Services
from app.services.events import record
from app.store import projects, steps
from tests.support import seed

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Tenant:
    marker: str  # in every name and title of this tenant's rows: finding it in an answer is a leak
    organisation: Organisation
    organisation_token: str
    project: Project
    project_token: str
    run: ProtocolRun
    step: StepRun
    agent_run: AgentRun

    def ids(self) -> dict[str, int]:
        """Each resource parameter's value naming this tenant's rows."""
        return {
            "organisation_id": self.organisation.id,
            "project_id": self.project.id,
            "protocol_id": self.run.id,
            "step_id": self.step.id,
            "agent_run_id": self.agent_run.id,
        }


def _folder_for(svc: Services, marker: str) -> Path:
    """A folder the API would accept as a local path (inside the first local-path root)."""
    roots = svc.settings.local_path_roots or [Path("/srv")]
    return roots[0] / marker


async def make_tenant(svc: Services, marker: str) -> Tenant:
    organisation = await organisation_service.create_organisation(svc, name=f"Org {marker}")
    organisation_token, digest = new_organisation_token()
    await organisation_service.replace_token(svc, organisation.id, digest)
    project_token, project_digest = new_project_token()
    async with svc.database.transaction() as conn:
        project = await projects.create(
            conn,
            name=f"proj-{marker}",
            local_path=str(_folder_for(svc, marker)),
            organisation_id=organisation.id,
        )
        project = await projects.set_status(
            conn, project.id, ProjectStatus.READY, expected_version=project.version
        )
        await projects.set_token_hash(conn, project.id, project_digest)
        await record(
            conn, project.id, "project.created", f"project proj-{marker} registered", name=project.name
        )
    run = await planning.create_protocol(svc, project.id, title=f"Work {marker}")
    async with svc.database.transaction() as conn:
        [step] = await steps.create_many(
            conn, run.id, [{"step_index": 1, "name": f"part {marker}", "step_file": "01.md"}]
        )
        agent_run = await seed.agent_run(
            conn, run, step, status=AgentRunStatus.SUCCEEDED, model=f"m-{marker}"
        )
    return Tenant(marker, organisation, organisation_token, project, project_token, run, step, agent_run)


@dataclass(frozen=True)
class ConsoleSession:
    cookie: str
    csrf: str

    def headers(self, method: str = "GET") -> dict[str, str]:
        sent = {"Cookie": f"tg_console={self.cookie}"}
        if method not in ("GET", "HEAD"):
            sent["X-CSRF-Token"] = self.csrf
        return sent


async def console_sign_in(client, token: str) -> ConsoleSession:
    """Sign in to the console with `token`, for a client whose cookies are sent by hand."""
    form = await client.get("/console/login")
    cookie = form.cookies["tg_console"].value
    csrf = CSRF.search(await form.text())
    assert csrf, "no CSRF field on the login form"
    signed = await client.post(
        "/console/login",
        data={"token": token, "csrf_token": csrf.group(1)},
        headers={"Cookie": f"tg_console={cookie}"},
        allow_redirects=False,
    )
    assert signed.status == 303, await signed.text()
    cookie = signed.cookies["tg_console"].value
    page = await client.get("/console/activity", headers={"Cookie": f"tg_console={cookie}"})
    csrf = CSRF.search(await page.text())
    assert page.status == 200, await page.text()
    assert csrf, "no CSRF token on a signed-in page"
    return ConsoleSession(cookie, csrf.group(1))
