"""Web pages for your own account: password, second factor, API tokens (the same services as the CLI and API)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sharewise.api.context import AppContext
from sharewise.domain.errors import AccessDeniedError, InvalidDataError, NotFoundError, Problem
from sharewise.services import accounts as accounts_service
from sharewise.services.accounts import IssuedToken
from sharewise.web.pages import Csrf, Ctx, Viewer, check_csrf, flash, render, router
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


def _password_context(user: User) -> tuple[str, ...]:
    # The words the service refuses inside a password (see accounts.create_account and change_password).
    return (user.id, user.name, "sharewise")


def _has_second_factor(context: AppContext, user: User) -> bool:
    # Only whether a secret is enrolled: the secret itself is never shown again after enrolment.
    return accounts_service.totp_secret(context.web, user.id) is not None


# Overview ------------------------------------------------------------------------------------------


@router.get("/account")
def account_page(request: Request, context: Ctx, user: Viewer) -> HTMLResponse:
    return render(
        request,
        "account.html",
        user=user,
        roles=sorted(user.roles),
        has_totp=_has_second_factor(context, user),
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
        problems = accounts_service.password_problems(new_password, _password_context(user))
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
    seen = request.session.get("seen")
    request.session.clear()
    request.session.update({"uid": user.id, "seen": seen, "csrf": secrets.token_urlsafe(32)})
    flash(request, "Your password is changed. Use the new one from your next sign-in on.")
    return RedirectResponse("/account", status_code=303)


# Second factor -------------------------------------------------------------------------------------


@router.get("/account/mfa")
def mfa_page(request: Request, context: Ctx, user: Viewer) -> HTMLResponse:
    return render(
        request,
        "account_mfa.html",
        user=user,
        has_totp=_has_second_factor(context, user),
        needs_totp=accounts_service.privileged(user),
    )


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
