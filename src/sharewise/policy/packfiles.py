"""Where the federal pack lives, and the content hash of a set of pack directories."""

from __future__ import annotations

import hashlib
from pathlib import Path

FEDERAL_PACK = Path(__file__).resolve().parent.parent / "law" / "federal"


def hash_files(roots: list[Path]) -> str:
    """SHA-256 over every YAML file (relative name and bytes) of the given pack directories."""
    digest = hashlib.sha256()
    for root in roots:
        for path in sorted(root.rglob("*.yaml")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()
