"""Signing in (the API token, an organisation's token or a project's token) and out.

Failed sign-ins are counted per client address and in all (app/domain/throttle.py): past
TASKSGODZILLA_LOGIN_FAILURES_PER_MINUTE from one address (ten times that from all together) within a
minute, the next attempt is refused with a 429 and Retry-After, before its token is even looked at.
"""

from __future__ import annotations

import math
import time

from aiohttp import web

from app.domain.actors import Via, actor_for
from app.domain.scopes import PUBLIC
from app.domain.tokens import token_hash
from app.logs import get_logger
from app.services.audit import record_session
from app.web.auth import principal_for_token
from app.web.console.base import CODEC, SESSION, SIGN_INS, form, redirect, render, services, session
from app.web.console.session import COOKIE, Session, set_cookie
from app.web.scope import scoped

routes = web.RouteTableDef()
log = get_logger(__name__)


@routes.get("/login")
@scoped(PUBLIC)
async def login_form(request: web.Request) -> web.Response:
    if request.app[CODEC].open or session(request).signed_in:
        return redirect("/console/")
    return render(request, "console/login.html", failed=False, wait=None)


@routes.post("/login")
@scoped(PUBLIC)
async def login(request: web.Request) -> web.Response:
    codec = request.app[CODEC]
    if codec.open:
        return redirect("/console/")
    failures = request.app[SIGN_INS]
    client = request.remote or "unknown"
    wait = failures.retry_after(client, time.monotonic())
    if wait is not None:
        refused = render(request, "console/login.html", status=429, failed=False, wait=math.ceil(wait))
        refused.headers["Retry-After"] = str(math.ceil(wait))
        return refused
    offered = (await form(request)).get("token", "")
    if offered and codec.is_service_token(offered):
        signed_in = Session.new(signed_in=True)
    else:
        caller = await principal_for_token(services(request).database, offered)
        if caller is None:
            failures.failed(client, time.monotonic())
            log.warning("console sign-in refused: unknown token", client=client)
            return render(request, "console/login.html", status=401, failed=True, wait=None)
        signed_in = Session.new(signed_in=True, by=caller, token_hash=token_hash(offered))
    request[SESSION] = signed_in
    await _audit(request, signed_in, "console.signed_in", "signed in to the console")
    response = redirect("/console/")
    set_cookie(request, response, codec, signed_in)
    return response


@routes.post("/logout")
@scoped(PUBLIC)
async def logout(request: web.Request) -> web.Response:
    ending = session(request)
    request[SESSION] = ending.signed_out()
    await _audit(request, ending, "console.signed_out", "signed out of the console")
    response = redirect("/console/login")
    response.del_cookie(COOKIE, path="/console/")
    return response


async def _audit(request: web.Request, current: Session, kind: str, message: str) -> None:
    """Who signed in or out, in the audit trail (a session that was never signed in is no one)."""
    principal = current.principal()
    if principal is None:
        return
    actor = actor_for(principal, Via.CONSOLE, service_token=request.app[CODEC].api_token)
    await record_session(
        services(request),
        actor,
        kind,
        message,
        organisation_id=principal.organisation_id,
        project_id=principal.project_id,
    )
