"""Load and validate law packs: every problem reported at once, each with file:line."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sharewise.domain.determination import Citation
from sharewise.domain.errors import InvalidLawPackError, Problem
from sharewise.policy import condition as cond_mod
from sharewise.policy.citation import derive_url
from sharewise.policy.model import (
    Authority,
    Case,
    Element,
    LawPack,
    Rule,
    RuleVersion,
    Vocabulary,
)
from sharewise.policy.packfiles import FEDERAL_PACK, hash_files
from sharewise.policy.suggest import did_you_mean
from sharewise.policy.yamlfile import Lines, YamlProblem, line_of, read_yaml

ID_SEGMENT = r"[a-z0-9][a-z0-9_-]*"
RULE_ID = rf"^[a-z0-9_]+(\.{ID_SEGMENT})+$"


class _Strict(BaseModel):
    # defer_build: the schemas are built on first validation, not at import, so that reading a
    # cached pack (the common case) does not pay for them.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class RawCitation(_Strict):
    cite: str = Field(min_length=3)
    url: str | None = None


class RawElement(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    text: str = Field(min_length=3)
    citations: list[str] = Field(min_length=1)


class RawVersion(_Strict):
    effective_from: dt.date
    effective_to: dt.date | None = None
    summary: str | None = None
    citations: list[RawCitation | str] | None = None
    when: Any = None
    obligations: list[RawElement] | None = None
    documents: list[str] | None = None
    consent_elements: list[RawElement] | None = None
    confidence: Literal["verified", "background", "uncertain"] | None = None
    needs_legal_review: bool | None = None
    notes: str | None = None


class RawRule(_Strict):
    id: str = Field(pattern=RULE_ID)
    kind: Literal["permit", "consent", "prohibit", "review", "obligation"]
    title: str = Field(min_length=3)
    summary: str = Field(min_length=10)
    citations: list[RawCitation | str] = Field(min_length=1)
    confidence: Literal["verified", "background", "uncertain"]
    needs_legal_review: bool = False
    effective_from: dt.date
    effective_to: dt.date | None = None
    versions: list[RawVersion] | None = None
    when: Any
    obligations: list[RawElement] = []
    documents: list[str] = []
    consent_elements: list[RawElement] = []
    remedy: str | None = None
    notes: str | None = None


class RawRuleFile(_Strict):
    rules: list[RawRule] = Field(min_length=1)


class RawFact(_Strict):
    ask: str = Field(min_length=5)
    help: str | None = None


class RawConstraint(_Strict):
    id: str
    message: str
    field: str
    when: Any


class RawAuthority(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    citations: list[RawCitation | str] = Field(min_length=1)
    summary: str
    confidence: Literal["verified", "background", "uncertain"]
    governs_when: Any
    notes: str | None = None
    facts: dict[str, RawFact] = {}
    constraints: list[RawConstraint] = []


class RawLabel(_Strict):
    label: str
    description: str | None = None


class RawVocabulary(_Strict):
    programs: dict[str, RawLabel] = {}
    data_categories: dict[str, RawLabel] = {}
    recipient_kinds: dict[str, RawLabel] = {}
    purposes: dict[str, RawLabel] = {}
    roles: dict[str, RawLabel] = {}
    forms: dict[str, RawLabel] = {}
    documents: dict[str, RawLabel] = {}
    facts: dict[str, RawFact] = {}
    constraints: list[RawConstraint] = []


class RawPack(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_-]+$")
    version: str
    kind: Literal["federal", "state"]
    name: str
    description: str | None = None
    extends: str | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value


EXPECT_KEYS = {
    "outcome",
    "outcome_in",
    "authorities",
    "pathway",
    "applies",
    "not_applies",
    "cites",
    "documents",
    "obligations_cite",
    "questions",
}


class RawCase(_Strict):
    name: str
    request: dict[str, Any]
    expect: dict[str, Any]
    basis: str | None = None

    @field_validator("expect")
    @classmethod
    def _known_expectations(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = set(value) - EXPECT_KEYS
        if unknown:
            raise ValueError(f"unknown expectation(s) {sorted(unknown)}; use {sorted(EXPECT_KEYS)}")
        return value


class _Collector:
    """Gathers problems across files so that all are reported at once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[Problem] = []

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root.parent))
        except ValueError:
            return str(path)

    def add(self, path: Path, lines: Lines, where: tuple[Any, ...], message: str) -> None:
        line = line_of(lines, where)
        self.problems.append(Problem(f"{self.rel(path)}:{line}" if line else self.rel(path), message))

    def read(self, path: Path) -> tuple[Any, Lines] | None:
        try:
            return read_yaml(path, self.rel(path))
        except YamlProblem as exc:
            self.problems.extend(exc.problems)
            return None

    def validate(
        self,
        model: type[BaseModel],
        data: Any,
        path: Path,
        lines: Lines,
        prefix: tuple[Any, ...] = (),
    ) -> Any:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in ("RawCitation", "str")))
                field = ".".join(str(p) for p in (*prefix, *loc)) or "(file)"
                self.add(path, lines, (*prefix, *loc), f"{field}: {err['msg']}")
            return None


