"""Initiative use cases: create, show, list, and track the toolkit's steps; each audited."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import insert, select, update

from sharewise.domain.errors import AccessDeniedError, InvalidDataError, NotFoundError, Problem
from sharewise.domain.events import AuditEvent
from sharewise.services.authorization import INITIATIVE_READERS, authorize
from sharewise.store.schema import initiative_stakeholders, initiative_steps, initiatives
from sharewise.wiring import Control
from sharewise.workflow.access import User
from sharewise.workflow.initiatives import STAKEHOLDER_GROUPS, STEP_IDS, STEP_STATUSES, STEPS
from sharewise.workflow.store import SqlWorkflowStore


class Sponsor(BaseModel):
    """A leadership sponsor."""

    model_config = ConfigDict(extra="forbid")
    name: str
    agency: str
    title: str | None = None


class Stakeholder(BaseModel):
    """A person or organization in one of the toolkit's stakeholder groups."""

    model_config = ConfigDict(extra="forbid")
    group: str
    name: str
    organization: str | None = None

    @field_validator("group")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in STAKEHOLDER_GROUPS:
            raise ValueError(f"unknown group; use one of {', '.join(STAKEHOLDER_GROUPS)}")
        return value


class InitiativeProposal(BaseModel):
    """What an initiative file holds."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=3)
    vision: str = Field(min_length=10)
    agencies: list[str] = Field(min_length=1)
    sponsors: list[Sponsor] = Field(min_length=1)
    stakeholders: list[Stakeholder] = []


@dataclass
class StepState:
    step: str
    title: str
    owner: str | None
    due: dt.date | None
    status: str
    done_on: dt.date | None


@dataclass
class Initiative:
    id: str
    name: str
    vision: str
    agencies: list[str]
    sponsors: list[dict[str, Any]]
    stakeholders: list[Stakeholder] = field(default_factory=list)
    steps: list[StepState] = field(default_factory=list)


def parse_proposal(data: Any, label: str) -> InitiativeProposal:
    try:
        return InitiativeProposal.model_validate(data)
    except ValidationError as exc:
        raise InvalidDataError(
            "invalid initiative", [Problem(f"{label}: {'.'.join(map(str, e['loc']))}", e["msg"]) for e in exc.errors()]
        ) from exc


def create(control: Control, actor_id: str, proposal: InitiativeProposal) -> str:
    """Create an initiative with its stakeholders and the toolkit's ten steps, not started."""
    workflow = SqlWorkflowStore()
    now = control.trail.clock()
    with control.store.transaction() as conn:
        actor = workflow.user(conn, actor_id)
        if not (actor.has("requester") or actor.has("administrator")):
            raise AccessDeniedError(f"{actor.id} may not create initiatives: requester or administrator role needed")
        unknown = [a for a in proposal.agencies if not workflow.agency_exists(conn, a)]
        if unknown:
            raise InvalidDataError("unknown agencies", [Problem("agencies", f"no agency '{a}'") for a in unknown])
        if actor.agency_id not in proposal.agencies:
            raise AccessDeniedError(f"{actor.id}'s agency must be one of the participating agencies")
        initiative_id = f"i-{now.year}-{secrets.token_hex(3)}"
        conn.execute(
            insert(initiatives).values(
                id=initiative_id,
                name=proposal.name,
                vision=proposal.vision,
                agencies=json.dumps(proposal.agencies),
                sponsors=json.dumps([s.model_dump() for s in proposal.sponsors]),
                created_by=actor.id,
                created_at=now,
            )
        )
        for s in proposal.stakeholders:
            conn.execute(
                insert(initiative_stakeholders).values(
                    initiative_id=initiative_id, group=s.group, name=s.name, organization=s.organization
                )
            )
        for position, step in enumerate(STEP_IDS):
            conn.execute(
                insert(initiative_steps).values(
                    initiative_id=initiative_id, step=step, position=position, status="not_started"
                )
            )
        control.trail.append(
            conn,
            AuditEvent(
                action="initiative-created",
                actor=actor.id,
                agency=actor.agency_id,
                subject_type="initiative",
                subject_id=initiative_id,
            ),
        )
    return initiative_id


