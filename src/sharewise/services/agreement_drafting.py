"""Drafting a request's agreement: the document its determination requires, registered, and kept to sign.

The API (`POST /api/v1/agreements`) and the request page both call `draft_for_request`, so the
same checks, the same documents and the same audit record follow from either.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from sharewise.policy.model import LawPack
from sharewise.services import agreement_registry, documents
from sharewise.services import workflow as workflow_service
from sharewise.wiring import Control

SIGNABLE_FORMATS = ("docx", "pdf")  # each drafted agreement is kept in both: people sign one and print the other
FORMATS = ("docx", "pdf", "md", "html")


def kept_documents(out_dir: Path, agreement_id: str) -> dict[str, Path]:
    """The documents kept for an agreement, by format (out_dir/{id}.{format}), DOCX and PDF first."""
    found = {p.suffix[1:]: p for p in out_dir.glob(f"{agreement_id}.*") if p.is_file() and p.stem == agreement_id}
    return dict(sorted(found.items(), key=lambda item: (item[0] not in SIGNABLE_FORMATS, item[0])))


def draft_for_request(
    control: Control,
    law: LawPack,
    actor_id: str,
    request_id: str,
    parties: dict[str, Any],
    doc_type: str | None,
    fmt: str,
    out_dir: Path,
    today: dt.date,
) -> str:
    """Draft the agreement for a request, register it as a draft, and keep it as fmt and as DOCX and PDF.

    The request is read as the actor may see it (other agencies are refused); registering checks
    that the actor may draft for it. Nothing is kept unless every document was written.
    """
    record = workflow_service.show(control, actor_id, request_id)
    with tempfile.TemporaryDirectory(prefix="sharewise-draft-") as tmp:
        request_file = Path(tmp) / "request.yaml"
        parties_file = Path(tmp) / "parties.yaml"
        request_file.write_text(yaml.safe_dump(record.request), encoding="utf-8")
        parties_file.write_text(yaml.safe_dump(parties), encoding="utf-8")
        formats = [fmt, *(f for f in SIGNABLE_FORMATS if f != fmt)]
        written = {}
        checker = agreement_registry.consent_checker(control, law)
        for each in formats:  # every document first: a parties problem stops the draft before it is registered
            written[each] = Path(tmp) / f"agreement.{each}"
            documents.draft_agreement_file(
                law, request_file, parties_file, each, written[each], today, doc_type, consent_checker=checker
            )
        agreement_id = agreement_registry.record_draft(
            control, law, actor_id, request_file, parties_file, written[fmt], doc_type, record.id
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        for each, path in written.items():
            shutil.move(path, out_dir / f"{agreement_id}.{each}")
    return agreement_id
