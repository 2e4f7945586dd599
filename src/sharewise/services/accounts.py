"""Local accounts and API tokens: argon2id passwords (NIST SP 800-63B), TOTP, throttling, scoped tokens.

A privileged role needs a second factor. An account that holds one without an active TOTP secret
(a role granted after the account was created) is *pending enrolment*: it cannot sign in for a
session (`authenticate` refuses it and `user` ends a session it already has), its password opens
only the enrolment (`sign_in_to_enrol`, `begin_totp`, `confirm_totp`), its API tokens act without
their privileged roles and no token can be issued with one. Directory users without an account
never sign in; the trusted command line acts for them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, insert, select, update

from sharewise.domain.errors import AccessDeniedError, InvalidDataError, InvalidStateError, NotFoundError, Problem
from sharewise.domain.events import AuditEvent
from sharewise.store.accounts_schema import accounts, api_tokens, idempotency_keys
from sharewise.store.schema import users
from sharewise.wiring import Control
from sharewise.workflow.access import User
from sharewise.workflow.store import SqlWorkflowStore

COMMON_PASSWORDS = Path(__file__).resolve().parents[1] / "data" / "common-passwords.txt"
MIN_LENGTH = 8  # SP 800-63B 5.1.1.2: at least 8 characters
MAX_LENGTH = 256  # 64 or more must be allowed; a bound keeps hashing cheap for attackers to trigger
MAX_FAILURES = 5  # failed sign-ins before the account is locked
LOCKOUT = dt.timedelta(minutes=15)
# Roles whose holders must use a second factor (they approve, sign, or administer).
PRIVILEGED_ROLES = frozenset({"administrator", "approver", "legal_reviewer", "security_officer"})
TOKEN_PREFIX = "sw_"

USERS = SqlWorkflowStore()
# argon2id with RFC 9106's second recommended parameters (t=3, m=64 MiB, p=4); one slot so tests can swap it.
_HASHERS = [PasswordHasher()]


def use_hasher(hasher: PasswordHasher) -> None:
    """Replace the password hasher (tests use cheaper parameters)."""
    _HASHERS[0] = hasher


def _hasher() -> PasswordHasher:
    return _HASHERS[0]


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of common and breached passwords (lower-cased)."""
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def _normalize(password: str) -> str:
    # SP 800-63B: Unicode passwords are normalized (NFKC) before hashing.
    return unicodedata.normalize("NFKC", password)


def password_problems(password: str, context: tuple[str, ...] = ()) -> list[Problem]:
    """Every reason a new password is refused; no composition rules, as SP 800-63B advises."""
    pw = _normalize(password)
    problems = []
    if len(pw) < MIN_LENGTH:
        problems.append(Problem("password", f"use at least {MIN_LENGTH} characters"))
    if len(pw) > MAX_LENGTH:
        problems.append(Problem("password", f"use at most {MAX_LENGTH} characters"))
    lowered = pw.lower()
    if lowered in common_passwords():
        problems.append(Problem("password", "this password is on the list of common or breached passwords"))
    if len(set(lowered)) <= 2 and len(pw) >= MIN_LENGTH:
        problems.append(Problem("password", "a password of one or two repeated characters is easily guessed"))
    if lowered in _sequences(len(lowered)):
        problems.append(Problem("password", "a sequence of characters is easily guessed"))
    for word in context:
        if word and len(word) >= 4 and word.lower() in lowered:
            problems.append(Problem("password", "do not use your user name or the name of the service"))
            break
    return problems


def password_context(user: User) -> tuple[str, ...]:
    """The words a user's password may not contain: their user name, their name and the service's."""
    return (user.id, user.name, "sharewise")


def _sequences(length: int) -> set[str]:
    runs = ("abcdefghijklmnopqrstuvwxyz", "0123456789", "qwertyuiopasdfghjklzxcvbnm")
    found = set()
    for run in runs:
        for text in (run, run[::-1]):
            for i in range(len(text) - length + 1):
                found.add(text[i : i + length])
    return found


