"""What every page handler needs: responses, the store's owner, the session and its CSRF token."""

import secrets

from aiohttp import web

from box.web import pages
from box.web.appkeys import ACCOUNTS, STORE

SESSION_COOKIE = "mipai_session"


def html_response(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html")


async def in_store(request: web.Request, function, *args):
    return await request.app[STORE].run(lambda _store: function(*args))


async def current_session(request: web.Request):
    """(token, csrf) of the request's live session, or None."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    csrf = await in_store(request, request.app[ACCOUNTS].session_csrf, token)
    return (token, csrf) if csrf else None


def same_token(given, expected) -> bool:
    return bool(given) and bool(expected) and secrets.compare_digest(str(given), str(expected))


def refuse_csrf() -> web.Response:
    return html_response(
        pages.message_page("Refused", "Missing or wrong CSRF token: reload the page and try again."), 403
    )


async def logged_in_page(request: web.Request, render) -> web.Response:
    """`await render(request, csrf)` as the page for a logged-in session; otherwise the way to the login page."""
    session = await current_session(request)
    if session is None:
        raise web.HTTPFound("/login")
    return html_response(await render(request, session[1]))


async def logged_in_form(request: web.Request) -> tuple:
    """(CSRF token, form) of a POST from a logged-in session with the right token; otherwise raises the response
    that sends the browser to log in, or refuses the request."""
    session = await current_session(request)
    if session is None:
        raise web.HTTPFound("/login")
    form = await request.post()
    if not same_token(form.get("csrf"), session[1]):
        raise web.HTTPForbidden(text=refuse_csrf().text, content_type="text/html")
    return session[1], form
