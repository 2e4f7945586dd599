"""Sign-in with an agency's identity provider (OpenID Connect): the redirect there and the way back.

Importing this module adds its routes to the web router and the provider buttons to the sign-in page. The
configuration is the file SHAREWISE_OIDC_CONFIG names, read on first use (or given with `configure`); without
one, OpenID Connect is off: the sign-in page shows nothing new and these routes answer 404.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import RedirectResponse, Response

from sharewise.domain.errors import InvalidDataError, InvalidStateError, NotFoundError
from sharewise.services import oidc as oidc_service
from sharewise.web.pages import Ctx, _safe_next, render, router, start_session, templates

log = logging.getLogger(__name__)

_MISCONFIGURED = "sign-in with an identity provider is not available: its configuration has errors (see the server log)"


def configure(app: FastAPI, service: oidc_service.OpenIdConnect | None) -> None:
    """Use this sign-in service (None: OpenID Connect off) instead of the one SHAREWISE_OIDC_CONFIG names."""
    app.state.oidc = service


def configure_from_env(app: FastAPI) -> None:
    """Read SHAREWISE_OIDC_CONFIG now; an invalid configuration raises InvalidDataError with every problem."""
    settings = oidc_service.settings_from_env()
    configure(app, oidc_service.OpenIdConnect(settings) if settings else None)


def _service(app: Any) -> oidc_service.OpenIdConnect | InvalidDataError | None:
    # Read once per app: a service, None when off, or the configuration's error (logged once, then kept).
    state = app.state
    if not hasattr(state, "oidc"):
        try:
            configure_from_env(app)
        except InvalidDataError as exc:
            log.error("%s: %s", exc.message, "; ".join(str(p) for p in exc.problems))
            state.oidc = exc
    found: oidc_service.OpenIdConnect | InvalidDataError | None = state.oidc
    return found


def _enabled(request: Request) -> oidc_service.OpenIdConnect:
    service = _service(request.app)
    if isinstance(service, InvalidDataError):
        raise InvalidStateError(_MISCONFIGURED)
    if service is None:
        raise NotFoundError("sign-in with an identity provider is not configured")
    return service


def sign_in_providers(request: Request) -> list[oidc_service.ProviderConfig]:
    """The providers the sign-in page offers (none when OpenID Connect is off or misconfigured)."""
    service = _service(request.app)
    return service.providers() if isinstance(service, oidc_service.OpenIdConnect) else []


templates.env.globals["oidc_providers"] = sign_in_providers


def _redirect_uri(request: Request, service: oidc_service.OpenIdConnect, provider_id: str) -> str:
    # Exactly the URI registered with the provider: behind a proxy, public_url says how the outside reaches us.
    path = f"/sign-in/oidc/{provider_id}/callback"
    base = service.settings.public_url
    return f"{base}{path}" if base else str(request.url_for("oidc_callback", provider=provider_id))


@router.get("/sign-in/oidc/{provider}")
def oidc_begin(
    provider: str, request: Request, context: Ctx, next: Annotated[str, Query(max_length=500)] = "/"
) -> Response:
    """Send the browser to the provider; the session keeps the one-time state, nonce and PKCE verifier."""
    service = _enabled(request)
    service.provider(provider)
    try:
        start = service.begin(context.web, provider, _redirect_uri(request, service, provider), _safe_next(next))
    except oidc_service.SignInRefused as exc:  # the provider could not be reached
        return render(request, "sign_in.html", exc.status, next=_safe_next(next), error=exc.message)
    request.session["oidc"] = start.pending  # one sign-in at a time: a new one replaces an unfinished one
    return RedirectResponse(start.url, status_code=303)


@router.get("/sign-in/oidc/{provider}/callback", name="oidc_callback")
def oidc_callback(provider: str, request: Request, context: Ctx) -> Response:
    """The provider's answer: verified, mapped to a registered user of its agency, then a new session."""
    service = _enabled(request)
    service.provider(provider)
    pending = request.session.pop("oidc", None)  # good once, whatever the outcome
    next_url = _safe_next(pending.get("next") if isinstance(pending, dict) else None)
    params = {k: v[:4096] for k, v in request.query_params.items()}
    try:
        user = service.complete(context.web, provider, pending if isinstance(pending, dict) else None, params)
    except oidc_service.SignInRefused as exc:
        return render(request, "sign_in.html", exc.status, next=next_url, error=exc.message)
    # The same new session as the password sign-in (pages.sign_in): no fixation, a new CSRF token.
    start_session(request, context, user)
    return RedirectResponse(next_url, status_code=303)
