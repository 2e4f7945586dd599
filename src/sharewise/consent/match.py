"""Does a consent cover a disclosure: in force, and the right discloser, recipient, purpose and data?"""

from __future__ import annotations

import datetime as dt

from sharewise.domain.consent import ConsentRecord, RecipientSpec
from sharewise.domain.request import Request


def coverage_failures(consent: ConsentRecord, request: Request, on: dt.date) -> list[str]:
    """Each reason the consent does not cover the request on the date (empty: it covers it)."""
    failures: list[str] = []
    if any(s.signed_on > on for s in consent.signatures) or on < consent.effective:
        failures.append(f"not yet in effect on {on} (effective {consent.effective})")
    if consent.expiration.date is not None and on > consent.expiration.date:
        failures.append(f"expired on {consent.expiration.date}")
    if consent.revocation is not None and consent.revocation.revoked_on <= on:
        failures.append(f"revoked on {consent.revocation.revoked_on}")
    if not any(d.program == request.source.program for d in consent.disclosers):
        failures.append(f"does not permit {request.source.program} to disclose")
    if not any(_recipient_matches(spec, request) for spec in consent.recipients):
        who = request.recipient.kind + (f" ({request.recipient.program})" if request.recipient.program else "")
        failures.append(f"does not name this recipient ({who})")
    if request.purpose not in consent.purposes:
        failures.append(f"does not cover the purpose {request.purpose}")
    missing = [c for c in request.data if c not in consent.data]
    if missing:
        failures.append(f"does not cover the data {', '.join(missing)}")
    return failures


def _recipient_matches(spec: RecipientSpec, request: Request) -> bool:
    recipient = request.recipient
    if spec.kind != recipient.kind:
        return False
    if spec.program is not None and spec.program != recipient.program:
        return False
    return not (spec.name and recipient.name and spec.name.strip().lower() != recipient.name.strip().lower())
