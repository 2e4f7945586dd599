"""The toolkit's review process as a state machine: who may act at each step, and where it leads."""

from __future__ import annotations

from dataclasses import dataclass

ROLES = (
    "requester",
    "program_reviewer",
    "legal_reviewer",
    "security_officer",
    "approver",
    "data_steward",
    "auditor",
    "administrator",
)

# state -> (the step taken there, the role that takes it, the state an approval leads to)
REVIEW_STAGES: dict[str, tuple[str, str, str]] = {
    "program_review": ("program", "program_reviewer", "legal_review"),
    "legal_review": ("legal", "legal_reviewer", "security_review"),
    "security_review": ("security", "security_officer", "approval"),
}

STATES = (
    "draft",
    "program_review",
    "legal_review",
    "security_review",
    "approval",
    "agreement_pending",
    "active",
    "denied",
    "expired",
    "terminated",
)
DECISIONS = ("approve", "return", "deny")
TERMINAL = ("denied", "expired", "terminated")


@dataclass(frozen=True)
class Transition:
    """Where a decision leads from a state."""

    to: str
    step: str


def after_review(state: str, decision: str) -> Transition:
    """The state a review decision leads to (approve: next stage; return: draft; deny: denied)."""
    step, _role, next_state = REVIEW_STAGES[state]
    if decision == "approve":
        return Transition(next_state, step)
    if decision == "return":
        return Transition("draft", step)
    return Transition("denied", step)


def stage_for_role(role: str) -> str | None:
    """The review state a role acts in, if any."""
    for state, (_step, stage_role, _next) in REVIEW_STAGES.items():
        if stage_role == role:
            return state
    return None
