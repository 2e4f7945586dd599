"""The sharing request of the determination contract."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, StrictBool


class Party(BaseModel):
    """Fields shared by the holder and the recipient of records."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    roles: tuple[str, ...] = ()


class Source(Party):
    """Who holds the records: whose records these are."""

    agency: str | None = None
    program: str


class Recipient(Party):
    """Who would receive the records."""

    name: str | None = None
    kind: str
    program: str | None = None


FORMS = ("identified", "limited_data_set", "deidentified", "aggregate")


class Request(BaseModel):
    """A proposed disclosure: whose records, to whom, for what, which data, in which form."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    as_of: dt.date | None = None
    source: Source
    recipient: Recipient
    purpose: str
    data: tuple[str, ...] = Field(min_length=1)
    form: str = "identified"
    facts: dict[str, StrictBool] = Field(default_factory=dict)
    consents: tuple[str, ...] = ()

    def with_facts(self, **changes: bool) -> Request:
        """A copy of this request with some facts set."""
        return self.model_copy(update={"facts": {**self.facts, **changes}})
