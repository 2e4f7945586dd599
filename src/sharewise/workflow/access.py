"""Who may do what: roles within an agency, and separation of duties."""

from __future__ import annotations

from dataclasses import dataclass

from sharewise.domain.errors import AccessDeniedError


@dataclass(frozen=True)
class User:
    """A person acting in sharewise, with their agency and roles."""

    id: str
    name: str
    agency_id: str
    roles: frozenset[str]

    def has(self, role: str) -> bool:
        return role in self.roles


def require_role(user: User, role: str, action: str) -> None:
    """Refuse unless the user holds the role."""
    if not user.has(role):
        raise AccessDeniedError(f"{user.id} may not {action}: the {role} role is needed")


def require_any_role(user: User, roles: tuple[str, ...], action: str) -> None:
    """Refuse unless the user holds one of the roles."""
    if not any(user.has(r) for r in roles):
        raise AccessDeniedError(f"{user.id} may not {action}: one of the roles {', '.join(roles)} is needed")


def require_agency(user: User, agency_ids: set[str], action: str) -> None:
    """Refuse unless the user belongs to one of the agencies involved."""
    if user.agency_id not in agency_ids:
        raise AccessDeniedError(f"{user.id} may not {action}: their agency is not a party to this request")


def require_not_requester(user: User, requester_id: str, action: str) -> None:
    """Separation of duties: no one reviews or approves their own request."""
    if user.id == requester_id:
        raise AccessDeniedError(f"{user.id} may not {action} their own request (separation of duties)")
