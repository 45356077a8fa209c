"""How an operator names things on the command line, and finding them.

    PROJECT    a name (`demo`) or an id (`3`)
    PROTOCOL   an id (`12`), or PROJECT/NNNN (`demo/0001`, also `demo/1` or `demo/0001-add-login`)
    STEP       an id (`40`), or PROTOCOL/NN (`demo/0001/02`)

Parsing is pure and happens before the database is opened, so a malformed reference fails fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.commits import MAX_PROTOCOL_NUMBER
from app.domain.records import Project, ProtocolRun, StepRun
from app.domain.workspace import check_project_name
from app.errors import InvalidInputError, NotFoundError
from app.store import projects, protocols, steps

_NUMBER = re.compile(r"(\d{1,8})(?:-[a-z0-9][a-z0-9-]*)?")
_PAGE = 500


@dataclass(frozen=True)
class ProjectRef:
    """A project by id, or by name."""

    project_id: int | None = None
    name: str | None = None


@dataclass(frozen=True)
class ProtocolRef:
    """A protocol run by id, or by its project and number."""

    run_id: int | None = None
    project: ProjectRef | None = None
    number: int = 0
    name: str | None = None  # NNNN-slug, when given in full: it must match


@dataclass(frozen=True)
class StepRef:
    """A step run by id, or by its protocol and step number."""

    step_id: int | None = None
    protocol: ProtocolRef | None = None
    index: int = 0


def parse_project(text: str) -> ProjectRef:
    """A PROJECT argument; InvalidInputError unless it is an id or a possible project name."""
    text = text.strip()
    if text.isdigit():
        return ProjectRef(project_id=int(text))
    try:
        return ProjectRef(name=check_project_name(text))
    except InvalidInputError:
        raise InvalidInputError(f"project {text!r}: give a project name or id", field="project") from None


def parse_protocol(text: str) -> ProtocolRef:
    """A PROTOCOL argument: an id or PROJECT/NNNN."""
    text = text.strip()
    if text.isdigit():
        return ProtocolRef(run_id=int(text))
    project, slash, number = text.partition("/")
    found = _NUMBER.fullmatch(number) if slash else None
    if found is None or not 1 <= int(found[1]) <= MAX_PROTOCOL_NUMBER:
        raise InvalidInputError(
            f"protocol {text!r}: give its id or PROJECT/NNNN, for example demo/0001", field="protocol"
        )
    full_name = number if "-" in number else None
    return ProtocolRef(project=parse_project(project), number=int(found[1]), name=full_name)


def parse_step(text: str) -> StepRef:
    """A STEP argument: an id or PROJECT/NNNN/NN."""
    text = text.strip()
    if text.isdigit():
        return StepRef(step_id=int(text))
    protocol, slash, index = text.rpartition("/")
    if not slash or not index.isdigit() or protocol.count("/") != 1:
        raise InvalidInputError(
            f"step {text!r}: give its id or PROJECT/NNNN/NN, for example demo/0001/02", field="step"
        )
    return StepRef(protocol=parse_protocol(protocol), index=int(index))


async def find_project(conn: AsyncConnection, ref: ProjectRef) -> Project:
    """The project named or numbered; NotFoundError when there is none."""
    if ref.project_id is not None:
        return await projects.get(conn, ref.project_id)
    before = None
    while page := await projects.list_page(conn, before_id=before, limit=_PAGE):
        for project in page:
            if project.name == ref.name:
                return project
        before = page[-1].id
    raise NotFoundError(f"no project named {ref.name!r}", field="project")


async def find_protocol(conn: AsyncConnection, ref: ProtocolRef) -> tuple[Project, ProtocolRun]:
    """The protocol run and its project; NotFoundError when there is none."""
    if ref.run_id is not None:
        run = await protocols.get(conn, ref.run_id)
        return await projects.get(conn, run.project_id), run
    assert ref.project is not None
    project = await find_project(conn, ref.project)
    before = None
    while page := await protocols.list_for_project(conn, project.id, before_id=before, limit=_PAGE):
        for run in page:
            if run.number == ref.number and ref.name in (None, run.name):
                return project, run
        before = page[-1].id
    wanted = ref.name or f"{ref.number:04d}"
    raise NotFoundError(f"project {project.name} has no protocol {wanted}", field="protocol")


async def find_step(conn: AsyncConnection, ref: StepRef) -> tuple[Project, ProtocolRun, StepRun]:
    """The step run with its protocol run and project; NotFoundError when there is none."""
    if ref.step_id is not None:
        step = await steps.get(conn, ref.step_id)
        run = await protocols.get(conn, step.protocol_run_id)
        return await projects.get(conn, run.project_id), run, step
    assert ref.protocol is not None
    project, run = await find_protocol(conn, ref.protocol)
    for step in await steps.list_for_protocol(conn, run.id):
        if step.step_index == ref.index:
            return project, run, step
    raise NotFoundError(f"{run_label(project, run)} has no step {ref.index:02d}", field="step")


def run_label(project: Project, run: ProtocolRun) -> str:
    """`demo/0001`: how the commands name a run back to the operator."""
    return f"{project.name}/{run.number:04d}"
