"""Source addresses derived from U.S. Code and CFR citations."""

from __future__ import annotations

import re

_USC = re.compile(r"^(\d+)\s+U\.S\.C\.\s+(\d+[a-z0-9-]*)")
_CFR_SECTION = re.compile(r"^(\d+)\s+CFR\s+(\d+)\.(\d+[a-z]?)")
_CFR_PART = re.compile(r"^(\d+)\s+CFR\s+(?:Part\s+)?(\d+)\b")


def derive_url(cite: str) -> str | None:
    """The public source address for a U.S.C. or CFR citation, or None if not derivable."""
    m = _USC.match(cite)
    if m:
        return f"https://www.law.cornell.edu/uscode/text/{m.group(1)}/{m.group(2)}"
    m = _CFR_SECTION.match(cite)
    if m:
        return f"https://www.ecfr.gov/current/title-{m.group(1)}/section-{m.group(2)}.{m.group(3)}"
    m = _CFR_PART.match(cite)
    if m:
        return f"https://www.ecfr.gov/current/title-{m.group(1)}/part-{m.group(2)}"
    return None
