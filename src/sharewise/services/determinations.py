"""Determine sharing requests: read, validate, evaluate."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sharewise.domain.determination import ConsentCheck, Determination
from sharewise.domain.errors import InvalidRequestError
from sharewise.domain.request import Request
from sharewise.policy.evaluate import evaluate
from sharewise.policy.model import LawPack
from sharewise.policy.request_parse import parse_request
from sharewise.policy.yamlfile import Lines, YamlProblem, parse_yaml_or_json, read_text


def read_request(path: Path, law: LawPack) -> Request:
    """Read a request file (YAML or JSON) and validate it, reporting every problem."""
    label = str(path)
    try:
        text = read_text(path, label)
    except YamlProblem as exc:
        raise InvalidRequestError("cannot read request", exc.problems) from exc
    return parse_request_text(text, law, label)


def parse_request_text(text: str, law: LawPack, label: str = "request") -> Request:
    """Parse request text (YAML, or JSON: a JSON syntax error is named as JSON's) and validate it."""
    data: Any
    lines: Lines
    try:
        data, lines = parse_yaml_or_json(text, label, as_json=label.lower().endswith(".json"))
    except YamlProblem as exc:
        raise InvalidRequestError("malformed request", exc.problems) from exc
    return parse_request(data, law.vocabulary, lines, label)


ConsentChecker = Callable[[Request, dt.date], list[ConsentCheck]]

CONSENTS_CHECKED = (
    "The consents cited were checked in the consent registry; valid_consent is true only if every "
    "one is in force and covers this source, recipient, purpose and data with every required element."
)


def determine(
    law: LawPack,
    request: Request | dict[str, Any],
    today: dt.date,
    as_of: dt.date | None = None,
    consent_checker: ConsentChecker | None = None,
) -> Determination:
    """Evaluate a request; an explicit as_of overrides the request's own date.

    When the request cites consent ids and a checker is given, the checker's verdict replaces
    facts.valid_consent, and the determination lists each consent's check.
    """
    if isinstance(request, dict):
        request = parse_request(request, law.vocabulary)
    if as_of is not None:
        request = request.model_copy(update={"as_of": as_of})
    if not request.consents or consent_checker is None:
        return evaluate(law, request, today)
    checks = consent_checker(request, request.as_of or today)
    request = request.with_facts(valid_consent=all(c.ok for c in checks))
    det = evaluate(law, request, today)
    notices = [n for n in det.notices if "were not checked against the consent registry" not in n]
    return det.model_copy(update={"consent_checks": checks, "notices": [*notices, CONSENTS_CHECKED]})
