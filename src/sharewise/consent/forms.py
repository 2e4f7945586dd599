"""Consent forms: one universal release carrying every element each governing authority requires."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import jinja2
import yaml
from docx import Document
from docx.shared import Pt
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer

from sharewise.consent.validate import element_checks
from sharewise.domain.consent import STATEMENTS, ConsentRequirement
from sharewise.domain.request import Request
from sharewise.engines import pdf_fonts

TEMPLATES = Path(__file__).resolve().parent / "templates"
FORMATS = ("docx", "pdf", "html")
BOX = "\u2610"  # an empty ballot box
LINE = "______________________________"

# Where each kind of element check is met on the form.
_PARTS = {
    "person": "Part 0: About you",
    "disclosers": "Part 1: Who may share",
    "recipients": "Part 2: Who may receive",
    "data": "Part 3: What may be shared",
    "information_description": "Part 3: What may be shared",
    "purposes": "Part 4: Why",
    "expiration": "Part 5: When this permission ends",
    "signature": "Part 7: Signatures",
}


@dataclass(frozen=True)
class FormLabels:
    """Human labels for the ids a form shows."""

    authorities: Mapping[str, str]
    programs: Mapping[str, str]
    data_categories: Mapping[str, str]
    purposes: Mapping[str, str]
    recipient_kinds: Mapping[str, str]


@dataclass(frozen=True)
class CheckBox:
    """A category of information the person may agree to share."""

    id: str
    label: str
    protected: bool
    note: str | None = None


@dataclass(frozen=True)
class Statement:
    """A statement the form gives the person, and the laws that require it."""

    id: str
    heading: str
    text: str
    required_by: tuple[str, ...]


@dataclass(frozen=True)
class ElementRow:
    """One consent element a law requires, and where the form meets it."""

    authority: str
    element: str
    text: str
    citations: tuple[str, ...]
    where: str


@dataclass(frozen=True)
class ConsentForm:
    """A consent form, ready to render."""

    title: str
    subtitle: str
    intro: str
    as_of: str
    authorities: tuple[str, ...]
    disclosers: tuple[str, ...]
    recipients: tuple[str, ...]
    information: tuple[CheckBox, ...]
    protected: tuple[CheckBox, ...]
    excluded: tuple[str, ...]
    purposes: tuple[str, ...]
    expiration_text: str
    expiration_event_allowed: bool
    statements: tuple[Statement, ...]
    part2_notice: str | None
    part2_cite: str | None
    who_signs: tuple[str, ...]
    signature_labels: Mapping[str, str]
    elements: tuple[ElementRow, ...]
    warnings: tuple[str, ...]

    @property
    def statement_ids(self) -> tuple[str, ...]:
        """The statements this form gives (what a consent record captured on it lists)."""
        return tuple(s.id for s in self.statements)


@lru_cache(maxsize=1)
def form_text() -> dict[str, Any]:
    """The plain-language text of the form (templates/form-text.yaml)."""
    data: dict[str, Any] = yaml.safe_load((TEMPLATES / "form-text.yaml").read_text(encoding="utf-8"))
    return data


def build_form(
    request: Request, requirements: list[ConsentRequirement], labels: FormLabels, as_of: dt.date
) -> ConsentForm:
    """Arrange the form for a request and the consent requirements of its governing authorities."""
    text = form_text()
    checks = element_checks()
    warnings: list[str] = []
    statement_laws: dict[str, list[str]] = {sid: [] for sid in text["always"]}
    rows: list[ElementRow] = []
    date_required = False
    for req in requirements:
        name = labels.authorities.get(req.authority, req.authority)
        for element in req.elements:
            where: list[str] = []
            element_checks_ = checks.get(element.id)
            if element_checks_ is None:
                warnings.append(f"{req.authority} element '{element.id}' has no check; review the form by hand")
                where.append("review by hand")
            for check in element_checks_ or []:
                ((kind, arg),) = check.items()
                if kind == "statement":
                    statement_laws.setdefault(str(arg), []).append(f"{name} ({'; '.join(element.citations)})")
                    where.append(f"Part 6: {text['statements'][arg]['heading']}")
                elif kind == "present":
                    where.append(_PARTS.get(str(arg), "Part 3: What may be shared"))
                elif kind in ("expiration", "dated_expiration"):
                    date_required = date_required or kind == "dated_expiration"
                    where.append(_PARTS["expiration"])
                else:
                    where.append(_PARTS["signature"])
            rows.append(ElementRow(name, element.id, element.text, element.citations, "; ".join(dict.fromkeys(where))))
    part2 = any(r.authority == "part2" for r in requirements)
    if part2:
        statement_laws.setdefault("part2_notice", []).append("42 CFR Part 2 (42 CFR 2.32)")
    statements = tuple(
        Statement(
            sid, text["statements"][sid]["heading"], " ".join(text["statements"][sid]["text"].split()), tuple(laws)
        )
        for sid, laws in statement_laws.items()
        if sid in STATEMENTS
    )
    notice, cite, notice_notes = _part2_notice(text, as_of) if part2 else (None, None, None)
    if notice_notes:
        warnings.append(f"the {cite} notice for this date needs counsel's review before use: {notice_notes}")
    protected_text: dict[str, dict[str, str]] = text["protected"]
    boxes = [
        CheckBox(
            d,
            protected_text[d]["label"] if d in protected_text else labels.data_categories.get(d, d),
            d in protected_text,
            protected_text.get(d, {}).get("note"),
        )
        for d in request.data
        if d not in text["excluded"]
    ]
    excluded = tuple(text["excluded"][d] for d in request.data if d in text["excluded"])
    warnings += [
        f"data category '{d}' cannot be released by consent on this form" for d in request.data if d in text["excluded"]
    ]
    who_signs = tuple(
        dict.fromkeys(
            " ".join(e.text.split())
            for r in requirements
            for e in r.elements
            if e.id
            in ("minor", "guardian", "not_abuser", "parent_consent_basic_center", "signature_date", "youth_consent")
        )
    )
    recipient = request.recipient
    recipient_text = recipient.name or labels.recipient_kinds.get(recipient.kind, recipient.kind)
    if recipient.program:
        recipient_text += f" ({labels.programs.get(recipient.program, recipient.program)})"
    source = request.source
    discloser = labels.programs.get(source.program, source.program)
    if source.agency:
        discloser = f"{source.agency}: {discloser}"
    expiration = text["expiration"]
    return ConsentForm(
        title=text["title"],
        subtitle=text["subtitle"],
        intro=" ".join(text["intro"].split()),
        as_of=as_of.isoformat(),
        authorities=tuple(labels.authorities.get(r.authority, r.authority) for r in requirements),
        disclosers=(discloser,),
        recipients=(recipient_text,),
        information=tuple(b for b in boxes if not b.protected),
        protected=tuple(b for b in boxes if b.protected),
        excluded=excluded,
        purposes=(labels.purposes.get(request.purpose, request.purpose),),
        expiration_text=expiration["text"] + (" " + expiration["date_required"] if date_required else ""),
        expiration_event_allowed=not date_required,
        statements=statements,
        part2_notice=notice,
        part2_cite=cite,
        who_signs=who_signs,
        signature_labels=text["signatures"],
        elements=tuple(rows),
        warnings=tuple(warnings),
    )


def _part2_notice(text: dict[str, Any], as_of: dt.date) -> tuple[str | None, str | None, str | None]:
    """The 42 CFR 2.32 statement in force on the date, its citation, and the reviewers' notes on its text (if any)."""
    for version in text["part2_notice"]:
        start = version["effective_from"]
        end = version.get("effective_to")
        if start <= as_of and (end is None or as_of <= end):
            notes = " ".join(str(version["notes"]).split()) if version.get("notes") else None
            return " ".join(version["text"].split()), str(version["cite"]), notes
    return None, None, None


