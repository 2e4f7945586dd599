"""The NIST SP 800-53 Rev. 5 controls and baselines, read from the shipped OSCAL resolved catalogs."""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sharewise.domain.errors import IntegrityError, NotFoundError

CATALOG_DIR = Path(__file__).resolve().parents[1] / "data" / "nist-sp800-53r5"
BASELINES = ("LOW", "MODERATE", "HIGH", "PRIVACY")
BASELINE_FOR_LEVEL = {"low": "LOW", "moderate": "MODERATE", "high": "HIGH"}
# The NIST source profiles of each baseline, by their published addresses (for OSCAL exports).
PROFILE_HREF = {
    name: "https://raw.githubusercontent.com/usnistgov/oscal-content/main/nist.gov/SP800-53/rev5/json/"
    f"NIST_SP-800-53_rev5_{name}-baseline_profile.json"
    for name in BASELINES
}
CATALOG_HREF = (
    "https://raw.githubusercontent.com/usnistgov/oscal-content/main/nist.gov/SP800-53/rev5/json/"
    "NIST_SP-800-53_rev5_catalog.json"
)
_INSERT = re.compile(r"\{\{\s*insert:\s*param,\s*([A-Za-z0-9_.-]+)\s*\}\}")


@dataclass(frozen=True)
class Control:
    """One control or enhancement: its id, label, title, family, requirement text and evidence."""

    id: str  # "ac-2", "ia-2.1"
    label: str  # "AC-2", "IA-2(1)"
    title: str
    family: str  # "ac"
    family_title: str
    statement: str  # the requirement, with parameters shown as [Assignment: ...] / [Selection: ...]
    evidence: tuple[str, ...]  # SP 800-53A "examine" objects
    sort_id: str


@dataclass(frozen=True)
class Catalog:
    """Controls by id and the members of each baseline."""

    version: str
    controls: dict[str, Control]
    baselines: dict[str, frozenset[str]]

    def control(self, control_id: str) -> Control:
        try:
            return self.controls[control_id]
        except KeyError:
            raise NotFoundError(f"no control {control_id} in NIST SP 800-53 Rev. 5 {self.version}") from None

    def baseline(self, name: str) -> frozenset[str]:
        return self.baselines[name]


def _prop(item: dict[str, Any], name: str, cls: str | None = None) -> str | None:
    for prop in item.get("props", []):
        if prop.get("name") == name and prop.get("class") == cls:
            return str(prop["value"])
    return None


def _param_text(param: dict[str, Any] | None) -> str:
    if param is None:
        return "[Assignment: organization-defined value]"
    if "select" in param:
        choices = [_INSERT.sub("…", str(c)) for c in param["select"].get("choice", [])]
        return f"[Selection: {'; '.join(choices)}]"
    label = str(param.get("label", "value"))
    return f"[Assignment: {label if label.startswith('organization-defined') else 'organization-defined ' + label}]"


def _render(part: dict[str, Any], params: dict[str, dict[str, Any]], depth: int = 0) -> list[str]:
    lines: list[str] = []
    prose = part.get("prose")
    if prose:
        label = _prop(part, "label")
        text = _INSERT.sub(lambda m: _param_text(params.get(m.group(1))), prose)
        lines.append(("  " * depth) + (f"{label} " if label else "") + text)
    for child in part.get("parts", []):
        lines += _render(child, params, depth + (1 if prose else 0))
    return lines


def _evidence(control: dict[str, Any]) -> tuple[str, ...]:
    for part in control.get("parts", []):
        if part.get("name") != "assessment-method":
            continue
        methods = [p.get("value") for p in part.get("props", []) if p.get("name") == "method"]
        if "EXAMINE" not in methods:
            continue
        for objects in part.get("parts", []):
            if objects.get("name") == "assessment-objects" and objects.get("prose"):
                items = [line.strip() for line in str(objects["prose"]).split("\n") if line.strip()]
                return tuple(items)
    return ()


def _walk(
    controls: list[dict[str, Any]], family: str, family_title: str, inherited: dict[str, dict[str, Any]]
) -> list[Control]:
    found: list[Control] = []
    for raw in controls:
        params = {**inherited, **{p["id"]: p for p in raw.get("params", [])}}
        statement = next((p for p in raw.get("parts", []) if p.get("name") == "statement"), None)
        label = _prop(raw, "label") or raw["id"].upper()
        found.append(
            Control(
                id=raw["id"],
                label=label,
                title=raw["title"],
                family=family,
                family_title=family_title,
                statement="\n".join(_render(statement, params)) if statement else "",
                evidence=_evidence(raw),
                sort_id=_prop(raw, "sort-id") or raw["id"],
            )
        )
        found += _walk(raw.get("controls", []), family, family_title, params)
    return found


def _read(path: Path) -> dict[str, Any]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            data: dict[str, Any] = json.load(handle)
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"cannot read the OSCAL catalog {path.name}: {exc}") from exc
    return data


@lru_cache(maxsize=4)
def load_catalog(directory: Path = CATALOG_DIR) -> Catalog:
    """Read the four resolved baseline catalogs; control text comes from the HIGH and PRIVACY ones."""
    controls: dict[str, Control] = {}
    baselines: dict[str, frozenset[str]] = {}
    version = ""
    for name in BASELINES:
        data = _read(directory / f"{name.lower()}-baseline-resolved-catalog.json.gz")["catalog"]
        version = str(data["metadata"].get("version", ""))
        members: list[Control] = []
        for group in data.get("groups", []):
            members += _walk(group.get("controls", []), group["id"], group["title"], {})
        baselines[name] = frozenset(c.id for c in members)
        for control in members:
            controls.setdefault(control.id, control)
    return Catalog(version=version, controls=controls, baselines=baselines)
