"""Who may act on consents, shares and accountings: one policy for the CLI, the API and the web.

While the directory has no users (a fresh embedded install used by one person), actions are
recorded under the acting name without a role check; once anyone is registered, every actor
must be a registered user holding one of the roles below.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from sharewise.store.schema import users
from sharewise.workflow.access import User, require_any_role
from sharewise.workflow.store import SqlWorkflowStore

CONSENT_WRITERS = ("requester", "data_steward")
CONSENT_READERS = (*CONSENT_WRITERS, "auditor")
IDENTIFIER_READERS = ("data_steward",)
ACCOUNTING_READERS = ("data_steward", "auditor")
SHARE_RUNNERS = ("data_steward",)


def authorize(conn: Connection, actor_id: str, roles: tuple[str, ...], action: str) -> User | None:
    """The acting user if they hold one of the roles (None in single-user mode); AccessDeniedError otherwise."""
    if int(conn.execute(select(func.count()).select_from(users)).scalar_one()) == 0:
        return None
    user = SqlWorkflowStore().user(conn, actor_id)
    require_any_role(user, roles, action)
    return user