def _sees_all(user: User | None) -> bool:
    return user is None or user.has("auditor") or user.has("administrator")


def get(control: Control, actor_id: str | None, initiative_id: str) -> Initiative:
    """An initiative, for people of its participating agencies, auditors and administrators."""
    titles = dict(STEPS)
    with control.store.transaction() as conn:
        user = authorize(conn, actor_id, INITIATIVE_READERS, "read initiatives")
        row = conn.execute(select(initiatives).where(initiatives.c.id == initiative_id)).first()
        if row is None:
            raise NotFoundError(f"no initiative '{initiative_id}'")
        if user is not None and not _sees_all(user) and user.agency_id not in json.loads(row.agencies):
            raise AccessDeniedError(
                f"{user.id} may not see initiative '{initiative_id}': their agency does not take part"
            )
        result = Initiative(row.id, row.name, row.vision, json.loads(row.agencies), json.loads(row.sponsors))
        for s in conn.execute(
            select(initiative_stakeholders).where(initiative_stakeholders.c.initiative_id == initiative_id)
        ):
            result.stakeholders.append(Stakeholder(group=s.group, name=s.name, organization=s.organization))
        for st in conn.execute(
            select(initiative_steps)
            .where(initiative_steps.c.initiative_id == initiative_id)
            .order_by(initiative_steps.c.position)
        ):
            result.steps.append(StepState(st.step, titles[st.step], st.owner, st.due, st.status, st.done_on))
    return result


def list_all(control: Control, actor_id: str | None) -> list[tuple[str, str]]:
    """The initiatives the person's agency takes part in (auditors and administrators: all)."""
    with control.store.transaction() as conn:
        user = authorize(conn, actor_id, INITIATIVE_READERS, "read initiatives")
        rows = conn.execute(
            select(initiatives.c.id, initiatives.c.name, initiatives.c.agencies).order_by(initiatives.c.created_at)
        )
        return [
            (r.id, r.name) for r in rows if user is None or _sees_all(user) or user.agency_id in json.loads(r.agencies)
        ]


def update_step(
    control: Control,
    actor_id: str,
    initiative_id: str,
    step: str,
    owner: str | None = None,
    due: dt.date | None = None,
    status: str | None = None,
) -> None:
    """Assign an owner and a date to a step, or move its status; people of participating agencies only."""
    if step not in STEP_IDS:
        raise InvalidDataError("unknown step", [Problem("step", f"use one of {', '.join(STEP_IDS)}")])
    if status is not None and status not in STEP_STATUSES:
        raise InvalidDataError("unknown status", [Problem("--status", f"use one of {', '.join(STEP_STATUSES)}")])
    if owner is None and due is None and status is None:
        raise InvalidDataError("nothing to change", [Problem("step", "give an owner, a due date or a status")])
    initiative = get(control, actor_id, initiative_id)
    workflow = SqlWorkflowStore()
    with control.store.transaction() as conn:
        actor = workflow.user(conn, actor_id)
        if actor.agency_id not in initiative.agencies:
            raise AccessDeniedError(f"{actor.id} is not in a participating agency")
        values: dict[str, Any] = {}
        if owner is not None:
            values["owner"] = owner
        if due is not None:
            values["due"] = due
        if status is not None:
            values["status"] = status
            values["done_on"] = control.trail.clock().date() if status == "done" else None
        conn.execute(
            update(initiative_steps)
            .where(initiative_steps.c.initiative_id == initiative_id, initiative_steps.c.step == step)
            .values(**values)
        )
        control.trail.append(
            conn,
            AuditEvent(
                action="initiative-step-updated",
                actor=actor.id,
                agency=actor.agency_id,
                subject_type="initiative",
                subject_id=initiative_id,
                details={"step": step, "status": status},
            ),
        )
