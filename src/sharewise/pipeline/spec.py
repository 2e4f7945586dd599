"""The share specification: the minimum necessary fields of an approved share and how each leaves."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sharewise.domain.errors import InvalidDataError, Problem
from sharewise.pipeline.dictionary import LIMITED_DATA_SET_REMOVES, DataDictionary, FieldEntry

FORMS = ("identified", "limited_data_set", "deidentified", "aggregate")

# Transformations a field may undergo on its way out.
KEEP = "keep"
PSEUDONYMIZE = "pseudonymize"  # keyed HMAC-SHA256 token
YEAR = "year"  # a date reduced to its year
BIRTH_YEAR = "birth_year"  # a birth date reduced to its year; years indicative of age over 89 withheld
AGE_TOP_CODED = "age_90_plus"  # ages over 89 reported as 90+
ZIP3 = "zip3"  # ZIP code reduced to 3 digits, 000 for restricted prefixes
DATE_SHIFT = "date_shift"  # a date moved by its person's keyed shift (the same for all of that person's dates)

DATE_SHIFT_FORMS = ("identified", "limited_data_set")
MAX_SHIFT_DAYS = 3650  # ten years: a larger shift would leave dates that no analysis could use
_PERSON_TYPES = ("string", "integer")  # types whose text is the same on every engine


@dataclass(frozen=True)
class FieldPlan:
    """A field that leaves, and how."""

    name: str
    category: str
    identifier: str
    type: str
    transform: str
    kind: str | None = None
    date_format: str | None = None
    quasi_identifier: bool = False  # part of the k-anonymity check (deidentified form)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "category": self.category,
            "identifier": self.identifier,
            "transform": self.transform,
            **({"quasi_identifier": True} if self.quasi_identifier else {}),
        }


@dataclass(frozen=True)
class DroppedField:
    """A field that stays behind, with the reason."""

    name: str
    reason: str


@dataclass(frozen=True)
class DeidentificationOptions:
    """Settings of the k-anonymity check that follows Safe Harbor."""

    k: int = 5
    max_suppression: float = 0.05  # share of records that may be withheld before generalizing further


@dataclass(frozen=True)
class AggregateOptions:
    """Settings of an aggregate share: the dimensions and the small-cell threshold."""

    by: tuple[str, ...] = ()
    hide_at_most: int = 10  # cells with counts 1..hide_at_most are hidden


@dataclass(frozen=True)
class DateShiftOptions:
    """What a share file asks: shift every date of a person by the same keyed number of days."""

    by: str  # the field that identifies the person (it need not leave)
    max_days: int = 180


@dataclass(frozen=True)
class DateShift:
    """The person field whose keyed digest sets each person's shift, and the largest shift in days (either way)."""

    person: FieldPlan
    max_days: int

    def as_dict(self) -> dict[str, Any]:
        return {"by": self.person.name, "max_days": self.max_days}


@dataclass(frozen=True)
class ShareSpec:
    """What leaves in one share: fields with their transformations, and what stays with why."""

    form: str
    fields: tuple[FieldPlan, ...]
    dropped: tuple[DroppedField, ...]
    permitted_categories: tuple[str, ...]
    deidentification: DeidentificationOptions = field(default_factory=DeidentificationOptions)
    aggregate: AggregateOptions = field(default_factory=AggregateOptions)
    date_shift: DateShift | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def pseudonymized(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.transform == PSEUDONYMIZE)

    @property
    def shifted_dates(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.transform == DATE_SHIFT)

    @property
    def needs_key(self) -> bool:
        """Whether the agreement's pseudonym key is needed: for pseudonyms or for date shifts."""
        return bool(self.pseudonymized or self.date_shift)

    @property
    def quasi_identifiers(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.quasi_identifier)

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(sorted({f.category for f in self.fields}))

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "form": self.form,
            "permitted_categories": list(self.permitted_categories),
            "fields": [f.as_dict() for f in self.fields],
            "dropped": [{"name": d.name, "reason": d.reason} for d in self.dropped],
        }
        if self.form == "deidentified":
            data["k"] = self.deidentification.k
            data["max_suppression"] = self.deidentification.max_suppression
        if self.form == "aggregate":
            data["aggregate_by"] = list(self.aggregate.by)
            data["hide_at_most"] = self.aggregate.hide_at_most
        if self.date_shift is not None:
            data["date_shift"] = self.date_shift.as_dict()
        return data


