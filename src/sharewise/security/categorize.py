"""FIPS 199 security categorization of a share from its data categories, form, volume and purpose."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from sharewise.domain.errors import InvalidDataError, InvalidLawPackError, Problem
from sharewise.policy.yamlfile import YamlProblem, line_of, read_yaml

Level = Literal["low", "moderate", "high"]
LEVELS: tuple[Level, ...] = ("low", "moderate", "high")
OBJECTIVES = ("confidentiality", "integrity", "availability")
FORMS = ("identified", "limited_data_set", "deidentified", "aggregate")


def rank(level: str) -> int:
    """low 0, moderate 1, high 2."""
    return ("low", "moderate", "high").index(level)


def _step(level: Level, change: int) -> Level:
    return LEVELS[max(0, min(len(LEVELS) - 1, rank(level) + change))]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A suggestion suffix for an unknown id, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass(frozen=True)
class InformationType:
    """A data category as an information type with provisional impact levels (SP 800-60 manner)."""

    category: str
    name: str
    levels: Mapping[str, Level]
    rationale: str
    citations: tuple[str, ...]
    confidence: str


@dataclass(frozen=True)
class FormRule:
    """How one form of share changes confidentiality."""

    change: int
    cap: Level | None
    floor: Level | None
    reason: str


@dataclass(frozen=True)
class CategorizationRules:
    """Information types and the form, volume and purpose adjustments, as read from law data."""

    types: Mapping[str, InformationType]
    forms: Mapping[str, FormRule]
    volume_threshold: int
    volume_change: int
    volume_forms: tuple[str, ...]
    volume_reason: str
    availability_purposes: tuple[str, ...]
    purpose_reason: str
    privacy_forms: tuple[str, ...]
    privacy_reason: str
    references: tuple[str, ...]
    source: str


class Reason(BaseModel):
    """One step of the reasoning: what set or changed a level, and why."""

    model_config = ConfigDict(frozen=True)

    objective: str
    level: Level
    source: str  # information_type | form | volume | purpose | overlay | reviewer
    subject: str
    explanation: str


class Adjustment(BaseModel):
    """A reviewer's change to a level, with the recorded justification."""

    model_config = ConfigDict(frozen=True)

    objective: str
    from_level: Level
    to_level: Level
    justification: str
    reviewer: str

    @property
    def lowered(self) -> bool:
        return rank(self.to_level) < rank(self.from_level)


class Floor(BaseModel):
    """A minimum level that an overlay sets for one objective."""

    model_config = ConfigDict(frozen=True)

    objective: str
    level: Level
    overlay: str


class Categorization(BaseModel):
    """The FIPS 199 categorization of one share, with its reasons and any reviewer changes."""

    model_config = ConfigDict(frozen=True)

    data: tuple[str, ...]
    form: str
    purpose: str
    records: int | None
    confidentiality: Level
    integrity: Level
    availability: Level
    reasons: tuple[Reason, ...]
    floors: tuple[Floor, ...] = ()
    adjustments: tuple[Adjustment, ...] = ()
    privacy: bool
    privacy_reason: str

    def level(self, objective: str) -> Level:
        value: Level = getattr(self, objective)
        return value

    @property
    def overall(self) -> Level:
        """The high-water mark of the three objectives (FIPS 200)."""
        return max((self.confidentiality, self.integrity, self.availability), key=rank)

    @property
    def baseline(self) -> str:
        """The NIST SP 800-53B control baseline the categorization selects."""
        return {"low": "LOW", "moderate": "MODERATE", "high": "HIGH"}[self.overall]

    def floor_for(self, objective: str) -> Floor | None:
        applicable = [f for f in self.floors if f.objective == objective]
        return max(applicable, key=lambda f: rank(f.level)) if applicable else None

    def summary(self) -> str:
        return (
            f"SC = {{(confidentiality, {self.confidentiality}), (integrity, {self.integrity}), "
            f"(availability, {self.availability})}}"
        )


def _level(value: Any, where: str, problems: list[Problem]) -> Level:
    if value not in LEVELS:
        problems.append(Problem(where, f"must be one of {', '.join(LEVELS)}, got {value!r}"))
        return "high"
    level: Level = value
    return level


