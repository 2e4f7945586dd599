"""The safeguards specification: baseline controls plus overlay requirements, each with a plain duty and evidence."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from sharewise.domain.errors import InvalidLawPackError, Problem
from sharewise.policy.yamlfile import YamlProblem, line_of, read_yaml
from sharewise.security.catalog import Catalog
from sharewise.security.categorize import Categorization
from sharewise.security.overlays import OverlaySet, OverlayStatus, ResolvedParameter


@dataclass(frozen=True)
class Duties:
    """Plain-language recipient duties by control family and by control."""

    families: Mapping[str, str]
    controls: Mapping[str, str]

    def duty(self, control_id: str, family: str) -> str:
        return self.controls.get(control_id) or self.families.get(family, "")


def load_duties(path: Path, catalog: Catalog) -> Duties:
    """Read duties.yaml; every family in the catalog needs a duty and every control named must exist."""
    label = path.name
    try:
        raw, lines = read_yaml(path, label)
    except YamlProblem as exc:
        raise InvalidLawPackError(f"invalid security law file {label}", exc.problems) from exc
    problems: list[Problem] = []
    families = {str(k): str(v.get("duty", "")) for k, v in (raw.get("families") or {}).items()}
    controls = {str(k): str(v.get("duty", "")) for k, v in (raw.get("controls") or {}).items()}
    for family in sorted({c.family for c in catalog.controls.values()}):
        if not families.get(family):
            problems.append(Problem(f"{label}:{line_of(lines, ('families',))}", f"family '{family}' has no duty"))
    for control_id in controls:
        if control_id not in catalog.controls:
            problems.append(
                Problem(f"{label}:{line_of(lines, ('controls', control_id))}", f"unknown control '{control_id}'")
            )
    if problems:
        raise InvalidLawPackError(f"invalid security law file {label}", problems)
    return Duties(families, controls)


class Safeguard(BaseModel):
    """One control of the specification: what the recipient must do and what shows it."""

    model_config = ConfigDict(frozen=True)

    control_id: str
    label: str
    title: str
    family: str
    duty: str
    requirement: str  # the control statement from the catalog
    evidence: tuple[str, ...]
    selected_by: tuple[str, ...]  # "MODERATE baseline", "PRIVACY baseline", "overlay irs_pub_1075"
    overlay_requirements: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()  # "Keep audit records for at least (years): 7 (irs_pub_1075)"
    conditional: bool = False  # only an undetermined overlay selects it


class OverlayDuty(BaseModel):
    """A requirement of an overlay, in plain language, with its citations and controls."""

    model_config = ConfigDict(frozen=True)

    id: str
    overlay: str
    title: str
    duty: str
    evidence: tuple[str, ...]
    controls: tuple[str, ...]
    citations: tuple[str, ...]
    conditional: bool = False


class SafeguardsSpec(BaseModel):
    """Every safeguard a share needs: the categorization, the overlays and the controls."""

    model_config = ConfigDict(frozen=True)

    as_of: dt.date
    catalog_version: str
    categorization: Categorization
    baselines: tuple[str, ...]  # e.g. ("MODERATE", "PRIVACY")
    overlays: tuple[OverlayStatus, ...]
    overlay_duties: tuple[OverlayDuty, ...]
    parameters: tuple[ResolvedParameter, ...]
    safeguards: tuple[Safeguard, ...]
    questions: tuple[tuple[str, str], ...]  # (fact path, question) that would settle undetermined overlays
    law_references: tuple[str, ...]

    def item_ids(self) -> list[str]:
        """Every id a questionnaire must answer: control ids, then overlay requirement ids."""
        return [s.control_id for s in self.safeguards] + [d.id for d in self.overlay_duties]

    def safeguard(self, control_id: str) -> Safeguard | None:
        return next((s for s in self.safeguards if s.control_id == control_id), None)


def build_spec(
    catalog: Catalog,
    duties: Duties,
    overlays: OverlaySet,
    categorization: Categorization,
    statuses: Iterable[OverlayStatus],
    parameters: Iterable[ResolvedParameter],
    as_of: dt.date,
    references: Iterable[str] = (),
) -> SafeguardsSpec:
    """Assemble the specification from the selected baselines and the binding overlays."""
    statuses = tuple(statuses)
    parameters = tuple(parameters)
    baselines = [categorization.baseline] + (["PRIVACY"] if categorization.privacy else [])
    selected: dict[str, list[str]] = {}
    for name in baselines:
        for control_id in catalog.baseline(name):
            selected.setdefault(control_id, []).append(f"{name} baseline")
    conditional_only: dict[str, bool] = {}
    requirement_links: dict[str, list[str]] = {}
    overlay_duties: list[OverlayDuty] = []
    for status in statuses:
        overlay = overlays.overlay(status.overlay)
        if overlay is None or not status.binding:
            continue
        conditional = status.status == "undetermined"
        for req in overlay.requirements:
            if req.effective_from is not None and req.effective_from > as_of:
                continue
            overlay_duties.append(
                OverlayDuty(
                    id=req.id,
                    overlay=overlay.id,
                    title=req.title,
                    duty=req.duty,
                    evidence=req.evidence,
                    controls=req.controls,
                    citations=req.citations,
                    conditional=conditional,
                )
            )
            for control_id in req.controls:
                requirement_links.setdefault(control_id, []).append(req.id)
                if control_id not in selected:
                    selected[control_id] = []
                    conditional_only[control_id] = conditional
                elif not conditional:
                    conditional_only[control_id] = False
                source = f"overlay {overlay.id}"
                if source not in selected[control_id]:
                    selected[control_id].append(source)
    params_by_control: dict[str, list[str]] = {}
    for param in parameters:
        params_by_control.setdefault(param.control, []).append(f"{param.label}: {param.value} ({param.set_by})")
        selected.setdefault(param.control, []).append(f"parameter {param.id}")
    safeguards = []
    for control_id in sorted(selected, key=lambda cid: catalog.control(cid).sort_id):
        control = catalog.control(control_id)
        safeguards.append(
            Safeguard(
                control_id=control.id,
                label=control.label,
                title=control.title,
                family=control.family,
                duty=duties.duty(control.id, control.family),
                requirement=control.statement,
                evidence=control.evidence,
                selected_by=tuple(selected[control_id]),
                overlay_requirements=tuple(requirement_links.get(control_id, ())),
                parameters=tuple(params_by_control.get(control_id, ())),
                conditional=conditional_only.get(control_id, False),
            )
        )
    questions = sorted({(q, overlays.facts.get(q[6:], q)) for s in statuses for q in s.questions})
    return SafeguardsSpec(
        as_of=as_of,
        catalog_version=catalog.version,
        categorization=categorization,
        baselines=tuple(baselines),
        overlays=statuses,
        overlay_duties=tuple(overlay_duties),
        parameters=parameters,
        safeguards=tuple(safeguards),
        questions=tuple(questions),
        law_references=tuple(references),
    )


def security_clause(spec: SafeguardsSpec) -> str:
    """The agreement's security clause (Markdown): categorization, baselines, overlays, parameters, key duties."""
    cat = spec.categorization
    binding = [o for o in spec.overlays if o.binding]
    lines = [
        "## Security requirements",
        "",
        f"The records are categorized under FIPS 199 as {cat.summary()}; overall impact **{cat.overall}**.",
        f"The Recipient shall implement the NIST SP 800-53 Rev. 5 ({spec.catalog_version}) "
        f"{' and '.join(b + ' baseline' for b in spec.baselines)} controls listed in the attached safeguards "
        f"specification ({len(spec.safeguards)} controls), and the following requirements of applicable law:",
        "",
    ]
    for overlay in binding:
        pending = " (pending: " + "; ".join(overlay.questions) + ")" if overlay.status == "undetermined" else ""
        lines.append(f"- **{overlay.title}** ({'; '.join(overlay.citations)}){pending}")
        for duty in (d for d in spec.overlay_duties if d.overlay == overlay.overlay):
            lines.append(f"  - {duty.duty} ({'; '.join(duty.citations)})")
    if not binding:
        lines.append("- No security overlay applies beyond the baselines.")
    if spec.parameters:
        lines += ["", "Where the law sets values, the stricter applies:", ""]
        lines += [f"- {p.label}: **{p.value}** ({p.set_by})" for p in spec.parameters]
    lines += [
        "",
        "The Recipient shall use FIPS 140-validated cryptography implementing FIPS-approved algorithms "
        "(for example AES-256-GCM, SHA-256, HMAC-SHA256, ECDSA P-256 or Ed25519) to protect the records in "
        "transit and at rest, and shall answer the security assessment questionnaire, with evidence, before "
        "the first disclosure and whenever the specification changes.",
        "",
    ]
    return "\n".join(lines)