def build_spec(
    dictionary: DataDictionary,
    source_columns: Sequence[str],
    needed: Sequence[str],
    permitted_categories: Iterable[str],
    form: str,
    pseudonymize: Sequence[str] = (),
    deidentification: DeidentificationOptions | None = None,
    aggregate: AggregateOptions | None = None,
    date_shift: DateShiftOptions | None = None,
) -> ShareSpec:
    """Apply minimum necessary, the determination's categories and the form's rules to the source fields.

    A field leaves only if the dictionary maps it, the requester needs it, the determination
    covers its category and the form allows it. Every other source field is listed with why.
    With date_shift, every date that leaves as it is (not pseudonymized) is shifted instead.
    """
    if form not in FORMS:
        raise InvalidDataError("invalid share", [Problem("form", f"'{form}' is not one of {', '.join(FORMS)}")])
    permitted = tuple(dict.fromkeys(permitted_categories))
    deid = deidentification or DeidentificationOptions()
    agg = aggregate or AggregateOptions()
    problems: list[Problem] = []
    source = list(dict.fromkeys(source_columns))
    needed_set = list(dict.fromkeys(needed))
    for name in needed_set:
        if name not in source:
            problems.append(Problem(f"needs: {name}", "the source has no such column"))
        elif dictionary.get(name) is None:
            problems.append(Problem(f"needs: {name}", f"no data dictionary maps this column ({dictionary.source})"))
    for name in pseudonymize:
        if name not in needed_set:
            problems.append(Problem(f"pseudonymize: {name}", "only needed fields can be pseudonymized"))
    if form == "deidentified" and pseudonymize:
        problems.append(
            Problem(
                "pseudonymize",
                "not allowed in a de-identified share: Safe Harbor allows no code derived from an identifier",
            )
        )
    if form == "aggregate":
        for name in agg.by:
            if name not in needed_set:
                problems.append(Problem(f"aggregate.by: {name}", "each dimension must be a needed field"))
    if deid.k < 2:
        problems.append(Problem("deidentification.k", "k must be at least 2"))
    if not 0 <= deid.max_suppression < 1:
        problems.append(Problem("deidentification.max_suppression", "a share between 0 and 1"))
    if agg.hide_at_most < 0:
        problems.append(Problem("aggregate.hide_at_most", "must not be negative"))
    shift = _date_shift(dictionary, source, form, date_shift, problems) if date_shift is not None else None
    if problems:
        raise InvalidDataError("invalid share", problems)

    plans: list[FieldPlan] = []
    dropped: list[DroppedField] = []
    for name in source:
        entry = dictionary.get(name)
        if entry is None:
            dropped.append(DroppedField(name, "unmapped: no data dictionary maps this field"))
            continue
        if name not in needed_set:
            dropped.append(DroppedField(name, "minimum necessary: the requester does not need it"))
            continue
        category = effective_category(entry, form)
        if category not in permitted:
            dropped.append(DroppedField(name, f"category {category} is not covered by the determination"))
            continue
        outcome = _plan_for_form(entry, form, name in pseudonymize, agg)
        if isinstance(outcome, DroppedField):
            dropped.append(outcome)
        elif shift is not None and outcome.type == "date" and outcome.transform == KEEP:
            plans.append(replace(outcome, transform=DATE_SHIFT))
        else:
            plans.append(outcome)
    if form == "aggregate":
        kept = {p.name for p in plans}
        lost = [
            Problem(f"aggregate.by: {n}", "this dimension cannot leave (see the dropped fields)")
            for n in agg.by
            if n not in kept
        ]
        if lost:
            raise InvalidDataError("invalid share", lost)
        plans = [p for n in agg.by for p in plans if p.name == n]
    if not plans:
        raise InvalidDataError("invalid share", [Problem("needs", "no needed field may leave: nothing to share")])
    if shift is not None and not any(p.transform == DATE_SHIFT for p in plans):
        raise InvalidDataError(
            "invalid share", [Problem("date_shift", "no date field leaves in this share as a date: nothing to shift")]
        )
    return ShareSpec(form, tuple(plans), tuple(dropped), permitted, deid, agg, shift)