def load_rules(path: Path, data_categories: Mapping[str, str], purposes: Mapping[str, str]) -> CategorizationRules:
    """Read information-types.yaml and check it covers exactly the vocabulary's data categories."""
    label = path.name
    try:
        raw, lines = read_yaml(path, label)
    except YamlProblem as exc:
        raise InvalidLawPackError(f"invalid security law file {label}", exc.problems) from exc
    problems: list[Problem] = []

    def where(*keys: Any) -> str:
        line = line_of(lines, keys)
        return f"{label}:{line}" if line else label

    if not isinstance(raw, dict):
        raise InvalidLawPackError(f"invalid security law file {label}", [Problem(label, "must be a mapping")])
    types: dict[str, InformationType] = {}
    for category, item in (raw.get("information_types") or {}).items():
        if category not in data_categories:
            problems.append(
                Problem(
                    where("information_types", category),
                    f"unknown data category '{category}'{did_you_mean(category, data_categories)}",
                )
            )
            continue
        if not isinstance(item, dict):
            problems.append(Problem(where("information_types", category), "must be a mapping"))
            continue
        levels = {o: _level(item.get(o), where("information_types", category, o), problems) for o in OBJECTIVES}
        for key in ("information_type", "rationale"):
            if not item.get(key):
                problems.append(Problem(where("information_types", category), f"missing '{key}'"))
        types[category] = InformationType(
            category=category,
            name=str(item.get("information_type", "")),
            levels=levels,
            rationale=str(item.get("rationale", "")),
            citations=tuple(item.get("citations", [])),
            confidence=str(item.get("confidence", "uncertain")),
        )
    for category in data_categories:
        if category not in types:
            problems.append(Problem(where("information_types"), f"data category '{category}' has no information type"))
    forms: dict[str, FormRule] = {}
    for form in FORMS:
        item = (raw.get("forms") or {}).get(form)
        if not isinstance(item, dict):
            problems.append(Problem(where("forms"), f"form '{form}' has no rule"))
            continue
        forms[form] = FormRule(
            change=int(item.get("change", 0)),
            cap=_level(item["cap"], where("forms", form, "cap"), problems) if "cap" in item else None,
            floor=_level(item["floor"], where("forms", form, "floor"), problems) if "floor" in item else None,
            reason=str(item.get("reason", "")),
        )
    volume = raw.get("volume") or {}
    purpose_rules = raw.get("purposes") or {}
    for purpose in purpose_rules.get("availability_moderate", []):
        if purpose not in purposes:
            problems.append(
                Problem(
                    where("purposes", "availability_moderate"),
                    f"unknown purpose '{purpose}'{did_you_mean(purpose, purposes)}",
                )
            )
    privacy_forms = tuple(raw.get("privacy_baseline_forms", []))
    for form in privacy_forms:
        if form not in FORMS:
            problems.append(Problem(where("privacy_baseline_forms"), f"unknown form '{form}'"))
    if problems:
        raise InvalidLawPackError(f"invalid security law file {label}", problems)
    return CategorizationRules(
        types=types,
        forms=forms,
        volume_threshold=int(volume.get("records_at_least", 0)),
        volume_change=int(volume.get("change", 0)),
        volume_forms=tuple(volume.get("forms", [])),
        volume_reason=str(volume.get("reason", "")),
        availability_purposes=tuple(purpose_rules.get("availability_moderate", [])),
        purpose_reason=str(purpose_rules.get("reason", "")),
        privacy_forms=privacy_forms,
        privacy_reason=" ".join(str(raw.get("privacy_reason", "")).split()),
        references=tuple(str(r["cite"]) for r in raw.get("reference", []) if isinstance(r, dict) and "cite" in r),
        source=label,
    )


