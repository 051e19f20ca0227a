"""The HTTP routes served beside the Streamlit app by the same `streamlit run` process."""

from __future__ import annotations

from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from crm import api, db, session_routes
from crm.nodelay import TcpNoDelayMiddleware


def _ping_database() -> None:
    with db.get_engine().connect() as connection:
        connection.execute(text("SELECT 1"))


async def health(_request: Request) -> JSONResponse:
    """200 when the database answers, 503 otherwise (for load balancers and monitoring)."""
    try:
        # In a worker thread: a database that hangs must not stall the server's event loop.
        await run_in_threadpool(_ping_database)
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
        return JSONResponse({"status": "error", "database": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


def routes() -> list[BaseRoute]:
    """Every route the app serves besides Streamlit's own."""
    return [
        Route("/api/health", health, methods=["GET"]),
        Route(api.LEADS_PATH, api.create_lead, methods=["POST"]),
        Route(session_routes.SESSION_PATH, session_routes.start, methods=["GET"]),
        Route(session_routes.LOGOUT_PATH, session_routes.logout, methods=["GET"]),
    ]


def middleware() -> list[Middleware]:
    """Middleware around every request (CORS for the intake API is added there)."""
    return [Middleware(TcpNoDelayMiddleware), Middleware(api.IntakeCorsMiddleware)]