def _date_shift(
    dictionary: DataDictionary, source: list[str], form: str, options: DateShiftOptions, problems: list[Problem]
) -> DateShift | None:
    """Check a date-shift request; the person field is read as the dictionary types it."""
    before = len(problems)
    if form == "deidentified":
        problems.append(
            Problem("date_shift", "not allowed in a de-identified share: Safe Harbor reduces every date to its year")
        )
    elif form not in DATE_SHIFT_FORMS:
        problems.append(Problem("date_shift", "not allowed in an aggregate share: it publishes counts, not dates"))
    if isinstance(options.max_days, bool) or not isinstance(options.max_days, int):
        problems.append(Problem("date_shift.max_days", "a whole number of days"))
    elif not 1 <= options.max_days <= MAX_SHIFT_DAYS:
        problems.append(Problem("date_shift.max_days", f"from 1 to {MAX_SHIFT_DAYS} days"))
    entry = dictionary.get(options.by)
    where = f"date_shift.by: {options.by}"
    if options.by not in source:
        problems.append(Problem(where, "the source has no such column"))
    elif entry is None:
        problems.append(Problem(where, f"no data dictionary maps this column ({dictionary.source})"))
    elif not entry.is_direct or entry.type not in _PERSON_TYPES:
        problems.append(
            Problem(
                where, "the person field must be a direct identifier of type string or integer, such as a client id"
            )
        )
    if len(problems) > before or entry is None:
        return None
    person = FieldPlan(entry.name, entry.category, entry.identifier, entry.type, KEEP, entry.kind, entry.date_format)
    return DateShift(person, options.max_days)


def effective_category(entry: FieldEntry, form: str) -> str:
    """The data category a field has once it leaves in the given form.

    Safe Harbor reduces a birth date to a year, an age to a top-coded age and a ZIP code to
    three digits; what is left describes a population, not a person's identity or contact,
    so in de-identified and aggregate shares it counts as demographics (the categories a
    de-identified request may name).
    """
    reduced = _safe_harbor_reduction(entry) in (ZIP3, BIRTH_YEAR, AGE_TOP_CODED)
    if form in ("deidentified", "aggregate") and entry.category in ("identity", "contact") and reduced:
        return "demographics"
    return entry.category


def _plan_for_form(entry: FieldEntry, form: str, pseudonymize: bool, agg: AggregateOptions) -> FieldPlan | DroppedField:
    def plan(transform: str, quasi: bool = False) -> FieldPlan:
        return FieldPlan(
            name=entry.name,
            category=effective_category(entry, form),
            identifier=entry.identifier,
            type=entry.type,
            transform=transform,
            kind=entry.kind,
            date_format=entry.date_format,
            quasi_identifier=quasi,
        )

    if form == "identified":
        return plan(PSEUDONYMIZE if pseudonymize else KEEP)
    if form == "limited_data_set":
        if entry.kind in LIMITED_DATA_SET_REMOVES:
            if pseudonymize:
                return plan(PSEUDONYMIZE)
            return DroppedField(entry.name, f"direct identifier ({entry.kind}) removed from a limited data set")
        return plan(PSEUDONYMIZE if pseudonymize else KEEP)
    # deidentified and aggregate both apply Safe Harbor first.
    reduction = _safe_harbor_reduction(entry)
    if reduction is None:
        what = entry.kind or entry.identifier
        return DroppedField(entry.name, f"Safe Harbor identifier ({what}) removed from de-identified data")
    if form == "aggregate":
        if entry.name not in agg.by:
            return DroppedField(entry.name, "aggregate share: not a dimension of the table")
        return plan(reduction)
    quasi = entry.identifier == "quasi" or reduction != KEEP
    return plan(reduction, quasi=quasi)


def _safe_harbor_reduction(entry: FieldEntry) -> str | None:
    """How Safe Harbor lets a field leave, or None when it must be removed."""
    if entry.type == "date":
        # Every date element directly related to an individual, except the year.
        return BIRTH_YEAR if entry.kind == "birth_date" else YEAR
    if entry.kind == "zip" and entry.type in ("string", "integer"):
        return ZIP3
    if entry.kind == "age" and entry.type == "integer":
        return AGE_TOP_CODED
    if entry.kind is not None or entry.identifier == "direct":
        return None
    return KEEP