def _audit(
    control: Control,
    conn: Connection,
    action: str,
    actor: str,
    subject: str,
    agency: str | None = None,
    details: dict[str, Any] | None = None,
    outcome: str = "success",
) -> None:
    control.trail.append(
        conn,
        AuditEvent(
            action=action,
            actor=actor,
            agency=agency,
            subject_type="account",
            subject_id=subject,
            outcome=outcome,
            details=details or {},
        ),
    )


def privileged(user: User) -> bool:
    """Whether the user holds a role that needs a second factor."""
    return bool(user.roles & PRIVILEGED_ROLES)


def provisioning_uri(user_id: str, secret: str, issuer: str = "sharewise") -> str:
    """The otpauth:// URI an authenticator app takes (typed in or shown as a QR code by the app's owner)."""
    return pyotp.TOTP(secret).provisioning_uri(name=user_id, issuer_name=issuer)


@dataclass(frozen=True)
class NewAccount:
    """An account just created: the TOTP secret is shown once, to enroll an authenticator."""

    user_id: str
    totp_secret: str | None

    def provisioning_uri(self, issuer: str = "sharewise") -> str | None:
        return provisioning_uri(self.user_id, self.totp_secret, issuer) if self.totp_secret else None


def _account(conn: Connection, user_id: str) -> Any:
    row = conn.execute(select(accounts).where(accounts.c.user_id == user_id)).first()
    if row is None:
        raise NotFoundError(f"no account '{user_id}'")
    return row


def _pending_enrolment(user: User, row: Any) -> bool:
    # An account (row) whose roles need a second factor it does not have yet.
    return row is not None and privileged(user) and not row.totp_secret


def _bootstrapping(conn: Connection) -> bool:
    return conn.execute(select(accounts.c.user_id).limit(1)).first() is None


def _agency_has_accounts(conn: Connection, agency_id: str) -> bool:
    query = (
        select(accounts.c.user_id).join(users, users.c.id == accounts.c.user_id).where(users.c.agency_id == agency_id)
    )
    return conn.execute(query.limit(1)).first() is not None


def create_account(control: Control, actor_id: str | None, user_id: str, password: str) -> NewAccount:
    """Give a directory user a password (administrators of the user's agency; anyone while no account exists).

    Privileged users get a TOTP secret, which they must use from their first sign-in on.
    """
    now = control.trail.clock()
    with control.store.transaction() as conn:
        actor = None if _bootstrapping(conn) else USERS.user(conn, actor_id or "")
        if actor is not None and not actor.has("administrator"):
            raise AccessDeniedError(f"{actor.id} may not create accounts: the administrator role is needed")
        user = USERS.user(conn, user_id)
        if actor is not None and actor.agency_id != user.agency_id and _agency_has_accounts(conn, user.agency_id):
            # Another agency's first account may be set up by any administrator; after that, its own.
            raise AccessDeniedError(f"{actor.id} may not create accounts for another agency")
        problems = password_problems(password, password_context(user))
        if problems:
            raise InvalidDataError("the password is not acceptable", problems)
        if conn.execute(select(accounts.c.user_id).where(accounts.c.user_id == user_id)).first() is not None:
            raise InvalidStateError(f"user '{user_id}' already has an account")
        secret = pyotp.random_base32() if privileged(user) else None
        conn.execute(
            insert(accounts).values(
                user_id=user_id,
                password_hash=_hasher().hash(_normalize(password)),
                totp_secret=secret,
                pending_totp_secret=None,
                failed_attempts=0,
                locked_until=None,
                created_at=now,
                password_changed_at=now,
            )
        )
        _audit(control, conn, "account-created", actor.id if actor else "system", user_id, user.agency_id)
    return NewAccount(user_id, secret)


