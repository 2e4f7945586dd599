"""The /api/v1 workflow routes: initiatives, a request's revision, execution and end, and the agreement lifecycle."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sharewise.api.context import AppContext
from sharewise.api.routes import (
    ANYONE,
    Access,
    Ctx,
    IdempotencyKey,
    Limit,
    Offset,
    Principal,
    _agreement_in_scope,
    _idempotent,
    _json,
    agreement_json,
    page,
    request_json,
    route,
)
from sharewise.services import agreement_registry
from sharewise.services import initiatives as initiative_service
from sharewise.services import workflow as workflow_service
from sharewise.workflow.access import User
from sharewise.workflow.initiatives import STAKEHOLDER_GROUPS, STEP_IDS, STEP_STATUSES


def _one_of(values: tuple[str, ...]) -> str:
    return "^(" + "|".join(values) + ")$"


NOT_BLANK = r"\S"  # at least one character that is not white space


# Initiatives -----------------------------------------------------------------------------------

INITIATIVE_CREATORS = Access(frozenset({"requester", "administrator"}))
# Anyone of a participating agency may read an initiative and move its steps; the service adds that
# auditors and administrators of any agency may read it.
INITIATIVE_READERS = Access(None, scoped=True, auditor_reads=True, administrator_reads=True)
INITIATIVE_WORKERS = Access(None, scoped=True)


class SponsorIn(BaseModel):
    """A leadership sponsor."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    agency: str = Field(min_length=1, max_length=40)
    title: str | None = Field(default=None, max_length=200)


class StakeholderIn(BaseModel):
    """A person or organization in one of the toolkit's stakeholder groups."""

    model_config = ConfigDict(extra="forbid")
    group: str = Field(pattern=_one_of(STAKEHOLDER_GROUPS), description="One of the toolkit's stakeholder groups.")
    name: str = Field(min_length=1, max_length=300)
    organization: str | None = Field(default=None, max_length=300)


class InitiativeIn(BaseModel):
    """A new initiative: its vision, the participating agencies (the caller's among them), sponsors, stakeholders."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=3, max_length=300)
    vision: str = Field(min_length=10, max_length=5000)
    agencies: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(min_length=1, max_length=50)
    sponsors: list[SponsorIn] = Field(min_length=1, max_length=50)
    stakeholders: list[StakeholderIn] = Field(default=[], max_length=200)


class StepIn(BaseModel):
    """A change to one of the toolkit's steps: its owner, its due date, its status (at least one)."""

    model_config = ConfigDict(extra="forbid")
    owner: str | None = Field(default=None, min_length=1, max_length=200)
    due: dt.date | None = None
    status: str | None = Field(default=None, pattern=_one_of(STEP_STATUSES))

    @model_validator(mode="after")
    def _something(self) -> StepIn:
        if self.owner is None and self.due is None and self.status is None:
            raise ValueError("give the owner, the due date or the status")
        return self


StepId = Annotated[str, Path(pattern=_one_of(STEP_IDS), description="One of the toolkit's ten steps.")]


def initiative_json(context: AppContext, user: User, initiative_id: str) -> dict[str, Any]:
    """An initiative with its sponsors, stakeholders and the ten steps in order."""
    found: dict[str, Any] = _json(initiative_service.get(context.api, user.id, initiative_id))
    return found


