"""Who may act on consents, shares and accountings: one policy for the CLI, the API and the web.

While the directory has no users (a fresh embedded install used by one person), actions are
recorded under the acting name without a role check; once anyone is registered, every actor
must be a registered user holding one of the roles below.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from sharewise.domain.errors import AccessDeniedError
from sharewise.store.schema import users
from sharewise.workflow.access import User, require_any_role
from sharewise.workflow.process import ROLES
from sharewise.workflow.store import SqlWorkflowStore

CONSENT_WRITERS = ("requester", "data_steward")
CONSENT_READERS = (*CONSENT_WRITERS, "auditor")
IDENTIFIER_READERS = ("data_steward",)
ACCOUNTING_READERS = ("data_steward", "auditor")
SHARE_RUNNERS = ("data_steward",)
AGREEMENT_READERS = ("requester", "legal_reviewer", "approver", "administrator", "auditor", "data_steward")
INITIATIVE_READERS = ROLES  # every role of a participating agency


def single_user(conn: Connection) -> bool:
    """True while the directory has no users: a fresh embedded install used by one person."""
    return int(conn.execute(select(func.count()).select_from(users)).scalar_one()) == 0


def authorize(conn: Connection, actor_id: str | None, roles: tuple[str, ...], action: str) -> User | None:
    """The acting user if they hold one of the roles (None in single-user mode); AccessDeniedError otherwise."""
    if single_user(conn):
        return None
    if not actor_id:
        raise AccessDeniedError(
            f"who is acting? users are registered, so to {action} give --as USER or set SHAREWISE_USER"
        )
    user = SqlWorkflowStore().user(conn, actor_id)
    require_any_role(user, roles, action)
    return user