def change_password(control: Control, user_id: str, current: str, new: str) -> None:
    """A user changes their own password, proving the current one."""
    authenticate(control, user_id, current, None, check_totp=False)
    with control.store.transaction() as conn:
        user = USERS.user(conn, user_id)
        problems = password_problems(new, password_context(user))
        if problems:
            raise InvalidDataError("the password is not acceptable", problems)
        conn.execute(
            update(accounts)
            .where(accounts.c.user_id == user_id)
            .values(password_hash=_hasher().hash(_normalize(new)), password_changed_at=control.trail.clock())
        )
        _audit(control, conn, "password-changed", user_id, user_id, user.agency_id)


def _utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; they were stored in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else _utc(value)


SIGN_IN_FAILED = "sign-in failed: check the user name, password and one-time code"
ENROLMENT_REQUIRED = (
    "sign-in refused: your roles need a one-time code and your account has no authenticator yet; "
    "enrol one first (in the browser: /account/mfa/enrol)"
)
ALREADY_ENROLLED = "the account has an authenticator now: sign in with your one-time code"


def authenticate(control: Control, user_id: str, password: str, totp_code: str | None, check_totp: bool = True) -> User:
    """The user, if the password (and for privileged roles the TOTP code) is right; throttled.

    After MAX_FAILURES failures the account is locked for LOCKOUT; every failure and success is audited.
    The error never says which part was wrong. An account pending enrolment is refused (ENROLMENT_REQUIRED)
    even with the right password: it may only `sign_in_to_enrol`. With check_totp=False only the password
    is proved (to change it), never to open a session.
    """
    return _sign_in(control, user_id, password, totp_code, "session" if check_totp else "password")


def sign_in_to_enrol(control: Control, user_id: str, password: str) -> User:
    """The user, signed in with the password alone for nothing but enrolling an authenticator.

    Only for an account without an active TOTP secret: a password alone never replaces a second factor, and
    for an account with one this fails like a wrong password. Throttled and audited like any sign-in.
    """
    return _sign_in(control, user_id, password, None, "enrolment")


TOTP_PERIOD = 30  # seconds (RFC 6238's default, which authenticator apps use)
TOTP_DRIFT = 1  # steps either side of now accepted, for clock drift and typing time


def totp_step(secret: str, code: str, now: dt.datetime, last_step: int | None) -> int | None:
    """The time step of the code if it is valid now and later than the last code accepted; else None.

    A code is accepted once (NIST SP 800-63B 5.1.4.2): the caller records the step it returns, and
    neither that code nor an earlier one works again.
    """
    code = re.sub(r"\s", "", code)
    if not TOTP_CODE.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret, interval=TOTP_PERIOD)
    current = int(now.timestamp()) // TOTP_PERIOD
    for step in range(current - TOTP_DRIFT, current + TOTP_DRIFT + 1):
        if (last_step is None or step > last_step) and hmac.compare_digest(totp.at(step * TOTP_PERIOD), code):
            return step
    return None


