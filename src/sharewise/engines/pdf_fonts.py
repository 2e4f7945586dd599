"""Fonts for the PDFs sharewise prints: a Unicode TrueType family when the machine has one.

reportlab's built-in fonts (Helvetica, Times) print only the Windows-1252 characters: a name such
as Łódź came out as black boxes. DejaVu (Debian's fonts-dejavu-core, which `make system-deps`
installs) or Liberation cover Latin, Greek and Cyrillic; no family here covers Chinese, Japanese
or Korean, so `missing_characters` tells the caller what a PDF cannot show (DOCX and HTML can).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/truetype/liberation"),
    Path("/usr/share/fonts/liberation"),
)
# kind -> candidate families, each (name, regular, bold, italic, bold italic) file names
CANDIDATES: dict[str, tuple[tuple[str, str, str, str, str], ...]] = {
    "sans": (
        ("DejaVuSans", "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf"),
        (
            "LiberationSans",
            "LiberationSans-Regular.ttf",
            "LiberationSans-Bold.ttf",
            "LiberationSans-Italic.ttf",
            "LiberationSans-BoldItalic.ttf",
        ),
    ),
    "serif": (
        (
            "DejaVuSerif",
            "DejaVuSerif.ttf",
            "DejaVuSerif-Bold.ttf",
            "DejaVuSerif-Italic.ttf",
            "DejaVuSerif-BoldItalic.ttf",
        ),
        (
            "LiberationSerif",
            "LiberationSerif-Regular.ttf",
            "LiberationSerif-Bold.ttf",
            "LiberationSerif-Italic.ttf",
            "LiberationSerif-BoldItalic.ttf",
        ),
    ),
}
BUILT_IN = {
    "sans": ("Helvetica", "Helvetica-Bold", "Helvetica-Oblique", "Helvetica-BoldOblique"),
    "serif": ("Times-Roman", "Times-Bold", "Times-Italic", "Times-BoldItalic"),
}


@dataclass(frozen=True)
class FontFamily:
    """The four reportlab font names of one family, and whether it is a TrueType (Unicode) family."""

    regular: str
    bold: str
    italic: str
    bold_italic: str
    truetype: bool


@cache
def family(kind: str) -> FontFamily:
    """The family for "sans" or "serif": the first TrueType family found whole, else reportlab's built-in one."""
    for name, *files in CANDIDATES[kind]:
        for directory in FONT_DIRS:
            paths = [directory / f for f in files]
            if all(p.is_file() for p in paths):
                names = (name, f"{name}-Bold", f"{name}-Italic", f"{name}-BoldItalic")
                for font_name, path in zip(names, paths, strict=True):
                    pdfmetrics.registerFont(TTFont(font_name, str(path)))
                for bold, italic, font_name in ((0, 0, names[0]), (1, 0, names[1]), (0, 1, names[2]), (1, 1, names[3])):
                    addMapping(name, bold, italic, font_name)  # so <b> and <i> in a paragraph find the faces
                return FontFamily(*names, truetype=True)
    return FontFamily(*BUILT_IN[kind], truetype=False)


def missing_characters(text: str, fonts: FontFamily) -> set[str]:
    """The characters of text that the family cannot print (white space and control characters aside)."""
    wanted = {c for c in text if not c.isspace() and c.isprintable()}
    if fonts.truetype:
        glyphs = pdfmetrics.getFont(fonts.regular).face.charToGlyph
        return {c for c in wanted if ord(c) not in glyphs}
    return {c for c in wanted if not _in_windows_1252(c)}


def _in_windows_1252(character: str) -> bool:
    try:
        character.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def warning_for(text: str, fonts: FontFamily) -> str | None:
    """A warning for the user when the PDF cannot show some characters of its text (never the characters)."""
    missing = missing_characters(text, fonts)
    if not missing:
        return None
    return (
        f"the PDF cannot show {len(missing)} character(s) of this document (they print as boxes); "
        "the DOCX and HTML versions show them"
    )