# Rendering ---------------------------------------------------------------------------------


def to_html(form: ConsentForm) -> str:
    """The form as a printable HTML page."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template("form.html.j2").render(f=form, box=BOX, line=LINE)


def text_lines(form: ConsentForm) -> list[tuple[str, str]]:
    """The form as (style, text) lines: the one layout DOCX and PDF share."""
    out: list[tuple[str, str]] = [("title", form.title), ("subtitle", form.subtitle), ("p", form.intro)]
    out += [
        ("h", "Part 0: About you"),
        ("field", f"Name: {LINE}   Date of birth: ____________   Client ID: __________"),
    ]
    out += [("h", "Part 1: Who may share")] + [("item", f"{BOX} {d}") for d in form.disclosers]
    out.append(("field", f"To cancel this permission, write to (name and address): {LINE}"))
    out += [("h", "Part 2: Who may receive")] + [("item", f"{BOX} {r}") for r in form.recipients]
    out += [("h", "Part 3: What may be shared"), ("p", "Check each kind of information you agree to share.")]
    out += [("item", f"{BOX} {b.label}") for b in form.information]
    if form.protected:
        out += [("h2", "Specially protected information (check and initial each one you agree to share)")]
        for b in form.protected:
            out.append(("item", f"{BOX} {b.label}   Initials: ______"))
            if b.note:
                out.append(("note", b.note))
    for reason in form.excluded:
        out.append(("note", reason))
    out.append(("field", f"Describe the information in your own words (optional): {LINE}"))
    out += [("h", "Part 4: Why")] + [("item", f"{BOX} {p}") for p in form.purposes]
    out.append(("field", f"Other details of the reason: {LINE}"))
    out += [
        ("h", "Part 5: When this permission ends"),
        ("p", form.expiration_text),
        ("field", "End date: ____________"),
    ]
    if form.expiration_event_allowed:
        out.append(("field", f"Or it ends when this happens (an event): {LINE}"))
    out.append(("h", "Part 6: Your rights and what to know"))
    for s in form.statements:
        out += [("h2", s.heading), ("p", s.text)]
    if form.part2_notice:
        out += [
            ("h2", f"Notice that goes with substance use disorder records ({form.part2_cite})"),
            ("quote", form.part2_notice),
        ]
    out.append(("h", "Part 7: Signatures"))
    out += [("note", w) for w in form.who_signs]
    out += [
        ("h2", form.signature_labels["person"]),
        ("field", f"Signature: {LINE}   Date: ____________"),
        ("field", f"Printed name: {LINE}"),
        ("h2", form.signature_labels["representative"]),
        ("field", f"Signature: {LINE}   Date: ____________"),
        ("field", f"Printed name: {LINE}"),
        ("field", f"{form.signature_labels['authority']} {LINE}"),
        ("h", "For staff: what the law requires and where this form meets it"),
    ]
    out += [
        ("small", f"{r.authority} - {r.element}: {r.text} ({'; '.join(r.citations)}) -> {r.where}")
        for r in form.elements
    ]
    return out


def to_docx(form: ConsentForm) -> bytes:
    """The form as an editable Word document."""
    doc = Document()
    doc.core_properties.title = form.title
    doc.styles["Normal"].font.size = Pt(11)
    for style, line in text_lines(form):
        if style == "title":
            doc.add_heading(line, level=0)
        elif style == "h":
            doc.add_heading(line, level=1)
        elif style == "h2":
            doc.add_heading(line, level=2)
        elif style == "quote":
            doc.add_paragraph(line, style="Intense Quote")
        elif style == "note":
            doc.add_paragraph().add_run(line).italic = True
        elif style == "small":
            doc.add_paragraph(line).runs[0].font.size = Pt(8)
        else:
            doc.add_paragraph(line)
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


def to_pdf(form: ConsentForm) -> bytes:
    """The form as a PDF to print and sign."""
    styles = getSampleStyleSheet()
    fonts = pdf_fonts.family("sans")  # Unicode where the machine has DejaVu or Liberation (Łódź, not boxes)
    body = ParagraphStyle("body", parent=styles["BodyText"], fontName=fonts.regular, fontSize=11, leading=15)
    small = ParagraphStyle("small", parent=body, fontSize=8, leading=10)
    note = ParagraphStyle("note", parent=body, fontName=fonts.italic, fontSize=9.5)
    quote = ParagraphStyle("quote", parent=body, leftIndent=12, backColor="#f3f4f6", borderPadding=4, fontSize=9.5)

    def heading(name: str) -> ParagraphStyle:
        return ParagraphStyle(f"sw-{name}", parent=styles[name], fontName=fonts.bold)

    style_map = {
        "title": heading("Title"),
        "subtitle": heading("Heading3"),
        "h": heading("Heading2"),
        "h2": heading("Heading4"),
        "note": note,
        "small": small,
        "quote": quote,
    }
    story: list[Any] = []
    for style, line in text_lines(form):
        # Standard PDF fonts lack the ballot box; print a bracket box instead.
        story.append(Paragraph(escape(line.replace(BOX, "[  ]")), style_map.get(style, body)))
        if style == "field":
            story.append(Spacer(1, 4))
    story = [KeepTogether(story[:3]), *story[3:]]
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, pagesize=LETTER, title=form.title, invariant=True).build(story)
    return buffer.getvalue()


def pdf_warning(form: ConsentForm) -> str | None:
    """A warning when the PDF cannot show some characters of the form (its DOCX and HTML can)."""
    return pdf_fonts.warning_for(
        " ".join(line for _, line in text_lines(form)).replace(BOX, ""), pdf_fonts.family("sans")
    )


def render(form: ConsentForm, fmt: str) -> bytes:
    """The form in one of FORMATS, as bytes to write."""
    if fmt == "html":
        return to_html(form).encode("utf-8")
    if fmt == "docx":
        return to_docx(form)
    if fmt == "pdf":
        return to_pdf(form)
    raise ValueError(f"unknown format {fmt!r}")
