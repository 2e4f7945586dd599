"""The law pack as loaded: authorities, rules and their dated versions, and the vocabulary."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from sharewise.domain.determination import Citation
from sharewise.policy.condition import Condition

RULE_KINDS = ("permit", "consent", "prohibit", "review", "obligation")
CONFIDENCE = ("verified", "background", "uncertain")


@dataclass(frozen=True)
class Element:
    """An obligation or a consent element: an id, its text and citations."""

    id: str
    text: str
    citations: tuple[str, ...]


@dataclass(frozen=True)
class RuleVersion:
    """A rule's content as in force over one date range."""

    effective_from: dt.date
    effective_to: dt.date | None
    summary: str
    citations: tuple[Citation, ...]
    when: Condition
    obligations: tuple[Element, ...]
    documents: tuple[str, ...]
    consent_elements: tuple[Element, ...]
    confidence: str
    needs_legal_review: bool
    notes: str | None

    def in_force(self, as_of: dt.date) -> bool:
        return self.effective_from <= as_of and (self.effective_to is None or as_of <= self.effective_to)

    @property
    def label(self) -> str:
        end = self.effective_to.isoformat() if self.effective_to else ""
        return f"{self.effective_from.isoformat()}..{end}"


@dataclass(frozen=True)
class Rule:
    """One provision of law, with a stable id and its dated versions."""

    id: str
    authority: str
    kind: str
    title: str
    remedy: str | None
    versions: tuple[RuleVersion, ...]
    source: str  # file:line
    pack: str

    def version_on(self, as_of: dt.date) -> RuleVersion | None:
        for version in self.versions:
            if version.in_force(as_of):
                return version
        return None


@dataclass(frozen=True)
class Authority:
    """A body of law that governs some records, with its rules."""

    id: str
    name: str
    summary: str
    citations: tuple[Citation, ...]
    confidence: str
    governs_when: Condition
    notes: str | None
    rules: tuple[Rule, ...]
    source: str
    folder: str


@dataclass(frozen=True)
class Case:
    """A golden case: a request and what the determination must show."""

    name: str
    request: dict[str, Any]
    expect: dict[str, Any]
    basis: str | None
    source: str
    pack: str = "federal"


@dataclass(frozen=True)
class Vocabulary:
    """Every id a request or a rule may use, with labels and fact questions."""

    programs: dict[str, str]
    data_categories: dict[str, str]
    recipient_kinds: dict[str, str]
    purposes: dict[str, str]
    roles: dict[str, str]
    forms: dict[str, str]
    documents: dict[str, str]
    facts: dict[str, str]  # fact id -> question
    constraints: tuple[tuple[str, str, str, Condition], ...]  # id, field, message, condition

    def ids_for_path(self, path: str) -> dict[str, str] | None:
        """The vocabulary that values at a request path must come from."""
        return {
            "source.program": self.programs,
            "recipient.program": self.programs,
            "recipient.kind": self.recipient_kinds,
            "purpose": self.purposes,
            "data": self.data_categories,
            "source.roles": self.roles,
            "recipient.roles": self.roles,
            "form": self.forms,
        }.get(path)


@dataclass(frozen=True)
class LawPack:
    """A loaded law pack (federal, possibly layered with a state pack)."""

    id: str
    version: str
    name: str
    content_hash: str
    vocabulary: Vocabulary
    authorities: tuple[Authority, ...]
    case_files: tuple[tuple[Path, str], ...]  # (file, pack id); cases are read on first use
    overrides: dict[str, str] = field(default_factory=dict)  # rule id -> overriding pack

    @cached_property
    def cases(self) -> tuple[Case, ...]:
        """The golden cases beside the rules (read lazily: determinations do not need them)."""
        from sharewise.policy.load import load_pack_cases

        return load_pack_cases(self.case_files)

    @property
    def law_version(self) -> str:
        return f"{self.id}-{self.version}"

    def rule(self, rule_id: str) -> Rule | None:
        for authority in self.authorities:
            for rule in authority.rules:
                if rule.id == rule_id:
                    return rule
        return None

    def authority(self, authority_id: str) -> Authority | None:
        for authority in self.authorities:
            if authority.id == authority_id:
                return authority
        return None

    def all_rules(self) -> list[Rule]:
        return [rule for authority in self.authorities for rule in authority.rules]
