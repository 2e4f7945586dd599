"""k-anonymity after Safe Harbor: generalize quasi-identifiers, suppress small classes, report the residual risk."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sharewise.pipeline.spec import DeidentificationOptions, FieldPlan
from sharewise.pipeline.sql import group_profile_sql, hierarchy


@dataclass(frozen=True)
class GroupProfile:
    """The equivalence classes of the records over the quasi-identifiers at some generalization."""

    records: int
    classes: int
    records_in_small_classes: int
    smallest_kept_class: int
    kept_classes: int


@dataclass(frozen=True)
class RiskReport:
    """What the k-anonymity step did and the re-identification risk that remains (prosecutor model)."""

    k: int
    quasi_identifiers: tuple[str, ...]
    levels: dict[str, int]
    records_in: int
    records_suppressed: int
    classes: int
    smallest_class: int
    max_risk: float  # 1 / smallest class: the chance of re-identifying the most exposed record
    average_risk: float  # classes / records

    def as_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "quasi_identifiers": list(self.quasi_identifiers),
            "generalization_levels": dict(self.levels),
            "records_in": self.records_in,
            "records_suppressed": self.records_suppressed,
            "equivalence_classes": self.classes,
            "smallest_class": self.smallest_class,
            "max_reidentification_risk": round(self.max_risk, 6),
            "average_reidentification_risk": round(self.average_risk, 6),
        }


def _profile(query: Callable[[str], list[tuple[Any, ...]]], base: str, qis: Sequence[str], k: int) -> GroupProfile:
    row = query(group_profile_sql(base, qis, k))[0]
    return GroupProfile(*(int(v) for v in row))


def search_levels(
    query: Callable[[str], list[tuple[Any, ...]]],
    base: str,
    plans: Sequence[FieldPlan],
    options: DeidentificationOptions,
) -> RiskReport:
    """Greedy global recoding: raise the one quasi-identifier whose next level leaves the fewest records in classes
    smaller than k, until at most max_suppression of the records would have to be withheld; the rest are withheld.

    Each step is one aggregate query on the engine; the records never come to Python.
    """
    qi_plans = [p for p in plans if p.quasi_identifier]
    levels = {p.name: 0 for p in qi_plans}
    k = options.k
    if not qi_plans:
        count = int(query(f"SELECT COUNT(*) FROM ({base}) AS sw_all")[0][0])
        return RiskReport(
            k, (), {}, count, 0, 1 if count else 0, count, 1 / count if count else 0.0, 1 / count if count else 0.0
        )

    def expressions(lv: dict[str, int]) -> list[str]:
        return [hierarchy(p)[lv[p.name]] for p in qi_plans]

    profile = _profile(query, base, expressions(levels), k)
    allowed = options.max_suppression * profile.records
    while profile.records_in_small_classes > allowed:
        best: tuple[int, int, dict[str, int], GroupProfile] | None = None
        for p in qi_plans:
            if levels[p.name] + 1 >= len(hierarchy(p)):
                continue
            candidate = {**levels, p.name: levels[p.name] + 1}
            trial = _profile(query, base, expressions(candidate), k)
            # Fewest records lost; on a tie, the least generalized field overall.
            score = (trial.records_in_small_classes, sum(candidate.values()))
            if best is None or score < (best[0], best[1]):
                best = (score[0], score[1], candidate, trial)
        if best is None:
            break  # every quasi-identifier fully suppressed: what remains is withheld
        levels, profile = best[2], best[3]
    kept = profile.records - profile.records_in_small_classes
    smallest = profile.smallest_kept_class
    return RiskReport(
        k=k,
        quasi_identifiers=tuple(p.name for p in qi_plans),
        levels=levels,
        records_in=profile.records,
        records_suppressed=profile.records_in_small_classes,
        classes=profile.kept_classes,
        smallest_class=smallest,
        max_risk=1 / smallest if smallest else 0.0,
        average_risk=profile.kept_classes / kept if kept else 0.0,
    )
