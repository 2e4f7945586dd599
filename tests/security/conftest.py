"""Fixtures for security tests: the security law, a request builder and a fake audit sink."""

from __future__ import annotations

from typing import Any

import pytest

from sharewise.domain.events import AuditEvent, DisclosureEvent
from sharewise.domain.request import Request
from sharewise.policy.model import LawPack
from sharewise.policy.request_parse import parse_request
from sharewise.services.security import SecurityLaw, security_law


class FakeSink:
    """Keeps reported events in memory; can be made to fail."""

    def __init__(self, fail: bool = False) -> None:
        self.events: list[AuditEvent] = []
        self.fail = fail

    def record(self, event: AuditEvent) -> None:
        if self.fail:
            raise RuntimeError("audit store unavailable")
        self.events.append(event)

    def record_disclosure(self, event: DisclosureEvent, actor: str) -> None:  # pragma: no cover - unused here
        raise AssertionError("security actions are not disclosures")


@pytest.fixture(scope="session")
def sec(law: LawPack) -> SecurityLaw:
    return security_law(law)


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()


def make_request(law: LawPack, **raw: Any) -> Request:
    data: dict[str, Any] = {
        "source": {"program": "snap"},
        "recipient": {"kind": "state_or_local_agency", "program": "tanf"},
        "purpose": "eligibility_determination",
        "data": ["identity"],
    }
    data.update(raw)
    return parse_request(data, law.vocabulary)
