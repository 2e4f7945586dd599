"""Render an agreement draft as Markdown, HTML, DOCX (editable by counsel) or PDF."""

from __future__ import annotations

import io
from pathlib import Path
from xml.sax.saxutils import escape

import jinja2
from docx import Document
from docx.shared import Pt
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.platypus import KeepTogether, ListFlowable, ListItem, Paragraph, SimpleDocTemplate, Spacer, Table

from sharewise.agreements.draft import AgreementDraft
from sharewise.engines import pdf_fonts

TEMPLATES = Path(__file__).resolve().parent / "templates"
FORMATS = ("md", "html", "docx", "pdf")
SIGN_LINE = "______________________________"
ANNEX_LETTERS = "BCDEFGH"  # Appendix A is the clause table


def _env(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["mdcell"] = lambda s: str(s).replace("|", r"\|").replace("\n", " ")
    return env


def to_markdown(draft: AgreementDraft) -> str:
    """The agreement as Markdown (the golden snapshot format)."""
    text = _env(autoescape=False).get_template("agreement.md.j2").render(d=draft)
    return _squeeze_blank_lines(text)


def to_html(draft: AgreementDraft) -> str:
    """The agreement as a standalone HTML page."""
    return _env(autoescape=True).get_template("agreement.html.j2").render(d=draft)


def to_docx(draft: AgreementDraft) -> bytes:
    """The agreement as a Word document with real headings, lists and tables, for counsel to edit."""
    doc = Document()
    doc.core_properties.title = draft.title
    doc.core_properties.subject = draft.parties_line
    doc.styles["Normal"].font.name = "Times New Roman"
    doc.styles["Normal"].font.size = Pt(11)
    doc.add_heading(draft.title, level=0)
    if draft.reference:
        doc.add_paragraph(f"Reference: {draft.reference}")
    doc.add_paragraph(f"Between {draft.parties_line}")
    doc.add_paragraph(f"Determination: law pack {draft.law_version}, as of {draft.as_of}")
    for notice in draft.notices:
        doc.add_paragraph(notice, style="Intense Quote")
    for section in draft.sections:
        doc.add_heading(f"{section.number}. {section.title}", level=1)
        for clause in section.clauses:
            doc.add_heading(f"{clause.number} {clause.title}", level=2)
            for block in clause.blocks:
                if block.kind == "paragraph":
                    doc.add_paragraph(block.text)
                else:
                    for item in block.items:
                        doc.add_paragraph(item, style="List Bullet")
    for sig in draft.signatures:
        doc.add_paragraph()
        doc.add_paragraph().add_run(f"{sig.party}: {sig.organization}").bold = True
        doc.add_paragraph(f"Signature: {SIGN_LINE}   Date: ____________")
        doc.add_paragraph(f"Name: {sig.name or SIGN_LINE}")
        doc.add_paragraph(f"Title: {sig.title or SIGN_LINE}")
    doc.add_heading("Appendix A. Clauses and the rules that require them", level=1)
    table = doc.add_table(rows=1, cols=4)
    table.style = "Table Grid"
    for cell, head in zip(table.rows[0].cells, ("Clause", "Requirement", "Rule", "Citations"), strict=True):
        cell.text = head
    for row in draft.appendix:
        cells = table.add_row().cells
        cells[0].text = row.clause
        cells[1].text = row.requirement
        cells[2].text = row.rule or "-"
        cells[3].text = "; ".join(row.citations) or "good practice"
    for letter, annex in zip(ANNEX_LETTERS, draft.annexes, strict=False):
        doc.add_heading(f"Appendix {letter}. {annex.title}", level=1)
        doc.add_paragraph(annex.intro)
        for part in annex.parts:
            doc.add_heading(f"{part.heading} ({part.status})", level=2)
            for point in part.points:
                doc.add_paragraph(point, style="List Bullet")
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


def pdf_warning(draft: AgreementDraft) -> str | None:
    """A warning when the PDF cannot show some characters of the agreement (its DOCX, Markdown and HTML can)."""
    return pdf_fonts.warning_for(to_markdown(draft), pdf_fonts.family("serif"))


def to_pdf(draft: AgreementDraft) -> bytes:
    """The agreement as a PDF for circulation."""
    styles = getSampleStyleSheet()
    fonts = pdf_fonts.family("serif")  # Unicode where the machine has DejaVu or Liberation (Łódź, not boxes)
    for name in ("Title", "Heading2", "Heading3"):
        styles[name].fontName = fonts.bold  # a fresh sample sheet per call: nothing shared is changed
    body = ParagraphStyle("body", parent=styles["BodyText"], fontName=fonts.regular, fontSize=10.5, leading=14)
    small = ParagraphStyle("small", parent=body, fontSize=8.5, leading=10.5)
    notice = ParagraphStyle("notice", parent=body, backColor="#fffbeb", borderPadding=4, spaceAfter=8)
    story: list[object] = [Paragraph(escape(draft.title), styles["Title"])]
    if draft.reference:
        story.append(Paragraph(escape(f"Reference: {draft.reference}"), body))
    story.append(Paragraph(escape(f"Between {draft.parties_line}"), body))
    story.append(Paragraph(escape(f"Determination: law pack {draft.law_version}, as of {draft.as_of}"), body))
    story.append(Spacer(1, 8))
    for text in draft.notices:
        story.append(Paragraph(escape(text), notice))
    for section in draft.sections:
        story.append(Paragraph(escape(f"{section.number}. {section.title}"), styles["Heading2"]))
        for clause in section.clauses:
            story.append(Paragraph(escape(f"{clause.number} {clause.title}"), styles["Heading3"]))
            for block in clause.blocks:
                if block.kind == "paragraph":
                    story.append(Paragraph(escape(block.text), body))
                else:
                    story.append(
                        ListFlowable(
                            [ListItem(Paragraph(escape(item), body), leftIndent=12) for item in block.items],
                            bulletType="bullet",
                            leftIndent=12,
                        )
                    )
    for sig in draft.signatures:
        story.append(
            KeepTogether(
                [
                    Spacer(1, 18),
                    Paragraph(f"<b>{escape(sig.party)}: {escape(sig.organization)}</b>", body),
                    Paragraph(f"Signature: {SIGN_LINE}   Date: ____________", body),
                    Paragraph(escape(f"Name: {sig.name or SIGN_LINE}"), body),
                    Paragraph(escape(f"Title: {sig.title or SIGN_LINE}"), body),
                ]
            )
        )
    story.append(Paragraph("Appendix A. Clauses and the rules that require them", styles["Heading2"]))
    rows = [[Paragraph(f"<b>{h}</b>", small) for h in ("Clause", "Requirement", "Rule", "Citations")]]
    for row in draft.appendix:
        rows.append(
            [
                Paragraph(escape(row.clause), small),
                Paragraph(escape(row.requirement), small),
                Paragraph(escape(row.rule or "-"), small),
                Paragraph(escape("; ".join(row.citations) or "good practice"), small),
            ]
        )
    table = Table(rows, colWidths=[1.8 * inch, 1.9 * inch, 1.6 * inch, 1.5 * inch], repeatRows=1)
    table.setStyle([("GRID", (0, 0), (-1, -1), 0.5, "#999999"), ("VALIGN", (0, 0), (-1, -1), "TOP")])
    story.append(table)
    for letter, annex in zip(ANNEX_LETTERS, draft.annexes, strict=False):
        story.append(Paragraph(escape(f"Appendix {letter}. {annex.title}"), styles["Heading2"]))
        story.append(Paragraph(escape(annex.intro), body))
        for part in annex.parts:
            story.append(Paragraph(escape(f"{part.heading} ({part.status})"), styles["Heading3"]))
            story.append(
                ListFlowable(
                    [ListItem(Paragraph(escape(p), body), leftIndent=12) for p in part.points],
                    bulletType="bullet",
                    leftIndent=12,
                )
            )
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, pagesize=LETTER, title=draft.title, invariant=True).build(story)
    return buffer.getvalue()


def render(draft: AgreementDraft, fmt: str) -> bytes:
    """The agreement in one of FORMATS, as bytes to write."""
    if fmt == "md":
        return to_markdown(draft).encode("utf-8")
    if fmt == "html":
        return to_html(draft).encode("utf-8")
    if fmt == "docx":
        return to_docx(draft)
    if fmt == "pdf":
        return to_pdf(draft)
    raise ValueError(f"unknown format {fmt!r}")


def _squeeze_blank_lines(text: str) -> str:
    out: list[str] = []
    for line in text.splitlines():
        if line.strip() == "" and out and out[-1].strip() == "":
            continue
        out.append(line.rstrip() if not line.endswith("  ") else line)
    return "\n".join(out).strip() + "\n"