def _sign_in(control: Control, user_id: str, password: str, totp_code: str | None, purpose: str) -> User:
    now = control.trail.clock()
    failure: str | None = None
    user: User | None = None
    with control.store.transaction() as conn:
        row = conn.execute(select(accounts).where(accounts.c.user_id == user_id)).first()
        if row is None:
            _hasher().hash("timing-equalizer")  # as slow as a real check, so user names cannot be probed
            _audit(control, conn, "sign-in-failed", "anonymous", "unknown", outcome="failure")
            failure = SIGN_IN_FAILED
        else:
            user = USERS.user(conn, user_id)
            locked_until = _aware(row.locked_until)
            ok = False
            refused: str | None = None  # the password was right, yet this sign-in is not allowed
            accepted_step: int | None = None  # the time step of the one-time code accepted
            if locked_until is not None and locked_until > now:
                failure = "sign-in failed: the account is locked after repeated failures; try again later"
            else:
                try:
                    ok = _hasher().verify(row.password_hash, _normalize(password[: MAX_LENGTH * 4]))
                except (VerificationError, InvalidHashError):
                    ok = False
                if ok and purpose == "session" and row.totp_secret:
                    accepted_step = totp_step(row.totp_secret, totp_code or "", now, row.totp_last_step)
                    ok = accepted_step is not None
                if ok and purpose == "enrolment" and row.totp_secret:
                    # A password alone never replaces a second factor; and, to say nothing of whether the
                    # password was right, this fails (and counts) like a wrong one.
                    ok = False
                if not ok:
                    failure = SIGN_IN_FAILED
                elif purpose == "session" and _pending_enrolment(user, row):
                    failure = refused = ENROLMENT_REQUIRED
            if refused is not None:
                # The right password, refused only for want of a second factor: not a guess, so nothing is counted.
                _audit(
                    control,
                    conn,
                    "sign-in-failed",
                    "anonymous",
                    user_id,
                    user.agency_id,
                    {"reason": "totp-enrolment-required"},
                    "failure",
                )
            elif failure is None:
                values: dict[str, Any] = {"failed_attempts": 0, "locked_until": None}
                if accepted_step is not None:
                    values["totp_last_step"] = accepted_step
                if _hasher().check_needs_rehash(row.password_hash):
                    values["password_hash"] = _hasher().hash(_normalize(password))
                conn.execute(update(accounts).where(accounts.c.user_id == user_id).values(**values))
                details = {"scope": "totp-enrolment"} if purpose == "enrolment" else None
                _audit(control, conn, "signed-in", user_id, user_id, user.agency_id, details)
            else:
                attempts = int(row.failed_attempts) + (0 if locked_until and locked_until > now else 1)
                lock = now + LOCKOUT if attempts >= MAX_FAILURES else locked_until
                conn.execute(
                    update(accounts)
                    .where(accounts.c.user_id == user_id)
                    .values(failed_attempts=0 if lock and lock > now else attempts, locked_until=lock)
                )
                _audit(
                    control,
                    conn,
                    "sign-in-failed",
                    "anonymous",
                    user_id,
                    user.agency_id,
                    {"locked": bool(lock and lock > now)},
                    "failure",
                )
    if failure is not None or user is None:
        raise AccessDeniedError(failure or SIGN_IN_FAILED)
    return user


def totp_secret(control: Control, user_id: str) -> str | None:
    """The enrolled TOTP secret (for the demo's printed accounts and for tests)."""
    with control.store.transaction() as conn:
        secret = _account(conn, user_id).totp_secret
    return str(secret) if secret else None


def has_totp(control: Control, user_id: str) -> bool:
    """Whether the account asks for a one-time code at sign-in (without handing out the secret)."""
    with control.store.transaction() as conn:
        return bool(_account(conn, user_id).totp_secret)


def enrolment_required(control: Control, user_id: str) -> bool:
    """Whether the account holds a privileged role without an active TOTP secret (pending enrolment)."""
    with control.store.transaction() as conn:
        row = _account(conn, user_id)
        return _pending_enrolment(USERS.user(conn, user_id), row)


def pending_totp(control: Control, user_id: str) -> str | None:
    """The secret of an enrolment begun and not yet confirmed, to show its owner again until they confirm it."""
    with control.store.transaction() as conn:
        secret = _account(conn, user_id).pending_totp_secret
    return str(secret) if secret else None


def begin_totp(control: Control, user_id: str) -> str:
    """A new TOTP secret for the account's authenticator, kept pending until `confirm_totp` proves it was added.

    The active secret (if any) keeps working meanwhile; a new call replaces the pending secret.
    Callers have signed the user in (a session, or `sign_in_to_enrol`).
    """
    secret = pyotp.random_base32()
    with control.store.transaction() as conn:
        _account(conn, user_id)
        user = USERS.user(conn, user_id)
        conn.execute(update(accounts).where(accounts.c.user_id == user_id).values(pending_totp_secret=secret))
        _audit(control, conn, "totp-enrolment-started", user_id, user_id, user.agency_id)
    return secret


TOTP_CODE = re.compile(r"\d{6}")


