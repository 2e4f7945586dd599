"""Validate a raw sharing request against the contract and the law pack's vocabulary."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import ValidationError

from sharewise.domain.errors import InvalidRequestError, Problem
from sharewise.domain.request import Request
from sharewise.policy import condition as cond_mod
from sharewise.policy.model import Vocabulary
from sharewise.policy.suggest import did_you_mean
from sharewise.policy.yamlfile import Lines, line_of

EARLIEST = dt.date(1970, 1, 1)
LATEST = dt.date(2099, 12, 31)


def parse_request(data: Any, vocab: Vocabulary, lines: Lines | None = None, label: str = "request") -> Request:
    """Turn raw request data into a Request, or raise with every problem and its location."""
    lines = lines or {}
    problems: list[Problem] = []

    def where(path: tuple[Any, ...]) -> str:
        line = line_of(lines, path) if lines else None
        dotted = ".".join(str(p) for p in path)
        loc = f"{label}:{line}" if line else label
        return f"{loc}: {dotted}" if dotted else loc

    if not isinstance(data, dict):
        raise InvalidRequestError(
            "invalid request", [Problem(label, "a request must be a mapping (YAML or JSON object)")]
        )
    try:
        request = Request.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            msg = err["msg"]
            if err["type"] == "missing":
                msg = "required field is missing"
            elif err["type"] == "extra_forbidden":
                msg = "unknown field" + did_you_mean(str(loc[-1]), _FIELDS.get(loc[:-1], ()))
            problems.append(Problem(where(loc), msg))
        # Report vocabulary problems too, where the structure allows.
        _check_ids(data, vocab, problems, where)
        raise InvalidRequestError("invalid request", problems) from exc
    _check_ids(data, vocab, problems, where)
    if request.as_of is not None and not (EARLIEST <= request.as_of <= LATEST):
        problems.append(Problem(where(("as_of",)), f"date {request.as_of} is out of range ({EARLIEST} to {LATEST})"))
    if not problems:
        lookup = make_lookup(request)
        for _cid, fld, message, condition in vocab.constraints:
            value, _ = cond_mod.evaluate(condition, lookup)
            if value is True:
                problems.append(Problem(where((fld,)), f"contradictory request: {message}"))
    if problems:
        raise InvalidRequestError("invalid request", problems)
    return request


_FIELDS: dict[tuple[Any, ...], tuple[str, ...]] = {
    (): ("as_of", "source", "recipient", "purpose", "data", "form", "facts", "consents"),
    ("source",): ("agency", "program", "roles"),
    ("recipient",): ("name", "kind", "program", "roles"),
}


def _check_ids(data: dict[str, Any], vocab: Vocabulary, problems: list[Problem], where: Any) -> None:
    def check(value: Any, ids: dict[str, str], path: tuple[Any, ...], what: str) -> None:
        if isinstance(value, str) and value not in ids:
            problems.append(Problem(where(path), f"unknown {what} '{value}'{did_you_mean(value, ids)}"))

    source: dict[str, Any] = data["source"] if isinstance(data.get("source"), dict) else {}
    recipient: dict[str, Any] = data["recipient"] if isinstance(data.get("recipient"), dict) else {}
    check(source.get("program"), vocab.programs, ("source", "program"), "program")
    check(recipient.get("program"), vocab.programs, ("recipient", "program"), "program")
    check(recipient.get("kind"), vocab.recipient_kinds, ("recipient", "kind"), "recipient kind")
    check(data.get("purpose"), vocab.purposes, ("purpose",), "purpose")
    check(data.get("form"), vocab.forms, ("form",), "form")
    for party, obj in (("source", source), ("recipient", recipient)):
        roles = obj.get("roles")
        if isinstance(roles, list):
            for i, role in enumerate(roles):
                check(role, vocab.roles, (party, "roles", i), "role")
    items = data.get("data")
    if isinstance(items, list):
        seen: set[str] = set()
        for i, item in enumerate(items):
            check(item, vocab.data_categories, ("data", i), "data category")
            if isinstance(item, str) and item in seen:
                problems.append(Problem(where(("data", i)), f"data category '{item}' is listed twice"))
            if isinstance(item, str):
                seen.add(item)
    facts = data.get("facts")
    if isinstance(facts, dict):
        for name in facts:
            if name not in vocab.facts:
                problems.append(
                    Problem(
                        where(("facts", name)),
                        f"unknown fact '{name}'{did_you_mean(str(name), vocab.facts)}",
                    )
                )


def make_lookup(request: Request) -> cond_mod.Lookup:
    """The path resolver that conditions evaluate against; absent facts are unknown."""
    values: dict[str, Any] = {
        "source.program": request.source.program,
        "source.roles": request.source.roles,
        "recipient.kind": request.recipient.kind,
        "recipient.program": request.recipient.program if request.recipient.program is not None else cond_mod.MISSING,
        "recipient.roles": request.recipient.roles,
        "purpose": request.purpose,
        "data": request.data,
        "form": request.form,
    }
    facts = request.facts

    def lookup(path: str) -> Any:
        if path.startswith("facts."):
            return facts.get(path[6:], cond_mod.MISSING)
        return values.get(path, cond_mod.MISSING)

    return lookup