def _citations(raw: list[RawCitation | str]) -> tuple[Citation, ...]:
    out = []
    for item in raw:
        cite = item if isinstance(item, str) else item.cite
        url = None if isinstance(item, str) else item.url
        out.append(Citation(cite=cite, url=url or derive_url(cite)))
    return tuple(out)


def _elements(raw: list[RawElement]) -> tuple[Element, ...]:
    return tuple(Element(e.id, e.text.strip(), tuple(e.citations)) for e in raw)


def load_vocabulary(path: Path, col: _Collector) -> tuple[RawVocabulary | None, Lines]:
    read = col.read(path)
    if read is None:
        return None, {}
    data, lines = read
    return col.validate(RawVocabulary, data, path, lines), lines


def _merge_vocab(base: RawVocabulary, extra: RawVocabulary, path: Path, lines: Lines, col: _Collector) -> RawVocabulary:
    for section in ("programs", "data_categories", "recipient_kinds", "purposes", "roles", "forms"):
        if getattr(extra, section):
            col.add(
                path,
                lines,
                (section,),
                f"{section}: a state pack may add facts and documents only; {section} are the public contract",
            )
    facts = {**base.facts}
    for fact_id, fact in extra.facts.items():
        if fact_id in facts:
            col.add(path, lines, ("facts", fact_id), f"fact '{fact_id}' is already defined")
        facts[fact_id] = fact
    documents = {**base.documents, **extra.documents}
    return base.model_copy(
        update={
            "facts": facts,
            "documents": documents,
            "constraints": [*base.constraints, *extra.constraints],
        }
    )


class _PackDir:
    def __init__(self, root: Path, raw: RawPack) -> None:
        self.root = root
        self.raw = raw


def _read_pack(root: Path, col: _Collector) -> RawPack | None:
    path = root / "pack.yaml"
    if not path.is_file():
        col.problems.append(Problem(col.rel(root), "not a law pack: no pack.yaml"))
        return None
    read = col.read(path)
    if read is None:
        return None
    data, lines = read
    pack: RawPack | None = col.validate(RawPack, data, path, lines)
    return pack


