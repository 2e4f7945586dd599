"""The request page's agreement steps: draft the agreement its determination requires, record it once in force.

A request that leadership approved waits for its agreement (`agreement_pending`). On its page,
requesters, legal reviewers, approvers and administrators of its agencies draft the agreement from
the parties' details (the YAML `sharewise agreement draft` reads); the document is kept as DOCX and
PDF to sign. Once the agreement is signed and in effect, an approver or administrator records it
against the request, which becomes active. The services decide who may do each step.
"""

from __future__ import annotations

from typing import Annotated, Any

import yaml
from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response

from sharewise.api.routes import documents_dir
from sharewise.domain.errors import InvalidDataError, Problem, SharewiseError
from sharewise.services import agreement_drafting
from sharewise.services import workflow as workflow_service
from sharewise.web.pages import Csrf, Ctx, Viewer, check_csrf, flash, request_view, router

PARTIES_LIMIT = 64 * 1024  # characters of the parties' YAML


def _parties(text: str) -> dict[str, Any]:
    """The parties' YAML as a mapping, refused with a clear reason otherwise (aliases are not accepted)."""
    if not text.strip():
        raise InvalidDataError("the parties are missing", [Problem("parties", "paste the parties' details (YAML)")])
    if len(text) > PARTIES_LIMIT:
        raise InvalidDataError("the parties are too long", [Problem("parties", f"at most {PARTIES_LIMIT} characters")])
    try:
        events = list(yaml.parse(text, Loader=yaml.SafeLoader))
        if any(isinstance(e, yaml.AliasEvent) for e in events):
            raise InvalidDataError("malformed parties", [Problem("parties", "YAML aliases (*name) are not accepted")])
        data = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: a value YAML cannot build, such as 2026-02-30
        raise InvalidDataError(
            "malformed parties",
            [
                Problem(
                    "parties",
                    "not valid YAML"
                    if isinstance(exc, yaml.YAMLError)
                    else "a value that cannot be read (for example an impossible date)",
                )
            ],
        ) from None
    if not isinstance(data, dict):
        raise InvalidDataError(
            "malformed parties", [Problem("parties", "expected a mapping: agreement, discloser, recipient")]
        )
    return data


@router.post("/requests/{request_id}/agreements")
def draft_request_agreement(
    request_id: str,
    request: Request,
    context: Ctx,
    user: Viewer,
    csrf: Csrf,
    parties: Annotated[str, Form(max_length=PARTIES_LIMIT * 2)] = "",
    doc_type: Annotated[str, Form(max_length=60)] = "",
    fmt: Annotated[str, Form(alias="format", pattern="^(docx|pdf)$")] = "docx",
) -> Response:
    """Draft and register the request's agreement; on a problem, the page again with what was typed."""
    check_csrf(request, csrf)
    form = {"parties": parties, "doc_type": doc_type, "format": fmt}
    try:
        agreement_id = agreement_drafting.draft_for_request(
            context.web,
            context.law,
            user.id,
            request_id,
            _parties(parties),
            doc_type or None,
            fmt,
            documents_dir(context),
            context.today(),
        )
    except InvalidDataError as exc:
        problems = [str(p) for p in exc.problems] or [exc.message]
        return request_view(
            request, context, user, request_id, 422, draft_form=form, draft_problems=[exc.message, *problems]
        )
    flash(request, f"Agreement {agreement_id} drafted: download it, send it to review and sign it on its page.")
    return RedirectResponse(f"/agreements/{agreement_id}", status_code=303)


@router.post("/requests/{request_id}/execute")
def record_request_agreement(
    request_id: str,
    request: Request,
    context: Ctx,
    user: Viewer,
    csrf: Csrf,
    agreement_id: Annotated[str, Form(min_length=1, max_length=80)],
) -> Response:
    """Record the agreement in force for the request: the request becomes active."""
    check_csrf(request, csrf)
    try:
        workflow_service.execute_agreement(context.web, user.id, request_id, agreement_id)
        flash(request, f"Agreement {agreement_id} is recorded: the request is active.")
    except SharewiseError as exc:
        flash(request, exc.message + "".join(f" {p}" for p in exc.problems), "error")
    return RedirectResponse(f"/requests/{request_id}", status_code=303)
