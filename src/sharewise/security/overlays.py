"""Security overlays (HIPAA Security Rule, IRS Publication 1075, ...) as law data: load, trigger, combine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from sharewise.domain.errors import InvalidLawPackError, Problem
from sharewise.policy import condition as cond_mod
from sharewise.policy.condition import LIST_PATHS, SCALAR_PATHS, Condition
from sharewise.policy.model import Vocabulary
from sharewise.policy.yamlfile import Lines, YamlProblem, line_of, read_yaml
from sharewise.security.categorize import LEVELS, OBJECTIVES, Floor, did_you_mean

CONFIDENCE = ("verified", "background", "uncertain")
STRICTER = ("higher", "lower", "none")
STATUSES = ("applies", "undetermined", "does_not_apply", "not_in_force")


@dataclass(frozen=True)
class ParameterDef:
    """A control parameter that overlays may set, and which direction is stricter."""

    id: str
    label: str
    control: str
    stricter: str  # higher | lower | none
    oscal_param: str | None = None
    unit: str = ""


@dataclass(frozen=True)
class Requirement:
    """One thing an overlay requires of the recipient, mapped to SP 800-53 controls."""

    id: str
    title: str
    duty: str
    evidence: tuple[str, ...]
    controls: tuple[str, ...]
    citations: tuple[str, ...]
    effective_from: dt.date | None


@dataclass(frozen=True)
class Overlay:
    """An overlay: when it applies, its citations, floors, parameters and requirements."""

    id: str
    title: str
    summary: str
    citations: tuple[str, ...]
    confidence: str
    effective_from: dt.date
    effective_to: dt.date | None
    when: Condition
    floors: tuple[tuple[str, str], ...]  # (objective, level)
    parameters: tuple[tuple[str, float | int], ...]
    requirements: tuple[Requirement, ...]
    notes: str | None
    source: str

    def in_force(self, as_of: dt.date) -> bool:
        return self.effective_from <= as_of and (self.effective_to is None or as_of <= self.effective_to)


@dataclass(frozen=True)
class OverlaySet:
    """Every overlay, the security facts their triggers may ask, and the parameter registry."""

    overlays: tuple[Overlay, ...]
    facts: Mapping[str, str]
    parameters: Mapping[str, ParameterDef]
    case_files: tuple[Path, ...]

    def overlay(self, overlay_id: str) -> Overlay | None:
        return next((o for o in self.overlays if o.id == overlay_id), None)


class OverlayStatus(BaseModel):
    """Whether an overlay applies to a share, why, and the questions that would settle it."""

    model_config = ConfigDict(frozen=True)

    overlay: str
    title: str
    status: str  # applies | undetermined | does_not_apply | not_in_force
    reasons: tuple[str, ...]
    questions: tuple[str, ...] = ()  # fact paths, e.g. facts.criminal_justice_information
    citations: tuple[str, ...] = ()
    confidence: str = "background"

    @property
    def binding(self) -> bool:
        """Applies, or might (fail closed: an undetermined overlay is kept)."""
        return self.status in ("applies", "undetermined")


class ResolvedParameter(BaseModel):
    """The value a parameter takes once every binding overlay is combined, and who set it."""

    model_config = ConfigDict(frozen=True)

    id: str
    label: str
    control: str
    value: float | int
    unit: str = ""
    oscal_param: str | None = None
    set_by: str
    considered: tuple[tuple[str, float | int], ...]


def _read(path: Path, root: Path) -> tuple[Any, Lines, str]:
    label = str(path.relative_to(root)) if path.is_relative_to(root) else path.name
    try:
        data, lines = read_yaml(path, label)
    except YamlProblem as exc:
        raise InvalidLawPackError(f"invalid security law file {label}", exc.problems) from exc
    return data, lines, label


def _date(value: Any, where: str, problems: list[Problem]) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value
    problems.append(Problem(where, f"must be a date (YYYY-MM-DD), got {value!r}"))
    return None


def _check_condition(
    cond: Condition, vocab: Vocabulary, facts: Mapping[str, str], where: str, problems: list[Problem]
) -> None:
    for atom, _ in cond_mod.atoms(cond):
        if atom.path.startswith("facts."):
            name = atom.path[6:]
            if name not in facts and name not in vocab.facts:
                problems.append(Problem(where, f"unknown fact '{name}'{did_you_mean(name, [*facts, *vocab.facts])}"))
            continue
        if atom.path not in SCALAR_PATHS and atom.path not in LIST_PATHS:
            problems.append(Problem(where, f"unknown request path '{atom.path}'"))
            continue
        ids = vocab.ids_for_path(atom.path)
        values = atom.value if isinstance(atom.value, tuple) else (atom.value,)
        for value in values:
            if ids is not None and value not in ids:
                problems.append(
                    Problem(where, f"'{value}' is not a known id for {atom.path}{did_you_mean(str(value), ids)}")
                )


def load_overlays(directory: Path, vocab: Vocabulary, control_ids: Iterable[str] | None = None) -> OverlaySet:
    """Read facts.yaml, parameters.yaml and overlays/*.yaml; report every problem with file:line."""
    problems: list[Problem] = []
    known_controls = set(control_ids) if control_ids is not None else None

    facts_raw, _, _ = _read(directory / "facts.yaml", directory)
    facts = {str(k): str(v.get("ask", "")) for k, v in (facts_raw or {}).get("facts", {}).items()}
    for name in facts:
        if name in vocab.facts:
            problems.append(Problem("facts.yaml", f"fact '{name}' is already a law pack fact; do not redeclare it"))

    params_raw, plines, plabel = _read(directory / "parameters.yaml", directory)
    parameters: dict[str, ParameterDef] = {}
    for pid, item in (params_raw or {}).get("parameters", {}).items():
        at = f"{plabel}:{line_of(plines, ('parameters', pid))}"
        if item.get("stricter") not in STRICTER:
            problems.append(Problem(at, f"stricter must be one of {', '.join(STRICTER)}"))
        control = str(item.get("control", ""))
        if known_controls is not None and control not in known_controls:
            problems.append(Problem(at, f"unknown control '{control}'"))
        parameters[pid] = ParameterDef(
            pid,
            str(item.get("label", pid)),
            control,
            str(item.get("stricter", "none")),
            str(item["oscal_param"]) if item.get("oscal_param") else None,
            str(item.get("unit", "")),
        )

    overlays: list[Overlay] = []
    case_files: list[Path] = []
    seen: dict[str, str] = {}
    requirement_ids: set[str] = set()
    for path in sorted((directory / "overlays").glob("*.yaml")):
        if path.name.endswith(".cases.yaml"):
            case_files.append(path)
            continue
        raw, lines, label = _read(path, directory)

        def where(*keys: Any, _lines: Lines = lines, _label: str = label) -> str:
            line = line_of(_lines, keys)
            return f"{_label}:{line}" if line else _label

        if not isinstance(raw, dict):
            problems.append(Problem(label, "an overlay file must be a mapping"))
            continue
        for key in ("id", "title", "summary", "citations", "confidence", "effective_from", "when"):
            if key not in raw:
                problems.append(Problem(where(), f"missing '{key}'"))
        oid = str(raw.get("id", path.stem))
        if oid in seen:
            problems.append(Problem(where("id"), f"overlay id '{oid}' is also used in {seen[oid]}"))
        seen[oid] = label
        if raw.get("confidence") not in CONFIDENCE:
            problems.append(Problem(where("confidence"), f"must be one of {', '.join(CONFIDENCE)}"))
        citations = tuple(str(c["cite"]) if isinstance(c, dict) else str(c) for c in raw.get("citations", []))
        if not citations:
            problems.append(Problem(where("citations"), "an overlay needs at least one citation"))
        when, cond_problems = cond_mod.parse(raw.get("when", {}), where("when"))
        problems += [Problem(where("when"), p) for p in cond_problems]
        if when is not None:
            _check_condition(when, vocab, facts, where("when"), problems)
        floors: list[tuple[str, str]] = []
        for objective, level in (raw.get("floor") or {}).items():
            if objective not in OBJECTIVES or level not in LEVELS:
                problems.append(
                    Problem(
                        where("floor", objective),
                        "a floor is an objective (confidentiality, integrity, availability) and a level",
                    )
                )
            else:
                floors.append((objective, level))
        settings: list[tuple[str, float | int]] = []
        for pid, value in (raw.get("parameters") or {}).items():
            if pid not in parameters:
                problems.append(
                    Problem(where("parameters", pid), f"unknown parameter '{pid}'{did_you_mean(pid, parameters)}")
                )
            elif not isinstance(value, int | float) or isinstance(value, bool):
                problems.append(Problem(where("parameters", pid), "a parameter value must be a number"))
            else:
                settings.append((pid, value))
        requirements: list[Requirement] = []
        for i, item in enumerate(raw.get("requirements") or []):
            at = where("requirements", i)
            for key in ("id", "title", "duty", "evidence", "controls", "citations"):
                if not item.get(key):
                    problems.append(Problem(at, f"requirement needs '{key}'"))
            rid = str(item.get("id", ""))
            if not rid.startswith(f"{oid}."):
                problems.append(Problem(at, f"requirement id '{rid}' must start with '{oid}.'"))
            if rid in requirement_ids:
                problems.append(Problem(at, f"duplicate requirement id '{rid}'"))
            requirement_ids.add(rid)
            controls = tuple(str(c) for c in item.get("controls", []))
            for control in controls:
                if known_controls is not None and control not in known_controls:
                    problems.append(Problem(at, f"unknown control '{control}'{did_you_mean(control, known_controls)}"))
            requirements.append(
                Requirement(
                    id=rid,
                    title=str(item.get("title", "")),
                    duty=str(item.get("duty", "")),
                    evidence=tuple(str(e) for e in item.get("evidence", [])),
                    controls=controls,
                    citations=tuple(str(c) for c in item.get("citations", [])),
                    effective_from=_date(item.get("effective_from"), at, problems),
                )
            )
        start = _date(raw.get("effective_from"), where("effective_from"), problems)
        overlays.append(
            Overlay(
                id=oid,
                title=str(raw.get("title", "")),
                summary=" ".join(str(raw.get("summary", "")).split()),
                citations=citations,
                confidence=str(raw.get("confidence", "uncertain")),
                effective_from=start or dt.date.min,
                effective_to=_date(raw.get("effective_to"), where("effective_to"), problems),
                when=when or cond_mod.Always(False),
                floors=tuple(floors),
                parameters=tuple(settings),
                requirements=tuple(requirements),
                notes=" ".join(str(raw["notes"]).split()) if raw.get("notes") else None,
                source=label,
            )
        )
    if problems:
        raise InvalidLawPackError("invalid security overlays", problems)
    return OverlaySet(tuple(overlays), facts, parameters, tuple(case_files))


def overlay_lookup(base: cond_mod.Lookup, security_facts: Mapping[str, bool]) -> cond_mod.Lookup:
    """The request's lookup, with security facts answering the facts.* paths the request leaves open.

    A recipient without a program has none: for overlays that is a known answer, not an unknown.
    """

    def lookup(path: str) -> Any:
        value = base(path)
        if value is cond_mod.MISSING and path == "recipient.program":
            return None
        if value is cond_mod.MISSING and path.startswith("facts.") and path[6:] in security_facts:
            return security_facts[path[6:]]
        return value

    return lookup


def select(overlays: OverlaySet, lookup: cond_mod.Lookup, as_of: dt.date) -> list[OverlayStatus]:
    """Evaluate every overlay's trigger (three-valued): applies, undetermined, does not apply, not in force."""
    statuses: list[OverlayStatus] = []
    for overlay in overlays.overlays:
        common = {
            "overlay": overlay.id,
            "title": overlay.title,
            "citations": overlay.citations,
            "confidence": overlay.confidence,
        }
        if not overlay.in_force(as_of):
            statuses.append(OverlayStatus(status="not_in_force", reasons=(f"not in force on {as_of}",), **common))
            continue
        value, unknown = cond_mod.evaluate(overlay.when, lookup)
        if value is None:
            statuses.append(
                OverlayStatus(
                    status="undetermined",
                    reasons=tuple(f"{overlays.facts.get(p[6:], p)}" for p in sorted(unknown)),
                    questions=tuple(sorted(unknown)),
                    **common,
                )
            )
        else:
            statuses.append(
                OverlayStatus(
                    status="applies" if value else "does_not_apply",
                    reasons=tuple(cond_mod.reasons(overlay.when, lookup)),
                    **common,
                )
            )
    return statuses


def floors_of(overlays: OverlaySet, statuses: Iterable[OverlayStatus]) -> list[Floor]:
    """The impact floors of every binding overlay."""
    floors: list[Floor] = []
    for status in statuses:
        overlay = overlays.overlay(status.overlay)
        if overlay is not None and status.binding:
            floors += [
                Floor.model_validate({"objective": o, "level": lv, "overlay": overlay.id}) for o, lv in overlay.floors
            ]
    return floors


def resolve_parameters(overlays: OverlaySet, statuses: Iterable[OverlayStatus]) -> list[ResolvedParameter]:
    """Combine the parameters of binding overlays: the stricter value wins; different fixed values contradict."""
    binding = [o for s in statuses if s.binding and (o := overlays.overlay(s.overlay)) is not None]
    by_param: dict[str, list[tuple[str, float | int]]] = {}
    for overlay in binding:
        for pid, value in overlay.parameters:
            by_param.setdefault(pid, []).append((overlay.id, value))
    resolved: list[ResolvedParameter] = []
    contradictions: list[Problem] = []
    for pid, values in sorted(by_param.items()):
        definition = overlays.parameters[pid]
        if definition.stricter == "none":
            if len({v for _, v in values}) > 1:
                contradictions.append(
                    Problem(pid, "; ".join(f"{oid} sets {v}" for oid, v in values) + " and neither is stricter")
                )
                continue
            chosen = values[0]
        elif definition.stricter == "higher":
            chosen = max(values, key=lambda item: item[1])
        else:
            chosen = min(values, key=lambda item: item[1])
        resolved.append(
            ResolvedParameter(
                id=pid,
                label=definition.label,
                control=definition.control,
                value=chosen[1],
                unit=definition.unit,
                oscal_param=definition.oscal_param,
                set_by=chosen[0],
                considered=tuple(values),
            )
        )
    if contradictions:
        raise InvalidLawPackError(
            "contradictory overlays: they set the same control parameter to different values; "
            "resolve it in the law files or have counsel decide",
            contradictions,
        )
    return resolved
