"""The `sharewise account` commands: create sign-in accounts, change and reset passwords, API tokens."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from sharewise.cli.console import acting_user, err, handles_errors, out, settings_for
from sharewise.domain.errors import InvalidDataError, Problem
from sharewise.services import accounts as service
from sharewise.wiring import Control, control_for

app = typer.Typer(help="Sign-in accounts (passwords, one-time codes) and API tokens.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for machine clients: issue, list and revoke.", no_args_is_help=True)
app.add_typer(token_app, name="token")

As = Annotated[str | None, typer.Option("--as", help="The user acting (or SHAREWISE_USER).")]
PasswordFile = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        help="Read the new password from this file's first line (e.g. /dev/stdin) instead of a hidden prompt.",
        dir_okay=False,
    ),
]
CurrentPasswordFile = Annotated[
    Path | None,
    typer.Option(
        "--current-password-file",
        help="Read the current password from this file's first line instead of a hidden prompt.",
        dir_okay=False,
    ),
]


def _control() -> Control:
    return control_for(settings_for(None))


def _read_password(path: Path, option: str) -> str:
    """A password from a file's first line; errors name the option, never the content."""
    try:
        with path.open(encoding="utf-8") as handle:
            line = handle.readline()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not readable as UTF-8 text"
        raise InvalidDataError("the password file cannot be read", [Problem(option, reason.lower())]) from None
    password = line.rstrip("\n").rstrip("\r")
    if not password:
        raise InvalidDataError("no password", [Problem(option, "the file's first line is empty")])
    return password


def _new_password(path: Path | None) -> str:
    if path is not None:
        return _read_password(path, "--password-file")
    password: str = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    return password


def _current_password(path: Path | None) -> str:
    if path is not None:
        return _read_password(path, "--current-password-file")
    password: str = typer.prompt("Current password", hide_input=True)
    return password


@app.command("create")
@handles_errors
def create(
    user_id: Annotated[str, typer.Argument(help="A user already registered with `sharewise user add`.")],
    password_file: PasswordFile = None,
    user: As = None,
) -> None:
    """Give a user a password (administrators of the user's agency; anyone while no account exists).

    The password comes from a hidden prompt or --password-file and is never echoed.

    Privileged users get a one-time-code (TOTP) secret for their authenticator app, printed only here.
    """
    password = _new_password(password_file)
    new = service.create_account(_control(), user or os.environ.get("SHAREWISE_USER"), user_id, password)
    out.print(f"account created for {new.user_id}")
    uri = new.provisioning_uri()
    if new.totp_secret and uri:
        out.print(
            f"one-time codes are required for {new.user_id}: hand this secret to them over a trusted channel; "
            "it is not shown again"
        )
        out.print(f"  TOTP secret: {new.totp_secret}", markup=False)
        out.print(f"  otpauth URI: {uri}", markup=False)


@app.command("password")
@handles_errors
def password(
    user_id: Annotated[str, typer.Argument(help="Your user name.")],
    current_password_file: CurrentPasswordFile = None,
    password_file: PasswordFile = None,
) -> None:
    """Change your password, proving the current one (wrong attempts count towards the lockout)."""
    current = _current_password(current_password_file)
    new = _new_password(password_file)
    service.change_password(_control(), user_id, current, new)
    out.print(f"password changed for {user_id}")


@app.command("reset")
@handles_errors
def reset(
    user_id: Annotated[str, typer.Argument(help="The user whose password is reset.")],
    password_file: PasswordFile = None,
    user: As = None,
) -> None:
    """Set a new password for a user of your agency (administrators), without the old one.

    The password comes from a hidden prompt or --password-file and is never echoed; hand it to the user
    over a trusted channel. Their one-time codes and API tokens are unchanged; a lockout is lifted.
    """
    admin = acting_user(user)
    password = _new_password(password_file)
    service.reset_password(_control(), admin, user_id, password)
    out.print(f"password reset for {user_id}")


@token_app.command("issue")
@handles_errors
def token_issue(
    roles: Annotated[
        str, typer.Option("--roles", help="Comma-separated roles the token carries; only roles you hold.")
    ],
    label: Annotated[str, typer.Option("--label", help="What the token is for (e.g. the nightly extract job).")],
    expires_in_days: Annotated[
        int, typer.Option("--expires-in-days", min=1, max=366, help="The token stops working after this many days.")
    ] = 90,
    user: As = None,
) -> None:
    """Issue a token for your own machine client: the token alone goes to standard output, shown once."""
    role_set = {r.strip() for r in roles.split(",") if r.strip()}
    issued = service.issue_token(_control(), acting_user(user), role_set, label, expires_in_days)
    err.print(
        f"token {issued.id} issued for {', '.join(sorted(issued.roles))} in {issued.agency_id}, "
        f"expiring in {expires_in_days} days; copy it now: only its hash is kept"
    )
    out.print(issued.secret, markup=False)


@token_app.command("list")
@handles_errors
def token_list(user: As = None) -> None:
    """Your API tokens, newest first: id, state, roles, issue and expiry dates, label (never the secret)."""
    tokens = service.list_tokens(_control(), acting_user(user))
    if not tokens:
        err.print("no API tokens")
        return
    for t in tokens:
        state = f"revoked {t.revoked:%Y-%m-%d}" if t.revoked else "active" if t.active else "expired"
        expires = f"{t.expires:%Y-%m-%d}" if t.expires else "never"
        out.print(
            f"{t.id}  {state:18}  {','.join(sorted(t.roles)):24}  issued {t.created:%Y-%m-%d}  "
            f"expires {expires:10}  {t.label}",
            markup=False,
        )


@token_app.command("revoke")
@handles_errors
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (t-...), as printed when it was issued.")],
    user: As = None,
) -> None:
    """Revoke a token (its owner, or an administrator of its agency); it stops working at once."""
    service.revoke_token(_control(), acting_user(user), token_id)
    out.print(f"token {token_id} revoked")
