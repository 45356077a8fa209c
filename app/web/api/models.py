"""Request and response shapes of the JSON API (domain records are the resources themselves)."""

from __future__ import annotations

import base64
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from app.config import EngineName
from app.domain.refnames import BranchName
from app.domain.scopes import MAX_ID
from app.domain.statuses import ProtocolStatus
from app.domain.visible import VisibleLine, VisibleText
from app.errors import InvalidInputError
from app.store.events import Position

T = TypeVar("T")
# Documented rather than enforced by pydantic: the service checks these and says why in its own words.
Name = Field(min_length=1, max_length=63, json_schema_extra={"pattern": r"^[a-z0-9][a-z0-9._-]*$"})


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class EngineChoices(Strict):
    planning_engine: EngineName | None = None
    planning_model: VisibleLine | None = Field(None, max_length=200)
    execution_engine: EngineName | None = None
    execution_model: VisibleLine | None = Field(None, max_length=200)
    qa_engine: EngineName | None = None
    qa_model: VisibleLine | None = Field(None, max_length=200)


ForgeRepo = Field(
    None,
    max_length=300,
    # Segments like `.github` are names; `.` and `..` are not (they would walk the forge's API paths).
    pattern=r"^(?:[A-Za-z0-9_-]|\.[A-Za-z0-9_-])[A-Za-z0-9_.-]*(?:/(?:[A-Za-z0-9_-]|\.[A-Za-z0-9_-])[A-Za-z0-9_.-]*)+$",
    description="The forge's name for the repository (`owner/name`, GitLab groups may nest), "
    "when the git URL does not say it",
)
FixCiAttempts = Field(
    None, ge=0, le=10, description="Automatic fix-CI runs of a step whose commit failed CI (else the setting)"
)


class ProjectCreate(EngineChoices):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "shop", "git_url": "https://github.com/acme/shop.git", "base_branch": "main"}
            ],
            "anyOf": [
                {"required": ["git_url"], "properties": {"git_url": {"type": "string"}}},
                {"required": ["local_path"], "properties": {"local_path": {"type": "string"}}},
            ],
        }
    )

    name: VisibleLine = Name
    git_url: str | None = Field(None, max_length=2000)
    local_path: str | None = Field(None, max_length=4000, json_schema_extra={"pattern": "^/"})
    base_branch: BranchName = Field("main", min_length=1, max_length=200)
    ci_provider: Literal["github", "gitlab"] | None = None
    forge_repo: str | None = ForgeRepo
    fix_ci_attempts: int | None = FixCiAttempts


class ProjectPatch(EngineChoices):
    base_branch: BranchName | None = Field(None, min_length=1, max_length=200)
    ci_provider: Literal["github", "gitlab"] | None = None
    forge_repo: str | None = ForgeRepo
    fix_ci_attempts: int | None = FixCiAttempts
    intake_label: VisibleLine | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Open forge issues with this label become protocol runs (null: no intake)",
    )
    intake_blocked_label: VisibleLine | None = Field(
        None, min_length=1, max_length=100, description="Issues with this label wait (null: `blocked`)"
    )


class ProtocolCreate(EngineChoices):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"title": "Add a login page", "description": "Email + password, tests.", "start": True}
            ]
        }
    )

    title: VisibleLine = Field(min_length=1, max_length=200)
    description: VisibleText = Field("", max_length=20_000)
    start: bool = False


class Approval(Strict):
    note: VisibleText = Field("", max_length=2000)


class Critical(Strict):
    critical: StrictBool = Field(
        True, description="True: QA takes a second opinion (another engine or model); false: one QA again."
    )


class Retry(Strict):
    note: VisibleText = Field(
        "",
        max_length=4000,
        description="For the agent's next attempt (it then redoes the step on top of its last commit).",
    )


class BranchDelete(Strict):
    confirm: BranchName = Field(description="The branch name again, to confirm the deletion.", max_length=200)


class Answers(Strict):
    answers: dict[str, str] = Field(max_length=20)