@route("POST", "/initiatives", INITIATIVE_CREATORS, tags=["initiatives"], status_code=201)
def create_initiative(
    body: InitiativeIn, context: Ctx, user: Principal, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Create an initiative of the caller's agency and others; its ten toolkit steps start as not started."""

    def create() -> dict[str, Any]:
        proposal = initiative_service.parse_proposal(body.model_dump(), "body")
        return initiative_json(context, user, initiative_service.create(context.api, user.id, proposal))

    return _idempotent(context, user, idempotency_key, body, "/initiatives", create)


@route("GET", "/initiatives", ANYONE, tags=["initiatives"])
def list_initiatives(context: Ctx, user: Principal, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """The initiatives the caller's agency takes part in (auditors and administrators: all)."""
    listed = initiative_service.list_all(context.api, user.id)
    return page([{"id": i, "name": name} for i, name in listed], limit, offset)


@route("GET", "/initiatives/{initiative_id}", INITIATIVE_READERS, tags=["initiatives"])
def show_initiative(initiative_id: str, context: Ctx, user: Principal) -> dict[str, Any]:
    """An initiative with its sponsors, stakeholders and the toolkit's ten steps."""
    return initiative_json(context, user, initiative_id)


@route("PATCH", "/initiatives/{initiative_id}/steps/{step}", INITIATIVE_WORKERS, tags=["initiatives"])
def update_initiative_step(
    initiative_id: str, step: StepId, body: StepIn, context: Ctx, user: Principal
) -> dict[str, Any]:
    """Assign an owner and a due date to one of the steps, or move its status (people of its agencies)."""
    initiative_service.update_step(context.api, user.id, initiative_id, step, body.owner, body.due, body.status)
    return initiative_json(context, user, initiative_id)


# A sharing request after its reviews ----------------------------------------------------------------


class RevisionIn(BaseModel):
    """A change to a draft (one returned by a reviewer or an approver): the disclosure, the use case, or both."""

    model_config = ConfigDict(extra="forbid")
    request: dict[str, Any] | None = Field(default=None, description="The disclosure in the contract's terms.")
    use_case: str | None = Field(default=None, min_length=1, max_length=5000, pattern=NOT_BLANK)

    @model_validator(mode="after")
    def _something(self) -> RevisionIn:
        if self.request is None and self.use_case is None:
            raise ValueError("give the request, the use case or both")
        return self


class ExecutionIn(BaseModel):
    """The signed agreement a request is shared under."""

    model_config = ConfigDict(extra="forbid")
    agreement_id: str = Field(min_length=1, max_length=40)


class EndIn(BaseModel):
    """How an active request ends, and why."""

    model_config = ConfigDict(extra="forbid")
    how: str = Field(pattern="^(terminated|expired)$")
    comments: str = Field(min_length=1, max_length=5000, pattern=NOT_BLANK)


REQUEST_REVISERS = Access(frozenset({"requester"}), scoped=True)
REQUEST_EXECUTORS = Access(frozenset({"approver", "administrator"}), scoped=True)


@route("POST", "/requests/{request_id}/revisions", REQUEST_REVISERS, tags=["requests"])
def revise_request(request_id: str, body: RevisionIn, context: Ctx, user: Principal) -> dict[str, Any]:
    """Revise a draft, for example after it was returned; submit it again with POST .../submission."""
    workflow_service.revise(context.api, context.law, user.id, request_id, body.request, body.use_case)
    return request_json(workflow_service.show(context.api, user.id, request_id))


@route("POST", "/requests/{request_id}/execution", REQUEST_EXECUTORS, tags=["requests"])
def execute_request_agreement(request_id: str, body: ExecutionIn, context: Ctx, user: Principal) -> dict[str, Any]:
    """Record that the request's agreement was signed by both parties: the request becomes active.

    The service refuses an unknown request or agreement (404), another agency's request (403), an
    agreement drafted for another request (422) and one not signed by both parties (409).
    """
    workflow_service.execute_agreement(context.api, user.id, request_id, body.agreement_id)
    return request_json(workflow_service.show(context.api, user.id, request_id))


@route("POST", "/requests/{request_id}/end", REQUEST_EXECUTORS, tags=["requests"])
def end_request(request_id: str, body: EndIn, context: Ctx, user: Principal) -> dict[str, Any]:
    """End an active request: terminated, or expired with its agreement."""
    workflow_service.end(context.api, user.id, request_id, body.how, body.comments)
    return request_json(workflow_service.show(context.api, user.id, request_id))


# The agreement lifecycle after signing --------------------------------------------------------------

AGREEMENT_KEEPERS = Access(frozenset({"approver", "administrator"}), scoped=True)
AGREEMENT_RENEWERS = Access(frozenset({"approver"}), scoped=True)


class AuthorizedUserIn(BaseModel):
    """A named person or a role that may use the information."""

    model_config = ConfigDict(extra="forbid")
    role: str = Field(min_length=1, max_length=200)
    name: str | None = Field(default=None, max_length=200)
    organization: str | None = Field(default=None, max_length=300)


class AmendmentIn(BaseModel):
    """Why the agreement is amended, and the new authorized users, the new end of term, or both."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=5000, pattern=NOT_BLANK)
    authorized_users: list[AuthorizedUserIn] | None = Field(default=None, max_length=500)
    term_end: dt.date | None = None

    @model_validator(mode="after")
    def _something(self) -> AmendmentIn:
        if self.authorized_users is None and self.term_end is None:
            raise ValueError("give the authorized users, the end of term or both")
        return self


class TerminationIn(BaseModel):
    """Why the agreement is terminated."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=5000, pattern=NOT_BLANK)


def _agreement(context: AppContext, user: User, agreement_id: str) -> dict[str, Any]:
    return agreement_json(agreement_registry.show(context.api, user.id, agreement_id), context.today())


@route("POST", "/agreements/{agreement_id}/activation", AGREEMENT_KEEPERS, tags=["agreements"])
def activate_agreement(agreement_id: str, context: Ctx, user: Principal) -> dict[str, Any]:
    """Put an agreement both parties signed into effect."""
    _agreement_in_scope(context, user, agreement_id)
    agreement_registry.activate(context.api, user.id, agreement_id)
    return _agreement(context, user, agreement_id)


@route("POST", "/agreements/{agreement_id}/amendments", AGREEMENT_KEEPERS, tags=["agreements"])
def amend_agreement(agreement_id: str, body: AmendmentIn, context: Ctx, user: Principal) -> dict[str, Any]:
    """Amend the authorized users or the end of term (within the law's limit); the history keeps before and after."""
    _agreement_in_scope(context, user, agreement_id)
    users = None if body.authorized_users is None else [u.model_dump() for u in body.authorized_users]
    agreement_registry.amend(context.api, user.id, agreement_id, users, body.term_end, body.reason)
    return _agreement(context, user, agreement_id)


@route("POST", "/agreements/{agreement_id}/renewals", AGREEMENT_RENEWERS, tags=["agreements"])
def renew_agreement(agreement_id: str, context: Ctx, user: Principal) -> dict[str, Any]:
    """Renew an active agreement for one more term, within the renewals the law allows."""
    _agreement_in_scope(context, user, agreement_id)
    agreement_registry.renew(context.api, user.id, agreement_id)
    return _agreement(context, user, agreement_id)


@route("POST", "/agreements/{agreement_id}/termination", AGREEMENT_KEEPERS, tags=["agreements"])
def terminate_agreement(agreement_id: str, body: TerminationIn, context: Ctx, user: Principal) -> dict[str, Any]:
    """Terminate an agreement, recording why."""
    _agreement_in_scope(context, user, agreement_id)
    agreement_registry.terminate(context.api, user.id, agreement_id, body.reason)
    return _agreement(context, user, agreement_id)