def confirm_totp(control: Control, user_id: str, code: str) -> None:
    """Make the pending secret the active one, if the code comes from it; a wrong code changes nothing.

    From then on sign-in asks for a code from this authenticator (any earlier one stops working).
    """
    code = re.sub(r"\s", "", code)
    if not TOTP_CODE.fullmatch(code):
        raise InvalidDataError(
            "the one-time code is not acceptable", [Problem("code", "enter the 6 digits your authenticator app shows")]
        )
    now = control.trail.clock()
    wrong = False
    with control.store.transaction() as conn:
        row = _account(conn, user_id)
        user = USERS.user(conn, user_id)
        pending = row.pending_totp_secret
        if not pending:
            raise InvalidStateError("no authenticator enrolment is in progress: start one first")
        step = totp_step(pending, code, now, None)
        if step is None:
            wrong = True
            _audit(control, conn, "totp-enrolment-failed", user_id, user_id, user.agency_id, outcome="failure")
        else:
            done = conn.execute(
                update(accounts)
                .where(accounts.c.user_id == user_id, accounts.c.pending_totp_secret == pending)
                .values(totp_secret=pending, pending_totp_secret=None, totp_last_step=step)
            )
            if done.rowcount != 1:  # another enrolment began meanwhile: its secret is the one to confirm
                raise InvalidStateError("the enrolment changed meanwhile: confirm the newest secret")
            _audit(
                control, conn, "totp-enrolled", user_id, user_id, user.agency_id, {"replaced": bool(row.totp_secret)}
            )
    if wrong:
        raise InvalidDataError(
            "the one-time code does not match",
            [
                Problem(
                    "code",
                    "this code does not come from the new secret: add the secret to your app, enter the code "
                    "it shows now, and check that the device's clock is right",
                )
            ],
        )
    _forget_tokens_of(user_id)  # its tokens get back their privileged roles at once


@dataclass(frozen=True)
class IssuedToken:
    """A new API token: the secret is shown once and only its hash is kept."""

    id: str
    secret: str
    agency_id: str
    roles: frozenset[str]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def issue_token(
    control: Control, actor_id: str, roles: set[str], label: str, expires_in_days: int | None = 90
) -> IssuedToken:
    """A bearer token for the actor's own machine client, limited to some of the actor's roles."""
    if not roles:
        raise InvalidDataError("no roles", [Problem("roles", "name at least one role for the token")])
    if not label.strip():
        raise InvalidDataError("no label", [Problem("label", "say what the token is for")])
    now = control.trail.clock()
    with control.store.transaction() as conn:
        actor = USERS.user(conn, actor_id)
        extra = sorted(roles - actor.roles)
        if extra:
            raise AccessDeniedError(f"{actor.id} may not issue a token with roles they do not hold: {extra}")
        needing = sorted(roles & PRIVILEGED_ROLES)
        account = conn.execute(select(accounts.c.totp_secret).where(accounts.c.user_id == actor.id)).first()
        if needing and _pending_enrolment(actor, account):
            raise AccessDeniedError(
                f"{actor.id} may not issue a token with the roles {needing} before enrolling an authenticator "
                "for one-time codes"
            )
        token_id = f"t-{secrets.token_hex(6)}"
        secret = f"{TOKEN_PREFIX}{secrets.token_urlsafe(32)}"
        conn.execute(
            insert(api_tokens).values(
                id=token_id,
                token_sha256=_digest(secret),
                user_id=actor.id,
                agency_id=actor.agency_id,
                roles=",".join(sorted(roles)),
                label=label[:200],
                created_at=now,
                expires_at=now + dt.timedelta(days=expires_in_days) if expires_in_days else None,
                revoked_at=None,
            )
        )
        _audit(
            control, conn, "api-token-issued", actor.id, token_id, actor.agency_id, {"roles": ",".join(sorted(roles))}
        )
    return IssuedToken(token_id, secret, actor.agency_id, frozenset(roles))


