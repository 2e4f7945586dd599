"""The Five Safes view of a request: safe project, people, setting, data and outputs, on one page."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from sharewise.domain.determination import Determination
from sharewise.domain.request import Request
from sharewise.security.assess import AssessmentResult
from sharewise.security.safeguards import SafeguardsSpec

SAFES = ("project", "people", "setting", "data", "outputs")
OUTPUT_RULES = {
    "identified": "Identified records: no redisclosure except as the determination's obligations allow; "
    "any publication must be de-identified or aggregate and reviewed by the data owner first.",
    "limited_data_set": "Limited data set: no re-identification or contact of individuals; publications "
    "aggregate only, reviewed by the data owner.",
    "deidentified": "De-identified records: no attempt to re-identify; no linkage to other data without approval; "
    "outputs aggregate only.",
    "aggregate": "Aggregate counts: publish only with small cells suppressed as agreed.",
}


class Safe(BaseModel):
    """One dimension: what sharewise knows, and whether it is settled."""

    model_config = ConfigDict(frozen=True)

    name: str
    status: str  # settled | open | concern
    points: tuple[str, ...]


class FiveSafes(BaseModel):
    """The Five Safes summary of one request."""

    model_config = ConfigDict(frozen=True)

    safes: tuple[Safe, ...]

    def safe(self, name: str) -> Safe:
        return next(s for s in self.safes if s.name == name)


def five_safes(
    request: Request,
    determination: Determination,
    spec: SafeguardsSpec,
    assessment: AssessmentResult | None = None,
    authorized_users: tuple[str, ...] = (),
    security_reviews: tuple[tuple[str, str], ...] = (),
) -> FiveSafes:
    """Build the view from the determination, the categorization, the specification and any assessment.

    `security_reviews` are the workflow's security-review decisions as (decision, text); an
    approving review settles the setting when no assessment says otherwise.
    """
    outcome = determination.outcome.value
    pathways = [f"{a.name}: {a.pathway or a.outcome}" for a in determination.authorities]
    project = Safe(
        name="project",
        status="settled" if outcome == "permitted" else ("concern" if outcome == "prohibited" else "open"),
        points=(
            f"Purpose: {request.purpose}; source {request.source.program} to {request.recipient.name or request.recipient.kind}.",
            f"Determination: {outcome} under {determination.law_version} as of {determination.as_of}.",
            *pathways[:6],
        ),
    )
    people_points = [
        f"Recipient: {request.recipient.name or request.recipient.kind} ({', '.join(request.recipient.roles) or 'no roles stated'})."
    ]
    people_points.append(
        f"Authorized users: {', '.join(authorized_users)}."
        if authorized_users
        else "Authorized users: not yet named (the agreement must name them)."
    )
    people_duties = [s for s in spec.safeguards if s.family in ("ps", "at")]
    people_points.append(
        f"{len(people_duties)} personnel and training controls apply (screening, agreements, training)."
    )
    people = Safe(name="people", status="settled" if authorized_users else "open", points=tuple(people_points))
    cat = spec.categorization
    binding = [o.title + (" (undetermined)" if o.status == "undetermined" else "") for o in spec.overlays if o.binding]
    setting_points = [
        f"{' + '.join(spec.baselines)} baselines: {len(spec.safeguards)} controls.",
        f"Overlays: {', '.join(binding) or 'none'}.",
    ]
    approved = bool(security_reviews) and security_reviews[-1][0] == "approve"
    if assessment is None:
        setting_status = "settled" if approved else "open"
        setting_points.append("Recipient assessment: not yet done.")
    else:
        setting_status = "settled" if assessment.meets_specification else "concern"
        setting_points.append(
            f"Recipient assessment: {assessment.implemented} implemented, {len(assessment.gaps)} gaps, "
            f"{len(assessment.plan)} plan items."
        )
    setting_points += [text for _decision, text in security_reviews]
    setting = Safe(name="setting", status=setting_status, points=tuple(setting_points))
    data = Safe(
        name="data",
        status="settled",
        points=(
            f"Categories: {', '.join(request.data)}; form {request.form}.",
            f"FIPS 199: {cat.summary()}; overall {cat.overall}.",
            f"Records: {cat.records if cat.records is not None else 'not stated'}.",
            "Privacy baseline selected." if cat.privacy else "No personally identifiable information.",
        ),
    )
    obligations = [
        o.text for o in determination.obligations if "redisclos" in o.text.lower() or "publish" in o.text.lower()
    ]
    outputs = Safe(name="outputs", status="settled", points=(OUTPUT_RULES.get(request.form, ""), *obligations[:4]))
    return FiveSafes(safes=(project, people, setting, data, outputs))


def render_markdown(view: FiveSafes, title: str) -> str:
    """The one-page summary (Markdown) shown in the review and attached to the agreement."""
    marks = {"settled": "settled", "open": "OPEN", "concern": "CONCERN"}
    lines = [f"# Five Safes: {title}", ""]
    for safe in view.safes:
        lines.append(f"## Safe {safe.name} ({marks[safe.status]})")
        lines += [f"- {p}" for p in safe.points if p]
        lines.append("")
    return "\n".join(lines)
