"""Signing in (the API token, or a project's own token) and out."""

from __future__ import annotations

from aiohttp import web

from app.store import projects
from app.web.auth import token_hash
from app.web.console.base import CODEC, SESSION, form, redirect, render, services, session
from app.web.console.session import COOKIE, Session, set_cookie

routes = web.RouteTableDef()


@routes.get("/login")
async def login_form(request: web.Request) -> web.Response:
    if request.app[CODEC].open or session(request).signed_in:
        return redirect("/console/")
    return render(request, "console/login.html", failed=False)


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    codec = request.app[CODEC]
    offered = (await form(request)).get("token", "")
    if codec.open:
        return redirect("/console/")
    if offered and codec.is_service_token(offered):
        signed_in = Session.new(signed_in=True)
    else:
        digest = token_hash(offered) if offered and len(offered) <= 200 else ""
        async with services(request).database.read() as conn:
            project_id = await projects.id_for_token_hash(conn, digest) if digest else None
        if project_id is None:
            return render(request, "console/login.html", status=401, failed=True)
        signed_in = Session.new(signed_in=True, project_id=project_id, token_hash=digest)
    request[SESSION] = signed_in
    response = redirect("/console/")
    set_cookie(request, response, codec, signed_in)
    return response


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    request[SESSION] = session(request).signed_out()
    response = redirect("/console/login")
    response.del_cookie(COOKIE, path="/console/")
    return response
