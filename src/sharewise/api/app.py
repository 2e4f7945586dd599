"""The application factory: the REST API under /api/v1 and the web UI, built on given settings and stores."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Callable

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

import sharewise.api.routes_data
import sharewise.api.routes_workflow  # noqa: F401  (they add their routes to the router)
from sharewise.api import problems
from sharewise.api.context import AppContext, sourced
from sharewise.api.routes import router
from sharewise.domain.errors import SharewiseError
from sharewise.policy.model import LawPack
from sharewise.wiring import Control, Settings, SystemClock, control_for, law_for

API_DESCRIPTION = (
    "Decide, agree, share and account. Every route calls the same services as the `sharewise` command line. "
    "Authenticate with `Authorization: Bearer <token>`; errors are RFC 9457 problem+json with stable codes."
)


def create_app(
    settings: Settings | None = None,
    control: Control | None = None,
    law: LawPack | None = None,
    today: Callable[[], dt.date] | None = None,
    session_secret: str | None = None,
    secure_cookies: bool = True,
    idle_timeout: dt.timedelta = dt.timedelta(minutes=15),
) -> FastAPI:
    """Build the app from settings (or from the control plane and law pack tests pass in)."""
    settings = settings or (control.settings if control else Settings.from_env())
    control = control or control_for(settings)
    law = law or law_for(settings)
    app = FastAPI(
        title="sharewise",
        version="1",
        description=API_DESCRIPTION,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    from sharewise.services.security import security_law

    security_law(law)  # load the control catalog now, not on the first request page someone opens (~0.5 s once)
    app.state.ctx = AppContext(
        law=law, api=sourced(control, "api"), web=sourced(control, "web"), today=today or SystemClock().today
    )
    app.include_router(router)

    from sharewise.web import pages

    secret = session_secret or os.environ.get("SHAREWISE_SESSION_SECRET") or secrets.token_urlsafe(32)
    pages.mount_web(app, secret, secure_cookies, idle_timeout)

    async def on_error(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return await problems.sharewise_error_handler(request, exc)
        return pages.error_page(request, exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return await problems.validation_error_handler(request, exc)
        return pages.error_page(request, exc)

    async def on_http(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return await problems.http_error_handler(request, exc)
        return pages.error_page(request, exc)

    app.add_exception_handler(SharewiseError, on_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    return app