class PageQuery(Strict):
    limit: int = Field(50, ge=1, le=500)
    cursor: str | None = Field(None, max_length=100)

    def position(self) -> int | None:
        return decode_cursor(self.cursor)


class ProjectPageQuery(PageQuery):
    organisation_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="Only this organisation's projects."
    )


class ProtocolPageQuery(PageQuery):
    status: list[ProtocolStatus] = Field(default_factory=list, max_length=9)
    q: str | None = Field(None, max_length=200, description="Only runs whose name or title contains this.")


class EventQuery(PageQuery):
    limit: int = Field(100, ge=1, le=500)
    cursor: str | None = Field(
        None,
        max_length=100,
        description="The `next_cursor` of the previous page; a plain event id is also taken (the page "
        "after that event). Events come in transaction order, each only once every transaction begun before "
        "it has finished, so a page never skips one that could still commit before its cursor (a new "
        "event may thus appear a moment late).",
    )
    type: list[str] = Field(default_factory=list, max_length=30)
    correlation_id: str | None = Field(
        None,
        max_length=128,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="Only the events of one correlation id: those recorded under it (a request, a run's "
        "jobs) and every event of the protocol run that carries it (its `correlation_id`).",
    )

    def start(self) -> Position | int | None:
        return decode_event_cursor(self.cursor, field="cursor")


class StreamQuery(Strict):
    project_id: int | None = Field(None, ge=1, le=MAX_ID)
    protocol_id: int | None = Field(None, ge=1, le=MAX_ID)
    step_id: int | None = Field(None, ge=1, le=MAX_ID)
    type: list[str] = Field(default_factory=list, max_length=30)
    after: str | None = Field(
        None,
        max_length=100,
        description="Resume after this cursor: the `id` of an SSE message, or a `next_cursor` of an events "
        "page. A plain event id is also taken (resume after that event). Last-Event-ID, sent by a "
        "reconnecting EventSource, takes precedence. Without either, the stream starts now.",
    )


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(position: int) -> str:
    return _base64(str(position))


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        position = int(_unbase64(cursor))
    except ValueError:
        raise InvalidInputError("the cursor is not one this API gave out", field="cursor") from None
    if not 0 <= position <= MAX_ID:
        raise InvalidInputError("the cursor is not one this API gave out", field="cursor")
    return position


MAX_TXID = 2**63 - 1


def encode_event_cursor(position: Position) -> str:
    """An event's place in the log (`events.Position`), opaque to clients (SSE message ids, `next_cursor`)."""
    return _base64(f"{position.txid}:{position.id}")


def decode_event_cursor(cursor: str | None, *, field: str) -> Position | int | None:
    """The position `cursor` names, or a plain event id (given as digits, or an `encode_cursor` of one,
    as this API gave out before event cursors held a position), for `events.start_at`."""
    if not cursor:
        return None
    if cursor.isascii() and cursor.isdigit():
        # Unambiguous: an encoded position starts with a letter (base64 of a digit is M, N or O).
        return _event_id(cursor, field)
    try:
        text = _unbase64(cursor)
    except ValueError:
        raise InvalidInputError("the cursor is not one this API gave out", field=field) from None
    txid, colon, event_id = text.partition(":")
    if not colon:
        return _event_id(text, field)
    if not (_digits(txid) and _digits(event_id) and int(txid) <= MAX_TXID and int(event_id) <= MAX_ID):
        raise InvalidInputError("the cursor is not one this API gave out", field=field)
    return Position(int(txid), int(event_id))


def _base64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unbase64(cursor: str) -> str:
    """The text inside an encoded cursor; a ValueError (binascii.Error, UnicodeDecodeError, or
    non-ASCII input) when it is none."""
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 19


def _event_id(text: str, field: str) -> int:
    if not (_digits(text) and int(text) <= MAX_ID):
        raise InvalidInputError("the cursor is not one this API gave out", field=field)
    return int(text)


def page_of(items: list, limit: int) -> dict:
    """A page, with the cursor of the next one when this one is full (keyset on `id`)."""
    full = len(items) == limit and items
    return {"items": items, "next_cursor": encode_cursor(items[-1].id) if full else None}
