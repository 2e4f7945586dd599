"""Web pages for your own account: password, second factor, API tokens (the same services as the CLI and API)."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sharewise.api.context import AppContext
from sharewise.domain.errors import (
    AccessDeniedError,
    InvalidDataError,
    InvalidStateError,
    NotFoundError,
    Problem,
    SharewiseError,
)
from sharewise.services import accounts as accounts_service
from sharewise.services.accounts import IssuedToken
from sharewise.web.pages import Csrf, Ctx, SignInRequired, Viewer, check_csrf, ctx, current_user, flash, render, router
from sharewise.workflow.access import User

# A field's messages, in the order the form shows its fields (the error summary links to each field by id).
FieldErrors = dict[str, list[str]]

PASSWORD_FIELDS = ("current_password", "new_password", "confirm_password")
TOKEN_FIELDS = ("label", "roles", "expires_in_days")
TOKEN_LIFETIMES = (7, 30, 90, 180, 366)  # days; the REST API allows 1 to 366
DEFAULT_TOKEN_LIFETIME = 90
WRONG_CURRENT_PASSWORD = "the current password is not right"


def _ordered(errors: FieldErrors, fields: tuple[str, ...]) -> FieldErrors:
    return {field: errors[field] for field in fields if errors.get(field)}


def _new_session(request: Request, values: dict[str, str]) -> None:
    # A new session whenever what it may do changes, as at sign-in: no fixation, and a new CSRF token.
    request.session.clear()
    since = {"since": values["seen"]} if "seen" in values else {}
    request.session.update({**values, **since, "csrf": secrets.token_urlsafe(32)})


# Overview ------------------------------------------------------------------------------------------


@router.get("/account")
def account_page(request: Request, context: Ctx, user: Viewer) -> HTMLResponse:
    return render(
        request,
        "account.html",
        user=user,
        roles=sorted(user.roles),
        has_totp=accounts_service.has_totp(context.web, user.id),
        needs_totp=accounts_service.privileged(user),
    )


# Password ------------------------------------------------------------------------------------------


def _password_form(request: Request, user: User, errors: FieldErrors, status_code: int = 200) -> HTMLResponse:
    return render(
        request,
        "account_password.html",
        status_code,
        user=user,
        errors=_ordered(errors, PASSWORD_FIELDS),
        min_length=accounts_service.MIN_LENGTH,
        max_length=accounts_service.MAX_LENGTH,
    )


@router.get("/account/password")
def password_form(request: Request, user: Viewer) -> HTMLResponse:
    return _password_form(request, user, {})


@router.post("/account/password")
def change_password(
    request: Request,
    context: Ctx,
    user: Viewer,
    csrf: Csrf,
    current_password: Annotated[str, Form(max_length=1024)] = "",
    new_password: Annotated[str, Form(max_length=1024)] = "",
    confirm_password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    check_csrf(request, csrf)
    # Every problem with the form together; the current password is checked only once the rest is right,
    # so a typing slip in the new password does not count as a failed sign-in.
    errors: FieldErrors = {}
    if not current_password:
        errors["current_password"] = ["enter your current password"]
    if not new_password:
        errors["new_password"] = ["enter a new password"]
    else:
        problems = accounts_service.password_problems(new_password, accounts_service.password_context(user))
        if problems:
            errors["new_password"] = [p.message for p in problems]
    if new_password and confirm_password != new_password:
        errors["confirm_password"] = ["the two new passwords are not the same"]
    if errors:
        return _password_form(request, user, errors, 422)
    try:
        accounts_service.change_password(context.web, user.id, current_password, new_password)
    except AccessDeniedError as exc:
        # A wrong password, or an account locked after repeated failures (the lock's own message).
        message = WRONG_CURRENT_PASSWORD if exc.message == accounts_service.SIGN_IN_FAILED else exc.message
        return _password_form(request, user, {"current_password": [message]}, 403)
    except InvalidDataError as exc:
        return _password_form(request, user, {"new_password": [p.message for p in exc.problems]}, 422)
    # A new session after the change, as at sign-in; the CSRF token changes with it.
    _new_session(request, {"uid": user.id, "seen": context.web.trail.clock().isoformat()})
    flash(request, "Your password is changed. Use the new one from your next sign-in on.")
    return RedirectResponse("/account", status_code=303)


# Second factor -------------------------------------------------------------------------------------


# A privileged account without an authenticator (a role granted after it was created) cannot sign in for a
# session: its password opens only an enrolling session ("enrolling" instead of "uid"), which these pages alone
# accept; confirming the new authenticator's code turns it into a full session.


@dataclass(frozen=True)
class MfaVisitor:
    """Who is on the second-factor pages: a signed-in user, or one signed in with the password only to enrol."""

    user: User
    enrolling: bool


def mfa_visitor(request: Request) -> MfaVisitor | None:
    """The visitor; None when an enrolling session ended (the pages send them back to its sign-in)."""
    session = request.session
    uid = session.get("enrolling")
    if session.get("uid") or not uid:
        return MfaVisitor(current_user(request), enrolling=False)  # a full session, or the sign-in page
    context = ctx(request)
    now = context.web.trail.clock()
    seen = dt.datetime.fromisoformat(session.get("seen", "1970-01-01T00:00:00+00:00"))
    if now - seen > request.app.state.idle_timeout:
        session.clear()
        flash(request, "Your session ended after 15 minutes without activity. Please sign in again.", "warning")
        return None
    try:
        user = accounts_service.enrolling_user(context.web, str(uid))
    except SharewiseError:  # enrolled meanwhile, elsewhere: a normal sign-in now
        session.clear()
        raise SignInRequired("/account/mfa") from None
    session["seen"] = now.isoformat()
    return MfaVisitor(user, enrolling=True)


Visitor = Annotated[MfaVisitor | None, Depends(mfa_visitor)]
ENROL_SIGN_IN = "/account/mfa/enrol"


def _mfa_page(
    request: Request,
    context: AppContext,
    visitor: MfaVisitor,
    errors: FieldErrors | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    user = visitor.user
    pending = accounts_service.pending_totp(context.web, user.id)
    return render(
        request,
        "account_mfa.html",
        status_code,
        # An enrolling visitor sees no site navigation: no other page is open to them yet.
        user=None if visitor.enrolling else user,
        visitor=visitor,
        has_totp=accounts_service.has_totp(context.web, user.id),
        needs_totp=accounts_service.privileged(user),
        pending=pending,
        pending_uri=accounts_service.provisioning_uri(user.id, pending) if pending else None,
        errors=_ordered(errors or {}, ("code",)),
    )


@router.get("/account/mfa")
def mfa_page(request: Request, context: Ctx, visitor: Visitor) -> Response:
    if visitor is None:
        return RedirectResponse(ENROL_SIGN_IN, status_code=303)
    return _mfa_page(request, context, visitor)


@router.post("/account/mfa/begin")
def begin_enrolment(request: Request, context: Ctx, visitor: Visitor, csrf: Csrf) -> Response:
    check_csrf(request, csrf)
    if visitor is None:
        return RedirectResponse(ENROL_SIGN_IN, status_code=303)
    accounts_service.begin_totp(context.web, visitor.user.id)
    # The secret is read back from the store by the page: never carried in the session or the redirect.
    return RedirectResponse("/account/mfa#enrolment", status_code=303)


@router.post("/account/mfa/confirm")
def confirm_enrolment(
    request: Request,
    context: Ctx,
    visitor: Visitor,
    csrf: Csrf,
    code: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    check_csrf(request, csrf)
    if visitor is None:
        return RedirectResponse(ENROL_SIGN_IN, status_code=303)
    if not code.strip():
        return _mfa_page(request, context, visitor, {"code": ["enter the code your authenticator app shows"]}, 422)
    try:
        accounts_service.confirm_totp(context.web, visitor.user.id, code)
    except InvalidDataError as exc:
        return _mfa_page(request, context, visitor, {"code": [p.message for p in exc.problems]}, 422)
    except InvalidStateError as exc:  # no enrolment in progress (confirmed or restarted in another window)
        flash(request, exc.message[:1].upper() + exc.message[1:] + ".", "error")
        return RedirectResponse("/account/mfa", status_code=303)
    if visitor.enrolling:
        # The password at the enrolment sign-in and now a code from the new authenticator: a full sign-in.
        _new_session(request, {"uid": visitor.user.id, "seen": context.web.trail.clock().isoformat()})
    flash(request, "Your authenticator is set up: sign-in asks for its one-time code from now on.")
    return RedirectResponse("/account/mfa", status_code=303)


def _enrol_sign_in(request: Request, error: str | None = None, status_code: int = 200) -> HTMLResponse:
    return render(request, "account_mfa_enrol.html", status_code, user=None, error=error)


@router.get("/account/mfa/enrol")
def enrol_sign_in_form(request: Request) -> Response:
    if request.session.get("uid") or request.session.get("enrolling"):
        return RedirectResponse("/account/mfa", status_code=303)
    return _enrol_sign_in(request)


@router.post("/account/mfa/enrol")
def enrol_sign_in(
    request: Request,
    context: Ctx,
    csrf: Csrf,
    username: Annotated[str, Form(max_length=80)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    check_csrf(request, csrf)
    try:
        user = accounts_service.sign_in_to_enrol(context.web, username.strip(), password)
    except AccessDeniedError as exc:
        return _enrol_sign_in(request, exc.message, 401)
    _new_session(request, {"enrolling": user.id, "seen": context.web.trail.clock().isoformat()})
    accounts_service.begin_totp(context.web, user.id)
    return RedirectResponse("/account/mfa#enrolment", status_code=303)


# API tokens ----------------------------------------------------------------------------------------


def _tokens_page(
    request: Request,
    user: User,
    errors: FieldErrors | None = None,
    status_code: int = 200,
    issued: IssuedToken | None = None,
    form: dict[str, object] | None = None,
) -> HTMLResponse:
    return render(
        request,
        "account_tokens.html",
        status_code,
        user=user,
        tokens=accounts_service.list_tokens(ctx(request).web, user.id),
        roles=sorted(user.roles),
        lifetimes=TOKEN_LIFETIMES,
        errors=_ordered(errors or {}, (*TOKEN_FIELDS, "token_id")),
        issued=issued,
        form=form or {"label": "", "roles": [], "expires_in_days": DEFAULT_TOKEN_LIFETIME},
    )


@router.get("/account/tokens")
def tokens_page(request: Request, user: Viewer) -> HTMLResponse:
    return _tokens_page(request, user)


def _field_errors(problems: list[Problem], fields: tuple[str, ...], fallback: str) -> FieldErrors:
    errors: FieldErrors = {}
    for p in problems:
        errors.setdefault(p.location if p.location in fields else fallback, []).append(p.message)
    return errors


@router.post("/account/tokens")
def issue_token(
    request: Request,
    context: Ctx,
    user: Viewer,
    csrf: Csrf,
    label: Annotated[str, Form(max_length=200)] = "",
    roles: Annotated[list[str] | None, Form()] = None,
    expires_in_days: Annotated[int, Form()] = DEFAULT_TOKEN_LIFETIME,
) -> HTMLResponse:
    check_csrf(request, csrf)
    chosen = sorted({r for r in roles or [] if r})
    form: dict[str, object] = {"label": label, "roles": chosen, "expires_in_days": expires_in_days}
    errors: FieldErrors = {}
    if not label.strip():
        errors["label"] = ["say what the token is for"]
    if not chosen:
        errors["roles"] = ["choose at least one role for the token"]
    elsewhere = [r for r in chosen if r not in user.roles]
    if elsewhere:
        errors["roles"] = ["a token may carry only roles you hold"]
    if expires_in_days not in TOKEN_LIFETIMES:
        errors["expires_in_days"] = ["choose one of the offered lifetimes"]
    if errors:
        return _tokens_page(request, user, errors, 403 if elsewhere else 422, form=form)
    try:
        issued = accounts_service.issue_token(context.web, user.id, set(chosen), label.strip(), expires_in_days)
    except InvalidDataError as exc:
        return _tokens_page(request, user, _field_errors(exc.problems, TOKEN_FIELDS, "label"), 422, form=form)
    except AccessDeniedError as exc:  # the roles changed since the page was shown
        return _tokens_page(request, user, {"roles": [exc.message]}, 403, form=form)
    # The secret is rendered once, here, and kept nowhere: not in the session, not in a redirect.
    return _tokens_page(request, user, issued=issued)


@router.post("/account/tokens/revoke")
def revoke_token(
    request: Request,
    context: Ctx,
    user: Viewer,
    csrf: Csrf,
    token_id: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    check_csrf(request, csrf)
    token_id = token_id.strip()
    if not token_id:
        return _tokens_page(request, user, {"token_id": ["enter the id of the token to revoke"]}, 422)
    try:
        accounts_service.revoke_token(context.web, user.id, token_id)
    except NotFoundError:
        return _tokens_page(request, user, {"token_id": ["there is no token with this id"]}, 404)
    except AccessDeniedError:
        return _tokens_page(
            request, user, {"token_id": ["only its owner or an administrator of its agency may revoke this token"]}, 403
        )
    flash(request, f"API token {token_id} is revoked.")
    return RedirectResponse("/account/tokens", status_code=303)
