"""`tasksgodzilla audit export`: the audit trail (every operator action, who did it) as JSON lines."""

from __future__ import annotations

import json
from datetime import datetime

import click

from app.api_client import ApiClient
from app.cli.common import Session, operator_settings, reports_errors, run_session
from app.cli.refs import find_project, parse_project
from app.cli.remote import over_http, project_at, remote_of
from app.errors import InvalidInputError
from app.services.audit import audit_page
from app.store.audit import AuditFilter

_PAGE = 500


@click.group("audit")
def audit() -> None:
    """The audit trail: who did what (it outlives deleted projects)."""


@audit.command("export")
@click.option(
    "--project", "project_ref", help="Only this project's actions (a name, or an id: a deleted one's too)."
)
@click.option(
    "--since", help="Only actions from this time on (ISO 8601 with its zone, e.g. 2026-12-01T00:00Z)."
)
@click.option("--kind", help="Only this event type, or those starting so (`project.`).")
@reports_errors
def export(project_ref: str | None, since: str | None, kind: str | None) -> None:
    """Print every matching action, oldest first, one JSON object a line."""
    ref = parse_project(project_ref) if project_ref is not None else None
    start = _time(since) if since is not None else None
    settings = operator_settings()
    if (remote := remote_of(settings)) is not None:

        async def dump_remotely(api: ApiClient) -> None:
            project_id = None
            if ref is not None:  # an id is not looked up: a deleted project's trail stays
                project_id = ref.project_id or (await project_at(api, ref)).id
            when = start.isoformat() if start is not None else None
            async for row in api.pages("/audit", limit=_PAGE, project=project_id, since=when, kind=kind):
                click.echo(json.dumps(row, ensure_ascii=False))

        over_http(remote, dump_remotely)
        return

    async def dump(session: Session) -> None:
        project_id = None
        if ref is not None:
            if ref.project_id is not None:
                project_id = ref.project_id  # not looked up: a deleted project's trail stays
            else:
                async with session.services.database.read() as conn:
                    project_id = (await find_project(conn, ref)).id
        where = AuditFilter(project=project_id, since=start, kind=kind)
        after = None
        while True:
            rows, end = await audit_page(session.services, after, where, limit=_PAGE)
            for row in rows:
                click.echo(json.dumps(row.model_dump(mode="json"), ensure_ascii=False))
            if end is None:
                return
            after = end

    run_session(settings, dump)


def _time(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(f"--since {text!r}: not an ISO 8601 time", field="since") from None
    if parsed.tzinfo is None:
        raise InvalidInputError(f"--since {text!r}: give its time zone (Z for UTC)", field="since")
    return parsed
