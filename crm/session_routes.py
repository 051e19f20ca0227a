"""The two HTTP routes that set and clear the staff session cookie.

Streamlit's script cannot set an HttpOnly cookie itself, so the sign-in page sends the
browser here with a one-time ticket (see crm.auth); these routes answer with Set-Cookie and a
303 back into the app. Both sit outside Streamlit's reserved paths.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse

from crm import auth, db

SESSION_PATH = "/auth/session"
LOGOUT_PATH = "/auth/logout"
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _safe_next(value: str | None) -> str:
    """Only a path on this site: never another host (an open redirect)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _is_https(request: Request) -> bool:
    return (
        request.url.scheme == "https"
        or request.headers.get("x-forwarded-proto", "").lower() == "https"
    )


def _redeem(ticket: str) -> str | None:
    with db.session_scope(db.get_engine()) as session:
        return auth.redeem_ticket(session, ticket=ticket)


def _end(cookie: str) -> None:
    with db.session_scope(db.get_engine()) as session:
        auth.end_session(session, cookie=cookie, reason="signed out")


async def start(request: Request) -> RedirectResponse:
    """GET /auth/session?ticket=...: exchange a fresh ticket for the session cookie."""
    ticket = request.query_params.get("ticket", "")
    cookie = await run_in_threadpool(_redeem, ticket) if ticket else None
    if cookie is None:
        return RedirectResponse("/login", status_code=303, headers=_NO_STORE)
    response = RedirectResponse(
        _safe_next(request.query_params.get("next")), status_code=303, headers=_NO_STORE
    )
    response.set_cookie(
        auth.COOKIE_NAME,
        cookie,
        max_age=int(auth.max_lifetime().total_seconds()),
        path="/",
        httponly=True,
        samesite="strict",
        secure=_is_https(request),
    )
    return response


async def logout(request: Request) -> RedirectResponse:
    """GET /auth/logout: end the session (if still open) and clear the cookie."""
    cookie = request.cookies.get(auth.COOKIE_NAME)
    if cookie:
        await run_in_threadpool(_end, cookie)
    response = RedirectResponse("/login", status_code=303, headers=_NO_STORE)
    response.delete_cookie(
        auth.COOKIE_NAME, path="/", httponly=True, samesite="strict", secure=_is_https(request)
    )
    return response
