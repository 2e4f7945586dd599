"""Golden snapshot files: rendered documents compared byte for byte with a reviewed copy.

A missing snapshot is written and the test fails, so a person reviews it before it counts; a
changed document fails until it is reviewed and rewritten with SHAREWISE_UPDATE_SNAPSHOTS=1.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

UPDATE = os.environ.get("SHAREWISE_UPDATE_SNAPSHOTS") == "1"


def check_snapshot(path: Path, text: str) -> None:
    if UPDATE or not path.exists():
        path.write_text(text, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"snapshot {path.name} was missing and has been written; review it and run again")
    assert text == path.read_text(encoding="utf-8"), (
        f"{path.name} differs from the golden snapshot; review the change and rerun with SHAREWISE_UPDATE_SNAPSHOTS=1"
    )