def revoke_token(control: Control, actor_id: str, token_id: str) -> None:
    """Revoke a token (its owner, or an administrator of the same agency)."""
    with control.store.transaction() as conn:
        actor = USERS.user(conn, actor_id)
        row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).first()
        if row is None:
            raise NotFoundError(f"no API token '{token_id}'")
        if row.user_id != actor.id and not (actor.has("administrator") and actor.agency_id == row.agency_id):
            raise AccessDeniedError(f"{actor.id} may not revoke this token")
        conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(revoked_at=control.trail.clock()))
        _token_cache.pop(row.token_sha256, None)
        _audit(control, conn, "api-token-revoked", actor.id, token_id, actor.agency_id)


@dataclass(frozen=True)
class TokenInfo:
    """What is known of an issued token: never its secret nor its hash."""

    id: str
    label: str
    roles: frozenset[str]
    created: dt.datetime
    expires: dt.datetime | None
    revoked: dt.datetime | None
    active: bool  # neither revoked nor expired when listed


def list_tokens(control: Control, actor_id: str) -> list[TokenInfo]:
    """The actor's own API tokens, newest first, revoked and expired ones included."""
    now = control.trail.clock()
    with control.store.transaction() as conn:
        actor = USERS.user(conn, actor_id)
        rows = conn.execute(
            select(
                api_tokens.c.id,
                api_tokens.c.label,
                api_tokens.c.roles,
                api_tokens.c.created_at,
                api_tokens.c.expires_at,
                api_tokens.c.revoked_at,
            )
            .where(api_tokens.c.user_id == actor.id)
            .order_by(api_tokens.c.created_at.desc(), api_tokens.c.id)
        ).all()
    found = []
    for row in rows:
        expires, revoked = _aware(row.expires_at), _aware(row.revoked_at)
        active = revoked is None and (expires is None or expires > now)
        found.append(
            TokenInfo(
                row.id, row.label, frozenset(row.roles.split(",")), _utc(row.created_at), expires, revoked, active
            )
        )
    return found


# Verified tokens, briefly: a machine client's every call need not open a store transaction.
# Revoking a token clears this process's cache at once; other processes see it within TOKEN_CACHE_TTL.
TOKEN_CACHE_TTL = dt.timedelta(seconds=5)
_token_cache: dict[str, tuple[dt.datetime, User]] = {}


def cached_user_for_token(control: Control, secret: str) -> User | None:
    """The user of a token this process checked less than TOKEN_CACHE_TTL ago, without touching the store.

    None when the token is not in the cache (or its entry is stale): `user_for_token` then decides.
    """
    if not secret.startswith(TOKEN_PREFIX):
        return None
    cached = _token_cache.get(_digest(secret))
    if cached is not None and control.trail.clock() - cached[0] < TOKEN_CACHE_TTL:
        return cached[1]
    return None


def user_for_token(control: Control, secret: str) -> User:
    """The user a bearer token acts as, with only the token's roles that the user still holds."""
    if not secret.startswith(TOKEN_PREFIX):
        raise AccessDeniedError("invalid API token")
    now = control.trail.clock()
    digest = _digest(secret)
    cached = _token_cache.get(digest)
    if cached is not None and now - cached[0] < TOKEN_CACHE_TTL:
        return cached[1]
    user = _user_for_digest(control, digest, now)
    if len(_token_cache) > 10_000:
        _token_cache.clear()
    _token_cache[digest] = (now, user)
    return user


def _forget_tokens_of(user_id: str) -> None:
    for digest, (_, cached) in list(_token_cache.items()):
        if cached.id == user_id:
            _token_cache.pop(digest, None)


def _user_for_digest(control: Control, digest: str, now: dt.datetime) -> User:
    with control.store.transaction() as conn:
        row = conn.execute(select(api_tokens).where(api_tokens.c.token_sha256 == digest)).first()
        if row is None or not hmac.compare_digest(row.token_sha256, digest):
            raise AccessDeniedError("invalid API token")
        expires = _aware(row.expires_at)
        if row.revoked_at is not None or (expires is not None and expires <= now):
            raise AccessDeniedError("the API token is revoked or expired")
        user = USERS.user(conn, row.user_id)
        account = conn.execute(select(accounts.c.totp_secret).where(accounts.c.user_id == user.id)).first()
    if user.agency_id != row.agency_id:
        raise AccessDeniedError("the API token's agency no longer matches its user")
    roles = user.roles & frozenset(row.roles.split(","))
    if _pending_enrolment(user, account):
        roles -= PRIVILEGED_ROLES  # until its user enrols an authenticator
    return User(user.id, user.name, user.agency_id, roles)