def categorize(
    rules: CategorizationRules, data: Iterable[str], form: str, purpose: str, records: int | None = None
) -> Categorization:
    """Categorize a share: the high-water mark of its information types, then form, volume and purpose."""
    data = tuple(data)
    problems = [
        Problem(f"data[{i}]", f"unknown data category '{c}'{did_you_mean(c, rules.types)}")
        for i, c in enumerate(data)
        if c not in rules.types
    ]
    if form not in rules.forms:
        problems.append(Problem("form", f"unknown form '{form}'{did_you_mean(form, rules.forms)}"))
    if records is not None and records < 0:
        problems.append(Problem("records", "the number of records cannot be negative"))
    if not data:
        problems.append(Problem("data", "at least one data category is needed"))
    if problems:
        raise InvalidDataError("cannot categorize the share", problems)
    reasons: list[Reason] = []
    levels: dict[str, Level] = {}
    for objective in OBJECTIVES:
        level: Level = "low"
        for category in data:
            info = rules.types[category]
            category_level = info.levels[objective]
            level = max(level, category_level, key=rank)
            reasons.append(
                Reason(
                    objective=objective,
                    level=category_level,
                    source="information_type",
                    subject=category,
                    explanation=f"{info.name}: {info.rationale}",
                )
            )
        levels[objective] = level
    rule = rules.forms[form]
    before = levels["confidentiality"]
    after = _step(before, rule.change)
    if rule.floor is not None and rank(after) < rank(rule.floor):
        after = rule.floor if rank(rule.floor) <= rank(before) else before
    if rule.cap is not None and rank(after) > rank(rule.cap):
        after = rule.cap
    if after != before:
        reasons.append(
            Reason(objective="confidentiality", level=after, source="form", subject=form, explanation=rule.reason)
        )
    levels["confidentiality"] = after
    if (
        records is not None
        and form in rules.volume_forms
        and rules.volume_threshold
        and records >= rules.volume_threshold
    ):
        raised = _step(levels["confidentiality"], rules.volume_change)
        if raised != levels["confidentiality"]:
            reasons.append(
                Reason(
                    objective="confidentiality",
                    level=raised,
                    source="volume",
                    subject=f"{records} records",
                    explanation=f"{rules.volume_reason} (at least {rules.volume_threshold} records)",
                )
            )
            levels["confidentiality"] = raised
    if purpose in rules.availability_purposes and rank(levels["availability"]) < rank("moderate"):
        levels["availability"] = "moderate"
        reasons.append(
            Reason(
                objective="availability",
                level="moderate",
                source="purpose",
                subject=purpose,
                explanation=rules.purpose_reason,
            )
        )
    privacy = form in rules.privacy_forms
    return Categorization(
        data=data,
        form=form,
        purpose=purpose,
        records=records,
        confidentiality=levels["confidentiality"],
        integrity=levels["integrity"],
        availability=levels["availability"],
        reasons=tuple(reasons),
        privacy=privacy,
        privacy_reason=rules.privacy_reason
        if privacy
        else f"a share in form {form} carries no personally identifiable information",
    )


def apply_floors(categorization: Categorization, floors: Iterable[Floor]) -> Categorization:
    """Raise each objective to the floors that applicable overlays set, saying which overlay raised it."""
    floors = tuple(floors)
    levels = {o: categorization.level(o) for o in OBJECTIVES}
    reasons = list(categorization.reasons)
    for floor in sorted(floors, key=lambda f: (f.objective, -rank(f.level), f.overlay)):
        if rank(floor.level) > rank(levels[floor.objective]):
            levels[floor.objective] = floor.level
            reasons.append(
                Reason(
                    objective=floor.objective,
                    level=floor.level,
                    source="overlay",
                    subject=floor.overlay,
                    explanation=f"the {floor.overlay} overlay requires at least {floor.level} {floor.objective}",
                )
            )
    return categorization.model_copy(
        update={**levels, "reasons": tuple(reasons), "floors": (*categorization.floors, *floors)}
    )


def adjust(
    categorization: Categorization, objective: str, level: str, justification: str | None, reviewer: str
) -> Categorization:
    """A reviewer's change to one objective: raising or lowering both need a justification, and never below a floor."""
    problems: list[Problem] = []
    if objective not in OBJECTIVES:
        problems.append(Problem("objective", f"unknown objective '{objective}'{did_you_mean(objective, OBJECTIVES)}"))
    if level not in LEVELS:
        problems.append(Problem("level", f"must be one of {', '.join(LEVELS)}, got '{level}'"))
    if problems:
        raise InvalidDataError("invalid categorization change", problems)
    current = categorization.level(objective)
    target: Level = level  # type: ignore[assignment]
    if target == current:
        raise InvalidDataError(
            "invalid categorization change", [Problem(objective, f"is already {current}; nothing to change")]
        )
    lowering = rank(target) < rank(current)
    if not (justification and justification.strip()):
        verb = "lowering" if lowering else "raising"
        raise InvalidDataError(
            f"{verb} {objective} from {current} to {target} needs a recorded justification",
            [Problem("justification", f"give the reason for {verb} the categorization (--justification)")],
        )
    floor = categorization.floor_for(objective)
    if lowering and floor is not None and rank(target) < rank(floor.level):
        raise InvalidDataError(
            f"cannot lower {objective} to {target}",
            [Problem(objective, f"the {floor.overlay} overlay requires at least {floor.level}")],
        )
    change = Adjustment(
        objective=objective, from_level=current, to_level=target, justification=justification.strip(), reviewer=reviewer
    )
    reason = Reason(
        objective=objective,
        level=target,
        source="reviewer",
        subject=reviewer,
        explanation=f"{'lowered' if lowering else 'raised'} by the reviewer: {change.justification}",
    )
    return categorization.model_copy(
        update={
            objective: target,
            "adjustments": (*categorization.adjustments, change),
            "reasons": (*categorization.reasons, reason),
        }
    )