def load_law(state_pack: Path | str | None = None, federal_pack: Path | None = None) -> LawPack:
    """Load the federal pack, optionally layered with a state pack; raise with every problem."""
    federal_root = Path(federal_pack) if federal_pack else FEDERAL_PACK
    roots = [federal_root]
    if state_pack is not None:
        roots.append(Path(state_pack))
    col = _Collector(federal_root)
    packs: list[_PackDir] = []
    for root in roots:
        if not root.is_dir():
            col.problems.append(Problem(str(root), "law pack directory not found"))
            continue
        raw = _read_pack(root, col)
        if raw is not None:
            packs.append(_PackDir(root, raw))
    if col.problems:
        raise InvalidLawPackError("the law pack is invalid", col.problems)
    if packs[0].raw.kind != "federal":
        col.problems.append(Problem(col.rel(federal_root / "pack.yaml"), "the base pack must have kind: federal"))
    for extra in packs[1:]:
        if extra.raw.kind != "state" or extra.raw.extends != packs[0].raw.id:
            col.problems.append(
                Problem(
                    col.rel(extra.root / "pack.yaml"),
                    f"a layered pack must have kind: state and extends: {packs[0].raw.id}",
                )
            )

    # Vocabulary: the base pack's, plus facts from state vocabularies and authority files.
    vocab_path = federal_root / "vocabulary.yaml"
    raw_vocab, vocab_lines = load_vocabulary(vocab_path, col)
    if raw_vocab is None:
        raise InvalidLawPackError("the law pack is invalid", col.problems)
    for extra in packs[1:]:
        extra_vocab_path = extra.root / "vocabulary.yaml"
        if extra_vocab_path.is_file():
            extra_vocab, extra_lines = load_vocabulary(extra_vocab_path, col)
            if extra_vocab is not None:
                raw_vocab = _merge_vocab(raw_vocab, extra_vocab, extra_vocab_path, extra_lines, col)

    authority_files: list[tuple[_PackDir, Path, RawAuthority, Lines]] = []
    fact_origin: dict[str, str] = {f: col.rel(vocab_path) for f in raw_vocab.facts}
    facts = dict(raw_vocab.facts)
    for pack in packs:
        for auth_path in sorted(pack.root.glob("*/authority.yaml")):
            read = col.read(auth_path)
            if read is None:
                continue
            data, lines = read
            raw_auth = col.validate(RawAuthority, data, auth_path, lines)
            if raw_auth is None:
                continue
            for fact_id, fact in raw_auth.facts.items():
                if fact_id in facts:
                    col.add(
                        auth_path,
                        lines,
                        ("facts", fact_id),
                        f"fact '{fact_id}' is already defined in {fact_origin[fact_id]}",
                    )
                    continue
                facts[fact_id] = fact
                fact_origin[fact_id] = col.rel(auth_path)
            authority_files.append((pack, auth_path, raw_auth, lines))

    constraints = []
    vocab = Vocabulary(
        programs={k: v.label for k, v in raw_vocab.programs.items()},
        data_categories={k: v.label for k, v in raw_vocab.data_categories.items()},
        recipient_kinds={k: v.label for k, v in raw_vocab.recipient_kinds.items()},
        purposes={k: v.label for k, v in raw_vocab.purposes.items()},
        roles={k: v.label for k, v in raw_vocab.roles.items()},
        forms={k: v.label for k, v in raw_vocab.forms.items()},
        documents={k: v.label for k, v in raw_vocab.documents.items()},
        facts={k: v.ask for k, v in facts.items()},
        constraints=(),
    )
    sources = [(vocab_path, vocab_lines, raw_vocab.constraints)]
    sources += [(auth_path, lines, raw_auth.constraints) for _, auth_path, raw_auth, lines in authority_files]
    for source_path, source_lines, raw_constraints in sources:
        for i, raw_constraint in enumerate(raw_constraints):
            where = ("constraints", i, "when")
            parsed = _condition(raw_constraint.when, vocab, col, source_path, source_lines, where)
            if parsed is not None:
                constraints.append((raw_constraint.id, raw_constraint.field, raw_constraint.message, parsed))
    vocab = Vocabulary(**{**vocab.__dict__, "constraints": tuple(constraints)})

    authorities: dict[str, Authority] = {}
    rule_index: dict[str, tuple[str, str]] = {}  # rule id -> (authority id, location)
    overrides: dict[str, str] = {}
    case_files: list[tuple[Path, str]] = []
    for pack, auth_path, raw_auth, lines in authority_files:
        governs = _condition(raw_auth.governs_when, vocab, col, auth_path, lines, ("governs_when",))
        rules: list[Rule] = []
        for rule_path in sorted(auth_path.parent.glob("*.yaml")):
            if rule_path.name == "authority.yaml":
                continue
            if rule_path.name.endswith(".cases.yaml"):
                case_files.append((rule_path, pack.raw.id))
                continue
            rules.extend(_load_rules(rule_path, raw_auth.id, pack.raw.id, vocab, col))
        existing = authorities.get(raw_auth.id)
        if existing is not None and pack is packs[0]:
            col.add(
                auth_path,
                lines,
                ("id",),
                f"authority '{raw_auth.id}' is defined twice (also in {existing.source})",
            )
            continue
        merged: dict[str, Rule] = {r.id: r for r in existing.rules} if existing else {}
        for rule in rules:
            owner = rule_index.get(rule.id)
            if owner is not None and pack is packs[0]:
                col.problems.append(Problem(rule.source, f"duplicate rule id '{rule.id}' (also at {owner[1]})"))
                continue
            if owner is not None:
                if owner[0] != raw_auth.id:
                    col.problems.append(
                        Problem(
                            rule.source,
                            f"rule '{rule.id}' overrides a rule of authority '{owner[0]}' from authority '{raw_auth.id}'",
                        )
                    )
                    continue
                overrides[rule.id] = pack.raw.id
            rule_index[rule.id] = (raw_auth.id, rule.source)
            merged[rule.id] = rule
        if existing is not None:
            authorities[raw_auth.id] = Authority(
                **{
                    **existing.__dict__,
                    "rules": tuple(merged.values()),
                    "governs_when": governs or existing.governs_when,
                }
            )
            continue
        authorities[raw_auth.id] = Authority(
            id=raw_auth.id,
            name=raw_auth.name,
            summary=raw_auth.summary.strip(),
            citations=_citations(raw_auth.citations),
            confidence=raw_auth.confidence,
            governs_when=governs or cond_mod.Always(False),
            notes=raw_auth.notes.strip() if raw_auth.notes else None,
            rules=tuple(merged.values()),
            source=f"{col.rel(auth_path)}:1",
            folder=auth_path.parent.name,
        )
    if col.problems:
        raise InvalidLawPackError("the law pack is invalid", col.problems)

    pack_ids = "+".join(p.raw.id for p in packs)
    version = "+".join(p.raw.version for p in packs)
    return LawPack(
        id=pack_ids,
        version=version,
        name=packs[-1].raw.name,
        content_hash=hash_files([p.root for p in packs]),
        vocabulary=vocab,
        authorities=tuple(authorities.values()),
        case_files=tuple(case_files),
        overrides=overrides,
    )


