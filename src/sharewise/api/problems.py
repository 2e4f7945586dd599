"""The one table mapping sharewise error codes to HTTP problem+json responses (RFC 9457)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sharewise.domain.errors import (
    AccessDeniedError,
    IntegrityError,
    InvalidDataError,
    InvalidLawPackError,
    InvalidRequestError,
    InvalidStateError,
    NotFoundError,
    NotPermittedError,
    SharewiseError,
    StorageError,
)

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE = "https://sharewise.example/problems/"


class NotSignedInError(AccessDeniedError):
    """No valid credentials came with the call (HTTP 401; the code stays access_denied)."""


# code class -> (HTTP status, title). The most specific class wins (see status_for).
PROBLEMS: dict[type[SharewiseError], tuple[int, str]] = {
    SharewiseError: (400, "The action failed"),
    InvalidRequestError: (422, "The sharing request is invalid"),
    InvalidDataError: (422, "The input is invalid"),
    InvalidLawPackError: (500, "The law pack is invalid"),
    NotFoundError: (404, "Not found"),
    StorageError: (503, "The store failed; nothing was changed"),
    NotPermittedError: (409, "The law or the workflow does not permit this"),
    InvalidStateError: (409, "Not allowed in the record's current state"),
    IntegrityError: (409, "An integrity check failed"),
    AccessDeniedError: (403, "Access denied"),
    NotSignedInError: (401, "Sign-in needed"),
}


def status_for(exc: SharewiseError) -> tuple[int, str]:
    """The status and title of an error: its own class's entry, or its nearest ancestor's."""
    for cls in type(exc).__mro__:
        if cls in PROBLEMS:
            return PROBLEMS[cls]
    return PROBLEMS[SharewiseError]


def problem(
    status: int, title: str, code: str, detail: str, problems: list[dict[str, str]] | None = None
) -> JSONResponse:
    """A problem+json response; bodies carry ids and field paths, never personal data."""
    body: dict[str, Any] = {"type": PROBLEM_TYPE + code, "title": title, "status": status, "code": code}
    body["detail"] = detail
    body["problems"] = problems or []
    headers = {"WWW-Authenticate": 'Bearer realm="sharewise"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def from_error(exc: SharewiseError) -> JSONResponse:
    status, title = status_for(exc)
    return problem(
        status, title, exc.code, exc.message, [{"location": p.location, "message": p.message} for p in exc.problems]
    )


async def sharewise_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SharewiseError)
    return from_error(exc)


async def validation_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Only locations and messages: the input values themselves are never echoed back.
    problems = [
        {"location": ".".join(str(p) for p in e.get("loc", ())), "message": str(e.get("msg", "invalid"))}
        for e in exc.errors()
    ]
    return problem(422, PROBLEMS[InvalidRequestError][1], "invalid_request", "the input is invalid", problems)


async def http_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {401: "access_denied", 403: "access_denied", 404: "not_found"}.get(exc.status_code, "sharewise_error")
    return problem(exc.status_code, str(exc.detail), code, str(exc.detail))
