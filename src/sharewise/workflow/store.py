"""Agencies, users and sharing requests in the store."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from sharewise.domain.errors import InvalidStateError, NotFoundError
from sharewise.store.schema import agencies, request_steps, sharing_requests, user_roles, users
from sharewise.workflow.access import User


@dataclass(frozen=True)
class Step:
    """One step taken on a request."""

    step: str
    decision: str
    actor: str
    agency_id: str
    comments: str | None
    at: dt.datetime


@dataclass(frozen=True)
class SharingRequestRecord:
    """A sharing request with its current state and history."""

    id: str
    agency_id: str
    recipient_agency_id: str | None
    title: str
    use_case: str
    vision: str | None
    request: dict[str, Any]
    state: str
    created_by: str
    created_at: dt.datetime
    determination: dict[str, Any] | None
    agreement_id: str | None
    version: int
    steps: tuple[Step, ...]
    initiative_id: str | None = None

    @property
    def agencies(self) -> set[str]:
        return {self.agency_id, *([self.recipient_agency_id] if self.recipient_agency_id else [])}


class SqlWorkflowStore:
    """Reads and writes workflow records inside the caller's transaction."""

    def add_agency(self, conn: Connection, agency_id: str, name: str) -> None:
        conn.execute(insert(agencies).values(id=agency_id, name=name))

    def agency_exists(self, conn: Connection, agency_id: str) -> bool:
        return conn.execute(select(agencies.c.id).where(agencies.c.id == agency_id)).first() is not None

    def add_user(self, conn: Connection, user: User) -> None:
        conn.execute(insert(users).values(id=user.id, name=user.name, agency_id=user.agency_id))
        for role in sorted(user.roles):
            conn.execute(insert(user_roles).values(user_id=user.id, role=role))

    def user(self, conn: Connection, user_id: str) -> User:
        row = conn.execute(select(users).where(users.c.id == user_id)).first()
        if row is None:
            raise NotFoundError(f"no user '{user_id}'")
        roles = frozenset(
            r.role for r in conn.execute(select(user_roles.c.role).where(user_roles.c.user_id == user_id))
        )
        return User(row.id, row.name, row.agency_id, roles)

    def users(self, conn: Connection) -> list[User]:
        return [self.user(conn, r.id) for r in conn.execute(select(users.c.id).order_by(users.c.id))]

    def create(self, conn: Connection, record: SharingRequestRecord) -> None:
        conn.execute(
            insert(sharing_requests).values(
                id=record.id,
                agency_id=record.agency_id,
                recipient_agency_id=record.recipient_agency_id,
                title=record.title,
                use_case=record.use_case,
                vision=record.vision,
                request=json.dumps(record.request, default=str),  # dates as ISO text
                state=record.state,
                created_by=record.created_by,
                created_at=record.created_at,
                determination=None,
                agreement_id=None,
                version=1,
                initiative_id=record.initiative_id,
            )
        )

    def get(self, conn: Connection, request_id: str, for_update: bool = False) -> SharingRequestRecord:
        query = select(sharing_requests).where(sharing_requests.c.id == request_id)
        row = conn.execute(query.with_for_update() if for_update else query).first()
        if row is None:
            raise NotFoundError(f"no sharing request '{request_id}'")
        steps = conn.execute(
            select(request_steps).where(request_steps.c.request_id == request_id).order_by(request_steps.c.id)
        ).all()
        return _record(
            row,
            tuple(
                Step(
                    s.step,
                    s.decision,
                    s.actor,
                    s.agency_id,
                    s.comments,
                    s.at if s.at.tzinfo else s.at.replace(tzinfo=dt.UTC),
                )
                for s in steps
            ),
        )

    def list(
        self,
        conn: Connection,
        states: tuple[str, ...] | None = None,
        agency_ids: set[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[SharingRequestRecord]:
        """Requests in one query (without their steps; `get` one for its history), oldest first."""
        query = select(sharing_requests).order_by(sharing_requests.c.created_at, sharing_requests.c.id)
        if states:
            query = query.where(sharing_requests.c.state.in_(states))
        if agency_ids is not None:
            query = query.where(
                or_(
                    sharing_requests.c.agency_id.in_(agency_ids), sharing_requests.c.recipient_agency_id.in_(agency_ids)
                )
            )
        if limit is not None:
            query = query.limit(limit).offset(offset)
        return [_record(row, ()) for row in conn.execute(query)]

    def add_step(self, conn: Connection, request_id: str, step: Step) -> None:
        conn.execute(
            insert(request_steps).values(
                request_id=request_id,
                step=step.step,
                decision=step.decision,
                actor=step.actor,
                agency_id=step.agency_id,
                comments=step.comments,
                at=step.at,
            )
        )

    def move(self, conn: Connection, record: SharingRequestRecord, to: str, **values: Any) -> None:
        """Change state, failing if someone else changed the request meanwhile."""
        if "determination" in values and values["determination"] is not None:
            values["determination"] = json.dumps(values["determination"])
        if "request" in values:
            values["request"] = json.dumps(values["request"], default=str)
        result = conn.execute(
            update(sharing_requests)
            .where(sharing_requests.c.id == record.id, sharing_requests.c.version == record.version)
            .values(state=to, version=record.version + 1, **values)
        )
        if result.rowcount != 1:
            raise InvalidStateError(f"request '{record.id}' was changed by someone else; reload and try again")


def _record(row: Any, steps: tuple[Step, ...]) -> SharingRequestRecord:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=dt.UTC)
    return SharingRequestRecord(
        id=row.id,
        agency_id=row.agency_id,
        recipient_agency_id=row.recipient_agency_id,
        title=row.title,
        use_case=row.use_case,
        vision=row.vision,
        request=json.loads(row.request),
        state=row.state,
        created_by=row.created_by,
        created_at=created,
        determination=json.loads(row.determination) if row.determination else None,
        agreement_id=row.agreement_id,
        version=int(row.version),
        steps=steps,
        initiative_id=row.initiative_id,
    )
