"""Projects: create, read, list, update (compare-and-set on `version`), delete."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.records import Project, ProjectStatus
from app.errors import ConflictError, StaleWriteError
from app.store import organisations
from app.store.rows import compare_and_set, fetch_all, fetch_one, page_size, to_record, writable_changes
from app.store.tables import projects


async def create(conn: AsyncConnection, *, name: str, **fields: Any) -> Project:
    """Insert a project (into the default organisation unless `organisation_id` is given); a taken
    name is a ConflictError naming the field."""
    values = writable_changes(projects, {"name": name, **fields})
    if values.get("organisation_id") is None:
        values["organisation_id"] = organisations.default_id()
    try:
        async with conn.begin_nested():
            row = (await conn.execute(insert(projects).values(**values).returning(projects))).one()
    except IntegrityError as exc:
        if "uq_projects_name" in str(exc.orig):
            raise ConflictError(f"a project named {name!r} exists already", field="name") from None
        if "uq_projects_local_path" in str(exc.orig):
            raise ConflictError("another project uses this local path", field="local_path") from None
        raise
    return to_record(Project, row)


async def find_sharing(
    conn: AsyncConnection, *, local_path: str | None = None, git_url: str | None = None
) -> Project | None:
    """A project registered with this local path, or (when given) this git URL."""
    matches = []
    if local_path is not None:
        matches.append(projects.c.local_path == local_path)
    if git_url is not None:
        matches.append(projects.c.git_url == git_url)
    if not matches:
        return None
    row = (await conn.execute(select(projects).where(or_(*matches)).order_by(projects.c.id).limit(1))).first()
    return None if row is None else to_record(Project, row)


async def get(conn: AsyncConnection, project_id: int) -> Project:
    return await fetch_one(
        conn, select(projects).where(projects.c.id == project_id), Project, what=f"project {project_id}"
    )


async def list_page(
    conn: AsyncConnection,
    *,
    before_id: int | None = None,
    limit: int = 50,
    organisation_id: int | None = None,
    project_id: int | None = None,
) -> list[Project]:
    """Newest first; pass the last id seen as `before_id` for the next page. `organisation_id` and
    `project_id` keep that organisation's projects, that project."""
    query = select(projects).order_by(projects.c.id.desc()).limit(page_size(limit))
    if before_id is not None:
        query = query.where(projects.c.id < before_id)
    if organisation_id is not None:
        query = query.where(projects.c.organisation_id == organisation_id)
    if project_id is not None:
        query = query.where(projects.c.id == project_id)
    return await fetch_all(conn, query, Project)


async def update_fields(
    conn: AsyncConnection, project_id: int, *, expected_version: int, **changes: Any
) -> Project:
    """Change fields (not the status) if the row is still at `expected_version`."""
    return await compare_and_set(
        conn,
        projects,
        Project,
        project_id,
        expected_version=expected_version,
        changes=changes,
        what=f"project {project_id}",
    )


async def delete_project(conn: AsyncConnection, project_id: int) -> None:
    """Delete a project with its runs, steps, events and agent runs."""
    await get(conn, project_id)
    await conn.execute(delete(projects).where(projects.c.id == project_id))


async def next_protocol_number(conn: AsyncConnection, project_id: int) -> int:
    """Hand out the project's next protocol number; the row lock serialises concurrent callers."""
    statement = (
        update(projects)
        .where(projects.c.id == project_id)
        .values(protocol_counter=projects.c.protocol_counter + 1)
        .returning(projects.c.protocol_counter)
    )
    number = (await conn.execute(statement)).scalar()
    if number is None:
        await get(conn, project_id)  # raises NotFoundError
    return int(number)


async def set_status(
    conn: AsyncConnection, project_id: int, status: ProjectStatus, *, expected_version: int, **changes: Any
) -> Project:
    """Set the setup status (no guarded machine: setup may run again any time), compare-and-set."""
    statement = (
        update(projects)
        .where(projects.c.id == project_id, projects.c.version == expected_version)
        .values(**writable_changes(projects, changes), status=status.value, version=projects.c.version + 1)
        .returning(projects)
    )
    row = (await conn.execute(statement)).first()
    if row is None:
        current = await get(conn, project_id)
        raise StaleWriteError(
            f"project {project_id} is at version {current.version}", current_version=current.version
        )
    return to_record(Project, row)


async def set_token_hash(conn: AsyncConnection, project_id: int, token_hash: str) -> None:
    """Replace the project's API token (its hash): the old token stops working at once."""
    await get(conn, project_id)
    await conn.execute(update(projects).where(projects.c.id == project_id).values(api_token_hash=token_hash))


async def forge_candidates(conn: AsyncConnection, repository: str) -> list[Project]:
    """Projects that may be `repository` on a forge: named so explicitly, or left to their git URL
    (the caller compares what the URL says; a URL cannot be matched in SQL)."""
    query = (
        select(projects)
        .where(
            or_(
                func.lower(projects.c.forge_repo) == repository.lower(),
                and_(projects.c.forge_repo.is_(None), projects.c.git_url.is_not(None)),
            )
        )
        .order_by(projects.c.id)
    )
    return await fetch_all(conn, query, Project)