def _condition(
    raw: Any, vocab: Vocabulary, col: _Collector, path: Path, lines: Lines, where: tuple[Any, ...]
) -> cond_mod.Condition | None:
    if raw is None:
        col.add(path, lines, where, f"{'.'.join(map(str, where))}: a condition is required")
        return None
    parsed, problems = cond_mod.parse(raw, ".".join(map(str, where)))
    for message in problems:
        col.add(path, lines, where, message)
    if parsed is None:
        return None
    ok = True
    for atom, _ in cond_mod.atoms(parsed):
        atom_problem = _check_atom(atom, vocab)
        if atom_problem:
            col.add(path, lines, where, atom_problem)
            ok = False
    return parsed if ok else None


def _check_atom(atom: cond_mod.Atom, vocab: Vocabulary) -> str | None:
    if atom.path.startswith("facts."):
        fact = atom.path[len("facts.") :]
        if fact not in vocab.facts:
            return f"unknown fact '{fact}'{did_you_mean(fact, vocab.facts)}; define it in vocabulary.yaml or the authority's facts"
        if atom.op != "is":
            return f"{atom.path}: facts are true/false; test them with 'is' (or no operator)"
        return None
    ids = vocab.ids_for_path(atom.path)
    if ids is None:
        known = [*cond_mod.SCALAR_PATHS, *cond_mod.LIST_PATHS, "facts.<fact>"]
        return f"unknown path '{atom.path}'{did_you_mean(atom.path, known)}"
    is_list = atom.path in cond_mod.LIST_PATHS
    if is_list and atom.op not in ("contains", "contains_any", "subset_of"):
        return f"{atom.path} is a list: use contains, contains_any or subset_of, not {atom.op}"
    if not is_list and atom.op not in ("eq", "in"):
        return f"{atom.path} is a single value: use eq or in, not {atom.op}"
    values = atom.value if isinstance(atom.value, tuple) else (atom.value,)
    for value in values:
        if value not in ids:
            return f"unknown {atom.path} id '{value}'{did_you_mean(value, ids)}"
    return None


def _load_rules(path: Path, authority_id: str, pack_id: str, vocab: Vocabulary, col: _Collector) -> list[Rule]:
    read = col.read(path)
    if read is None:
        return []
    data, lines = read
    if not isinstance(data, dict) or "rules" not in data or not isinstance(data["rules"], list):
        col.add(path, lines, (), "a rule file must be a mapping with a 'rules' list")
        return []
    out: list[Rule] = []
    for i, raw_data in enumerate(data["rules"]):
        raw: RawRule | None = col.validate(RawRule, raw_data, path, lines, ("rules", i))
        if raw is None:
            continue
        where = ("rules", i)
        if not raw.id.startswith(authority_id + "."):
            col.add(
                path,
                lines,
                (*where, "id"),
                f"rule id '{raw.id}' must start with its authority id '{authority_id}.'",
            )
        if raw.kind != "consent" and raw.consent_elements:
            col.add(
                path,
                lines,
                (*where, "consent_elements"),
                f"{raw.id}: only consent rules carry consent_elements",
            )
        if raw.kind == "consent" and _reads_fact(raw.when, "valid_consent"):
            col.add(
                path,
                lines,
                (*where, "when"),
                f"{raw.id}: a consent rule must not test facts.valid_consent; the engine reads it",
            )
        base = _version(raw, None, vocab, col, path, lines, where)
        versions: list[RuleVersion] = []
        if raw.versions:
            for j, raw_version in enumerate(raw.versions):
                v = _version(raw, raw_version, vocab, col, path, lines, (*where, "versions", j))
                if v is not None:
                    versions.append(v)
        elif base is not None:
            versions.append(base)
        versions.sort(key=lambda v: v.effective_from)
        if raw.kind == "consent" and any(not v.consent_elements for v in versions):
            col.add(
                path,
                lines,
                (*where, "consent_elements"),
                f"{raw.id}: a consent rule must list its consent_elements (in every version)",
            )
        for a, b in itertools.pairwise(versions):
            if a.effective_to is None or a.effective_to >= b.effective_from:
                col.add(
                    path,
                    lines,
                    (*where, "versions"),
                    f"{raw.id}: versions {a.label} and {b.label} overlap",
                )
        for v in versions:
            if v.effective_to is not None and v.effective_to < v.effective_from:
                col.add(
                    path,
                    lines,
                    (*where, "versions"),
                    f"{raw.id}: version {v.label} ends before it starts",
                )
        out.append(
            Rule(
                id=raw.id,
                authority=authority_id,
                kind=raw.kind,
                title=raw.title.strip(),
                remedy=raw.remedy.strip() if raw.remedy else None,
                versions=tuple(versions),
                source=f"{col.rel(path)}:{line_of(lines, where)}",
                pack=pack_id,
            )
        )
    return out


