"""Console sessions: a signed, HttpOnly cookie holding who signed in and the form (CSRF) token.

The cookie is signed (itsdangerous), not encrypted: it holds no secret, only a random CSRF token, the
project or organisation a token login is limited to, and that token's SHA-256 (the database keeps the
same hash, so a rotated project or organisation token ends the session). The signing key is derived
from the API token unless TASKSGODZILLA_SESSION_SECRET is set: rotating the token logs everyone out.
With no API token the console is open, and a per-process key signs the sessions that only carry CSRF tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import asdict, dataclass, replace
from urllib.parse import urlsplit

from aiohttp import web
from itsdangerous import BadData, URLSafeTimedSerializer

from app.config import Settings
from app.domain.scopes import OPERATOR, Level, Principal
from app.errors import InvalidInputError, PermissionDeniedError

COOKIE = "tg_console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_CONTEXT = b"tasksgodzilla-console-session"


@dataclass(frozen=True)
class Session:
    csrf: str
    signed_in: bool
    project_id: int | None = None  # a project-token login sees this project only
    token_hash: str | None = None  # ... for as long as that token is the project's (organisation's)
    organisation_id: int | None = None  # an organisation-token login sees its projects only

    @classmethod
    def new(cls, *, signed_in: bool, by: Principal = OPERATOR, token_hash: str | None = None) -> Session:
        """A session with a fresh CSRF token (a new one at every login: no fixation); `by` is who
        signed in (a project or organisation by its token, hashed in `token_hash`)."""
        project = by.project_id if by.level is Level.PROJECT else None
        organisation = by.organisation_id if by.level is Level.ORGANISATION else None
        return cls(secrets.token_urlsafe(32), signed_in, project, token_hash, organisation)

    def signed_out(self) -> Session:
        return replace(self, signed_in=False, project_id=None, token_hash=None, organisation_id=None)

    @property
    def by_token(self) -> bool:
        """Signed in with a project's or organisation's token (which may since have been replaced)."""
        return self.project_id is not None or self.organisation_id is not None

    def principal(self) -> Principal | None:
        """Who this session acts as (None before signing in)."""
        if not self.signed_in:
            return None
        if self.project_id is not None:
            return Principal(Level.PROJECT, project_id=self.project_id)
        if self.organisation_id is not None:
            return Principal(Level.ORGANISATION, organisation_id=self.organisation_id)
        return OPERATOR


class SessionCodec:
    """Signs sessions into cookie values and reads them back (None when forged, old or garbled)."""

    def __init__(self, settings: Settings) -> None:
        self.api_token = settings.api_token.get_secret_value() if settings.api_token else None
        self.open = self.api_token is None
        self.max_age = int(settings.session_hours * 3600)
        self._serializer = URLSafeTimedSerializer(signing_key(settings), salt="console-session")

    def dumps(self, session: Session) -> str:
        return self._serializer.dumps(asdict(session))

    def loads(self, raw: str | None) -> Session | None:
        if not raw or len(raw) > 4096:
            return None
        try:
            data = self._serializer.loads(raw, max_age=self.max_age)
            return Session(**data)
        except (BadData, TypeError):
            return None

    def is_service_token(self, offered: str) -> bool:
        return self.api_token is not None and hmac.compare_digest(offered.encode(), self.api_token.encode())


def signing_key(settings: Settings) -> bytes:
    """TASKSGODZILLA_SESSION_SECRET, else HMAC(API token), else a key that lives as long as the process."""
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value().encode()
    if settings.api_token is not None:
        return hmac.new(settings.api_token.get_secret_value().encode(), _CONTEXT, hashlib.sha256).digest()
    return secrets.token_bytes(32)


def set_cookie(
    request: web.Request, response: web.StreamResponse, codec: SessionCodec, session: Session
) -> None:
    response.set_cookie(
        COOKIE,
        codec.dumps(session),
        max_age=codec.max_age,
        path="/console/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )


async def check_csrf(request: web.Request, session: Session) -> None:
    """Every state-changing request carries the session's CSRF token, and comes from our own origin."""
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        raise PermissionDeniedError("this form was sent from another site")
    offered = request.headers.get(CSRF_HEADER)
    if offered is None:
        values = (await request.post()).getall(CSRF_FIELD, [])
        if len(values) > 1:
            raise InvalidInputError(f"the form field {CSRF_FIELD} is given twice", field=CSRF_FIELD)
        offered = values[0] if values and isinstance(values[0], str) else ""
    if not hmac.compare_digest(offered.encode(), session.csrf.encode()):
        raise PermissionDeniedError("the form's security token is missing or stale: reload the page")