def user(control: Control, user_id: str) -> User:
    """The user a signed-in session acts as, by id; refused while their account is pending enrolment.

    Checked on every page, so a privileged role granted during a session ends that session until the
    user enrols an authenticator.
    """
    with control.store.transaction() as conn:
        found = USERS.user(conn, user_id)
        account = conn.execute(select(accounts.c.totp_secret).where(accounts.c.user_id == user_id)).first()
    if _pending_enrolment(found, account):
        raise AccessDeniedError(ENROLMENT_REQUIRED)
    return found


def enrolling_user(control: Control, user_id: str) -> User:
    """The user of a session opened by `sign_in_to_enrol`, as long as their account has no active TOTP secret."""
    with control.store.transaction() as conn:
        found = USERS.user(conn, user_id)
        if _account(conn, user_id).totp_secret:
            raise AccessDeniedError(ALREADY_ENROLLED)
    return found


def reset_password(control: Control, admin_id: str, user_id: str, new_password: str) -> None:
    """An administrator of the user's agency sets a new password for them, without knowing the old one.

    Nothing else is forced: no change at the next sign-in, the second factor and the API tokens stay as they
    are. The lockout after failed sign-ins is lifted, since it protected the old password.
    """
    with control.store.transaction() as conn:
        admin = USERS.user(conn, admin_id)
        if not admin.has("administrator"):
            raise AccessDeniedError(f"{admin.id} may not reset passwords: the administrator role is needed")
        target = USERS.user(conn, user_id)
        if target.agency_id != admin.agency_id:
            raise AccessDeniedError(f"{admin.id} may not reset passwords in another agency")
        if target.id == admin.id:
            raise AccessDeniedError(
                f"{admin.id} may not reset their own password: change it by proving the current one"
            )
        _account(conn, user_id)
        problems = password_problems(new_password, password_context(target))
        if problems:
            raise InvalidDataError("the password is not acceptable", problems)
        conn.execute(
            update(accounts)
            .where(accounts.c.user_id == user_id)
            .values(
                password_hash=_hasher().hash(_normalize(new_password)),
                password_changed_at=control.trail.clock(),
                failed_attempts=0,
                locked_until=None,
            )
        )
        _audit(control, conn, "password-reset-completed", admin.id, user_id, target.agency_id)


# Idempotency keys: a create sent twice with the same key returns the first response.


@dataclass(frozen=True)
class RememberedResponse:
    """A response kept for an idempotency key."""

    fingerprint: str
    status_code: int
    body: str


def remembered(control: Control, principal: str, key: str) -> RememberedResponse | None:
    """The response stored for this principal's key, if any."""
    with control.store.transaction() as conn:
        row = conn.execute(
            select(idempotency_keys).where(idempotency_keys.c.principal == principal, idempotency_keys.c.key == key)
        ).first()
    return RememberedResponse(row.fingerprint, int(row.status_code), row.body) if row else None


def remember(control: Control, principal: str, key: str, fingerprint: str, status_code: int, body: str) -> None:
    """Keep a create's response for its idempotency key (the first one wins)."""
    with control.store.transaction() as conn:
        conn.execute(
            delete(idempotency_keys).where(
                idempotency_keys.c.principal == principal,
                idempotency_keys.c.key == key,
                idempotency_keys.c.fingerprint == fingerprint,
            )
        )
        conn.execute(
            insert(idempotency_keys).values(
                principal=principal,
                key=key,
                fingerprint=fingerprint,
                status_code=status_code,
                body=body,
                created_at=control.trail.clock(),
            )
        )