def render_markdown(spec: SafeguardsSpec) -> str:
    """The full specification (Markdown): the clause, the categorization reasoning, then every control."""
    cat = spec.categorization
    lines = [security_clause(spec), "## Categorization", ""]
    for reason in cat.reasons:
        lines.append(f"- {reason.objective} {reason.level} ({reason.source}: {reason.subject}): {reason.explanation}")
    for change in cat.adjustments:
        verb = "lowered" if change.lowered else "raised"
        lines.append(
            f"- {change.objective} {verb} from {change.from_level} to {change.to_level} by {change.reviewer}: {change.justification}"
        )
    lines += ["", f"Privacy baseline: {'yes' if cat.privacy else 'no'} ({cat.privacy_reason})", ""]
    if spec.questions:
        lines += ["## Open questions", ""] + [f"- `{path}`: {ask}" for path, ask in spec.questions] + [""]
    lines += [
        "## Controls",
        "",
        "| Control | Title | Recipient duty | Evidence | Selected by |",
        "|---|---|---|---|---|",
    ]
    for s in spec.safeguards:
        evidence = "; ".join(s.evidence[:4]) + (" …" if len(s.evidence) > 4 else "")
        duty = s.duty + ("" if not s.parameters else " — " + "; ".join(s.parameters))
        flag = " (conditional)" if s.conditional else ""
        lines.append(f"| {s.label} | {s.title} | {duty} | {evidence} | {', '.join(s.selected_by)}{flag} |")
    return "\n".join(lines) + "\n"
