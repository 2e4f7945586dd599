"""Generate documents from a determination: agreements from the clause library, and consent forms."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sharewise.agreements import render as agreement_render
from sharewise.agreements.draft import AgreementDraft, Annex, AnnexPart, Labels, draft_agreement
from sharewise.agreements.library import ClauseLibrary, DocumentType, load_library
from sharewise.agreements.parties import Parties, term_problems
from sharewise.consent import forms as consent_forms
from sharewise.domain.consent import ConsentRequirement, RequiredElement
from sharewise.domain.determination import Determination
from sharewise.domain.errors import (
    InvalidDataError,
    InvalidRequestError,
    NotFoundError,
    NotPermittedError,
    Problem,
    StorageError,
)
from sharewise.domain.outcome import Outcome
from sharewise.domain.request import Request
from sharewise.policy.model import LawPack
from sharewise.policy.suggest import did_you_mean
from sharewise.policy.yamlfile import Lines, YamlProblem, line_of, read_yaml
from sharewise.security.five_safes import FiveSafes, five_safes
from sharewise.security.safeguards import SafeguardsSpec
from sharewise.services.determinations import ConsentChecker, determine, read_request

DEFAULT_AGREEMENT = "data_sharing_agreement"


@dataclass(frozen=True)
class Generated:
    """A document written to disk, and what the user should know about it."""

    path: Path
    doc_type: str
    title: str
    warnings: tuple[str, ...]


def agreement_types(law: LawPack, library: ClauseLibrary) -> list[str]:
    """The document types of the law pack that sharewise drafts as agreements."""
    return [t for t in library.types if t in law.vocabulary.documents]


def resolve_agreement_type(
    law: LawPack, library: ClauseLibrary, wanted: str | None, determination: Determination
) -> DocumentType:
    """The type asked for (checked, with a suggestion), or the first agreement the determination lists."""
    known = agreement_types(law, library)
    if wanted is None:
        listed = [d for d in determination.documents if d in known]
        return library.types[listed[0] if listed else DEFAULT_AGREEMENT]
    if wanted in known:
        return library.types[wanted]
    if wanted in law.vocabulary.documents:
        hint = " (use the consent-form command)" if wanted == "consent_form" else ""
        message = f"'{wanted}' is a document type but not an agreement sharewise drafts{hint}"
    else:
        message = f"unknown document type '{wanted}'{did_you_mean(wanted, known)}"
    raise InvalidRequestError(
        "invalid document type", [Problem("--type", message), Problem("--type", f"agreements: {', '.join(known)}")]
    )


def read_parties(path: Path) -> Parties:
    """Read a parties file, reporting every missing or malformed field with its line."""
    return _read_parties(path)[0]


def _read_parties(path: Path) -> tuple[Parties, Callable[[tuple[Any, ...]], str]]:
    label = str(path)
    try:
        data, lines = read_yaml(path, label)
    except YamlProblem as exc:
        raise InvalidDataError("invalid parties file", exc.problems) from exc
    if not isinstance(data, dict):
        raise InvalidDataError("invalid parties file", [Problem(label, "a parties file must be a mapping")])

    def where(loc: tuple[Any, ...]) -> str:
        return _where(label, lines, loc)

    try:
        return Parties.model_validate(data), where
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            msg = "required field is missing" if err["type"] == "missing" else err["msg"]
            problems.append(Problem(where(loc), msg))
        raise InvalidDataError("invalid parties file", problems) from exc


def _where(label: str, lines: Lines, path: tuple[Any, ...]) -> str:
    line = line_of(lines, path)
    dotted = ".".join(str(p) for p in path)
    return f"{label}:{line}: {dotted}" if line else f"{label}: {dotted}"


def labels_for(law: LawPack) -> Labels:
    """Labels for ids, from the vocabulary and the rules."""
    v = law.vocabulary
    return Labels(
        data_categories=v.data_categories,
        purposes=v.purposes,
        forms=v.forms,
        rule_titles={r.id: r.title for r in law.all_rules()},
    )


def draft(
    law: LawPack,
    request: Request,
    parties: Parties,
    today: dt.date,
    doc_type: str | None = None,
    library: ClauseLibrary | None = None,
    where: Callable[[tuple[Any, ...]], str] | None = None,
    consent_checker: ConsentChecker | None = None,
) -> AgreementDraft:
    """Determine the request and draft the agreement (refused unless the determination is permitted).

    consent_checker: checks the consents the request cites (in the registry), as `check` does; without
    it a request that rests on consent is refused as consent_required.
    """
    library = library or load_library()
    determination = determine(law, request, today, consent_checker=consent_checker)
    chosen = resolve_agreement_type(law, library, doc_type, determination)
    locate = where or (lambda path: "parties: " + ".".join(str(p) for p in path))
    problems = [Problem(locate(p), m) for p, m in term_problems(parties, chosen)]
    if problems:
        raise InvalidDataError("the parties' terms break the limits the law sets", problems)
    spec = _specification(law, request, today)
    users = tuple(_user_line(u.role, u.name, u.organization) for u in parties.authorized_users)
    annex = five_safes_annex(five_safes(request, determination, spec, None, users))
    return draft_agreement(
        determination, request, parties, chosen, library, labels_for(law), _safeguards(spec), (annex,)
    )


def _user_line(role: str, name: str | None, organization: str | None) -> str:
    return role + (f" {name}" if name else "") + (f" ({organization})" if organization else "")


def _specification(law: LawPack, request: Request, today: dt.date) -> SafeguardsSpec:
    from sharewise.services.security import specify

    return specify(law, request, request.as_of or today)


def _safeguards(spec: SafeguardsSpec) -> dict[str, Any]:
    """The security specification's summary for the agreement's security clause."""
    cat = spec.categorization
    return {
        "categorization": cat.summary(),
        "overall": str(cat.overall),
        "baselines": " and ".join(spec.baselines),
        "controls": len(spec.safeguards),
        "overlays": [f"{o.title} ({'; '.join(o.citations)})" for o in spec.overlays if o.binding],
    }


FIVE_SAFES_INTRO = (
    "The request in the Five Safes frame (safe project, people, setting, data and outputs), from the "
    "determination, the parties' terms and the security specification. Items marked open are to be "
    "settled before the first share; a concern needs the parties' attention."
)


def five_safes_annex(view: FiveSafes) -> Annex:
    """The Five Safes view as an agreement annex."""
    return Annex(
        title="Five Safes summary",
        intro=FIVE_SAFES_INTRO,
        parts=tuple(
            AnnexPart(f"Safe {safe.name}", safe.status, tuple(p for p in safe.points if p)) for safe in view.safes
        ),
    )


def draft_agreement_file(
    law: LawPack,
    request_path: Path,
    parties_path: Path,
    fmt: str,
    out: Path,
    today: dt.date,
    doc_type: str | None = None,
    clauses: Path | None = None,
    consent_checker: ConsentChecker | None = None,
) -> Generated:
    """Draft an agreement from files and write it (all or nothing)."""
    _check_format(fmt, agreement_render.FORMATS)
    request = read_request(request_path, law)
    parties, where = _read_parties(parties_path)
    library = load_library(overlay=clauses) if clauses else load_library()
    result = draft(law, request, parties, today, doc_type, library, where, consent_checker)
    write_atomically(out, agreement_render.render(result, fmt))
    unprintable = agreement_render.pdf_warning(result) if fmt == "pdf" else None
    return Generated(out, result.doc_type, result.title, (*result.warnings, *filter(None, [unprintable])))


def consent_requirements(law: LawPack, determination: Determination) -> list[ConsentRequirement]:
    """The consent elements of each consent rule that holds for the request, as in force on as_of."""
    found: list[ConsentRequirement] = []
    for entry in determination.trace:
        if entry.kind != "consent" or entry.result != "holds":
            continue
        rule = law.rule(entry.rule)
        version = rule.version_on(determination.as_of) if rule else None
        if rule is None or version is None:
            continue
        found.append(
            ConsentRequirement(
                authority=rule.authority,
                rule=rule.id,
                elements=tuple(
                    RequiredElement(id=e.id, text=e.text, citations=e.citations) for e in version.consent_elements
                ),
            )
        )
    return found


def consent_form(law: LawPack, request: Request, today: dt.date) -> consent_forms.ConsentForm:
    """Build the universal release for a request: every element each governing authority requires."""
    determination = determine(law, request, today)
    prohibited = [a for a in determination.authorities if a.outcome == Outcome.PROHIBITED]
    if prohibited:
        raise NotPermittedError(
            "consent cannot make this disclosure lawful",
            [Problem(f"authority {a.authority}", a.explanation) for a in prohibited],
        )
    requirements = consent_requirements(law, determination)
    if not requirements:
        governing = ", ".join(a.authority for a in determination.authorities) or "none"
        raise NotFoundError(
            "no governing authority offers consent as a pathway for this request",
            [Problem("request", f"governing authorities: {governing}")],
        )
    names = {a.authority: a.name for a in determination.authorities}
    v = law.vocabulary
    return consent_forms.build_form(
        request,
        requirements,
        consent_forms.FormLabels(
            authorities=names,
            programs=v.programs,
            data_categories=v.data_categories,
            purposes=v.purposes,
            recipient_kinds=v.recipient_kinds,
        ),
        as_of=determination.as_of,
    )


def consent_form_file(law: LawPack, request_path: Path, fmt: str, out: Path, today: dt.date) -> Generated:
    """Generate the consent form for a request file and write it (all or nothing)."""
    _check_format(fmt, consent_forms.FORMATS)
    request = read_request(request_path, law)
    form = consent_form(law, request, today)
    write_atomically(out, consent_forms.render(form, fmt))
    unprintable = consent_forms.pdf_warning(form) if fmt == "pdf" else None
    return Generated(out, "consent_form", form.title, (*form.warnings, *filter(None, [unprintable])))


def _check_format(fmt: str, formats: tuple[str, ...]) -> None:
    if fmt not in formats:
        raise InvalidRequestError(
            "invalid option",
            [Problem("--format", f"'{fmt}' is not one of {', '.join(formats)}{did_you_mean(fmt, formats)}")],
        )


def write_atomically(path: Path, data: bytes) -> None:
    """Write a file whole or not at all: a temporary file beside it, then a rename."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise StorageError("cannot write the document", [Problem(str(path), exc.strerror or str(exc))]) from exc
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600; a document is an ordinary file
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise StorageError("cannot write the document", [Problem(str(path), exc.strerror or str(exc))]) from exc


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current
