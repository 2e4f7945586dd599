"""Outcomes and the lattice that combines them: the most restrictive wins."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """The answer for one authority, or for a whole request."""

    PERMITTED = "permitted"
    CONSENT_REQUIRED = "consent_required"
    NEEDS_FACTS = "needs_facts"
    NEEDS_LEGAL_REVIEW = "needs_legal_review"
    PROHIBITED = "prohibited"

    @property
    def rank(self) -> int:
        """Position in the lattice: higher is more restrictive."""
        return _RANK[self]


# Why this order: a prohibition cannot be cured, so it dominates. A question for counsel comes
# next because no fact or consent settles it. Unknown facts come before consent because the
# missing facts may still lead to a prohibition (or to a pathway that needs no consent).
_RANK = {
    Outcome.PERMITTED: 0,
    Outcome.CONSENT_REQUIRED: 1,
    Outcome.NEEDS_FACTS: 2,
    Outcome.NEEDS_LEGAL_REVIEW: 3,
    Outcome.PROHIBITED: 4,
}

LATTICE: tuple[Outcome, ...] = tuple(sorted(Outcome, key=lambda o: _RANK[o]))


def combine(outcomes: list[Outcome]) -> Outcome:
    """Combine per-authority outcomes: the most restrictive wins; no authority fails closed."""
    if not outcomes:
        return Outcome.NEEDS_LEGAL_REVIEW
    return max(outcomes, key=lambda o: o.rank)