def _reads_fact(raw: Any, fact: str) -> bool:
    if isinstance(raw, dict):
        if raw.get("fact") == f"facts.{fact}":
            return True
        return any(_reads_fact(v, fact) for v in raw.values())
    if isinstance(raw, list):
        return any(_reads_fact(v, fact) for v in raw)
    return False


def _version(
    raw: RawRule,
    override: RawVersion | None,
    vocab: Vocabulary,
    col: _Collector,
    path: Path,
    lines: Lines,
    where: tuple[Any, ...],
) -> RuleVersion | None:
    def pick(name: str) -> Any:
        value = getattr(override, name) if override is not None else None
        return getattr(raw, name) if value is None else value

    when = _condition(
        pick("when"),
        vocab,
        col,
        path,
        lines,
        (*where, "when") if override is not None and override.when is not None else (*where[:2], "when"),
    )
    documents = tuple(pick("documents"))
    for doc in documents:
        if doc not in vocab.documents:
            col.add(
                path,
                lines,
                (*where, "documents"),
                f"unknown document type '{doc}'{did_you_mean(doc, vocab.documents)}",
            )
    confidence = pick("confidence")
    notes = pick("notes")
    if confidence == "uncertain" and not notes:
        col.add(
            path,
            lines,
            where,
            f"{raw.id}: a rule with confidence uncertain must explain itself in notes",
        )
    if when is None:
        return None
    return RuleVersion(
        effective_from=override.effective_from if override is not None else raw.effective_from,
        effective_to=override.effective_to if override is not None else raw.effective_to,
        summary=" ".join(pick("summary").split()),
        citations=_citations(pick("citations")),
        when=when,
        obligations=_elements(pick("obligations")),
        documents=documents,
        consent_elements=_elements(pick("consent_elements")),
        confidence=confidence,
        needs_legal_review=bool(pick("needs_legal_review")),
        notes=" ".join(notes.split()) if notes else None,
    )


def _load_cases(path: Path, col: _Collector, pack_id: str = "shared") -> list[Case]:
    read = col.read(path)
    if read is None:
        return []
    data, lines = read
    if not isinstance(data, list):
        col.add(path, lines, (), "a cases file must be a list of cases")
        return []
    out = []
    for i, item in enumerate(data):
        raw = col.validate(RawCase, item, path, lines, (i,))
        if raw is not None:
            out.append(
                Case(
                    raw.name,
                    raw.request,
                    raw.expect,
                    raw.basis,
                    f"{col.rel(path)}:{line_of(lines, (i,))}",
                    pack_id,
                )
            )
    return out


def load_pack_cases(files: tuple[tuple[Path, str], ...]) -> tuple[Case, ...]:
    """Read the cases files of a pack; raise with every problem at once."""
    col = _Collector(files[0][0].parents[1] if files else Path("."))
    cases: list[Case] = []
    for path, pack_id in files:
        cases.extend(_load_cases(path, col, pack_id))
    if col.problems:
        raise InvalidLawPackError("the law pack's cases are invalid", col.problems)
    return tuple(cases)


def load_cases_file(path: Path) -> list[Case]:
    """Load a standalone cases file (such as the shared golden cases)."""
    col = _Collector(path.parent)
    cases = _load_cases(path, col)
    if col.problems:
        raise InvalidLawPackError(f"invalid cases file {path}", col.problems)
    return cases
