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
        named = [s.name for s in consent.recipients if s.name and _class_matches(s, request)]
        if named and request.recipient.name:  # the right kind of recipient, under another name
            names = ", ".join(f"'{name}'" for name in named)
            failures.append(f"names the recipient {names}, not '{request.recipient.name}' ({who})")
        else:
            failures.append(f"does not name this recipient ({who})")
    if request.purpose not in consent.purposes:
        failures.append(f"does not cover the purpose {request.purpose}")
    missing = [c for c in request.data if c not in consent.data]
    if missing:
        failures.append(f"does not cover the data {', '.join(missing)}")
    return failures


def _class_matches(spec: RecipientSpec, request: Request) -> bool:
    """The recipient is of the consent's kind (and program, if it names one), whatever its name."""
    recipient = request.recipient
    return spec.kind == recipient.kind and (spec.program is None or spec.program == recipient.program)


def _recipient_matches(spec: RecipientSpec, request: Request) -> bool:
    recipient = request.recipient
    if not _class_matches(spec, request):
        return False
    return not (spec.name and recipient.name and spec.name.strip().lower() != recipient.name.strip().lower())
