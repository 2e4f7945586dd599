"""The clause library: agreement document types and clause templates, loaded from YAML and checked."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sharewise.domain.errors import InvalidDataError, Problem

CLAUSES_DIR = Path(__file__).resolve().parent / "clauses"
TYPES_FILE = "document-types.yaml"


class Clause(BaseModel):
    """One clause: a template, the section it belongs to and the obligations that require it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str
    section: str
    requires: tuple[str, ...] = ()
    citations: tuple[str, ...] = ()
    basis: str
    text: str
    generic: bool = False
    source: str = ""


class TermRules(BaseModel):
    """How long an agreement of a type lasts, and the limits the law sets (months)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_months: int = Field(gt=0)
    max_months: int | None = None
    renewal_months: int | None = None
    max_renewals: int | None = None


class TitleVariant(BaseModel):
    """A title used instead of the type's own when the determination carries an obligation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    obligation: str
    title: str


class DocumentType(BaseModel):
    """An agreement document type: title, the parties' defined names and its standard clauses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = ""
    title: str
    roles: dict[str, str]
    standard: tuple[str, ...]
    term: TermRules
    individual: bool = False
    obligation_sections: tuple[str, ...] | None = None
    title_variants: tuple[TitleVariant, ...] = ()

    def title_for(self, obligation_ids: Iterable[str]) -> str:
        """The title, or the variant for the first obligation present."""
        present = set(obligation_ids)
        for variant in self.title_variants:
            if variant.obligation in present:
                return variant.title
        return self.title


class Section(BaseModel):
    """A section of an agreement, in the order agreements show them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str


@dataclass(frozen=True)
class ClauseLibrary:
    """Every clause and document type, with the obligation -> clause map."""

    sections: tuple[Section, ...]
    types: dict[str, DocumentType]
    clauses: dict[str, Clause]

    def clause_for(self, obligation_id: str) -> Clause | None:
        """The clause that satisfies an obligation, if the library maps it."""
        return self._by_obligation.get(obligation_id)

    @property
    def _by_obligation(self) -> dict[str, Clause]:
        return {ob: clause for clause in self.clauses.values() for ob in clause.requires}

    def mapped_obligations(self) -> set[str]:
        """Every obligation id some clause requires."""
        return set(self._by_obligation)

    def section_index(self, section_id: str) -> int:
        """Position of a section in agreement order."""
        return [s.id for s in self.sections].index(section_id)


def load_library(directory: Path = CLAUSES_DIR, overlay: Path | None = None) -> ClauseLibrary:
    """Load the clause library; an overlay directory replaces clauses and types by id, or adds them."""
    problems: list[Problem] = []
    sections, types = _read_types(directory / TYPES_FILE, problems)
    clauses = _read_clauses(directory, problems)
    if overlay is not None:
        if not overlay.is_dir():
            raise InvalidDataError("invalid clause library", [Problem(str(overlay), "not a directory")])
        if (overlay / TYPES_FILE).exists():
            more_sections, more_types = _read_types(overlay / TYPES_FILE, problems)
            types.update(more_types)
            known = {s.id for s in sections}
            sections += tuple(s for s in more_sections if s.id not in known)
        clauses.update(_read_clauses(overlay, problems))
    library = ClauseLibrary(sections=sections, types=types, clauses=clauses)
    problems += check_library(library)
    if problems:
        raise InvalidDataError("invalid clause library", problems)
    return library


def check_library(library: ClauseLibrary) -> list[Problem]:
    """Consistency checks: sections and clauses exist, templates compile, one clause per obligation."""
    problems: list[Problem] = []
    section_ids = {s.id for s in library.sections}
    owner: dict[str, str] = {}
    env = jinja2.Environment(autoescape=False)
    for clause in library.clauses.values():
        where = f"{clause.source}: clause {clause.id}"
        if clause.section not in section_ids:
            problems.append(Problem(where, f"unknown section '{clause.section}'"))
        for ob in clause.requires:
            if ob in owner and owner[ob] != clause.id:
                problems.append(Problem(where, f"obligation '{ob}' is already mapped to clause '{owner[ob]}'"))
            owner[ob] = clause.id
        try:
            env.parse(clause.text)
        except jinja2.TemplateSyntaxError as exc:
            problems.append(Problem(f"{where} line {exc.lineno}", f"template error: {exc.message}"))
    for type_id, doc_type in library.types.items():
        for clause_id in doc_type.standard:
            if clause_id not in library.clauses:
                problems.append(Problem(f"{TYPES_FILE}: {type_id}", f"unknown standard clause '{clause_id}'"))
        for section_id in doc_type.obligation_sections or ():
            if section_id not in section_ids:
                problems.append(Problem(f"{TYPES_FILE}: {type_id}", f"unknown section '{section_id}'"))
        for role in ("discloser", "recipient"):
            if role not in doc_type.roles:
                problems.append(Problem(f"{TYPES_FILE}: {type_id}", f"roles.{role} is missing"))
    return problems


def _load(path: Path, problems: list[Problem]) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        problems.append(Problem(str(path.name), f"cannot read: {exc}"))
        return None


def _located(exc: ValidationError, where: str) -> list[Problem]:
    return [Problem(f"{where}.{'.'.join(str(p) for p in err['loc'])}", err["msg"]) for err in exc.errors()]


def _read_types(path: Path, problems: list[Problem]) -> tuple[tuple[Section, ...], dict[str, DocumentType]]:
    data = _load(path, problems)
    if not isinstance(data, dict):
        problems.append(Problem(path.name, "expected a mapping with sections and types"))
        return (), {}
    sections: list[Section] = []
    for i, raw in enumerate(data.get("sections") or []):
        try:
            sections.append(Section.model_validate(raw))
        except ValidationError as exc:
            problems += _located(exc, f"{path.name}: sections[{i}]")
    types: dict[str, DocumentType] = {}
    for type_id, raw in (data.get("types") or {}).items():
        try:
            types[type_id] = DocumentType.model_validate({**raw, "id": type_id})
        except ValidationError as exc:
            problems += _located(exc, f"{path.name}: types.{type_id}")
    return tuple(sections), types


def _read_clauses(directory: Path, problems: list[Problem]) -> dict[str, Clause]:
    clauses: dict[str, Clause] = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.name == TYPES_FILE:
            continue
        data = _load(path, problems)
        items = data.get("clauses") if isinstance(data, dict) else None
        if not isinstance(items, list):
            problems.append(Problem(path.name, "expected a mapping with a 'clauses' list"))
            continue
        for i, raw in enumerate(items):
            try:
                clause = Clause.model_validate({**raw, "source": path.name})
            except (ValidationError, TypeError) as exc:
                if isinstance(exc, ValidationError):
                    problems += _located(exc, f"{path.name}: clauses[{i}]")
                else:
                    problems.append(Problem(f"{path.name}: clauses[{i}]", "expected a mapping"))
                continue
            if clause.id in clauses:
                problems.append(
                    Problem(
                        f"{path.name}: clause {clause.id}", f"duplicate clause id (also in {clauses[clause.id].source})"
                    )
                )
            clauses[clause.id] = clause
    return clauses
