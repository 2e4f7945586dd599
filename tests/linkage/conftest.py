"""Small fixed linkage data: a slice of FEBRL4 as standard person files, with its truth."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from sharewise.linkage.evaluate import febrl4

SIZE = 600


@pytest.fixture(scope="session")
def febrl_small() -> tuple[pa.Table, pa.Table, pa.Table, pa.Table]:
    """The first SIZE originals of FEBRL4 and their duplicates (record ids rec-N-org / rec-N-dup-0)."""
    a, b, ta, tb = febrl4()
    keep = {str(i) for i in range(SIZE)}
    mask_a = pa.array([e in keep for e in ta.column("entity_id").to_pylist()])
    mask_b = pa.array([e in keep for e in tb.column("entity_id").to_pylist()])
    return a.filter(mask_a), b.filter(mask_b), ta.filter(mask_a), tb.filter(mask_b)


@pytest.fixture(scope="session")
def febrl_files(tmp_path_factory: pytest.TempPathFactory, febrl_small: tuple[pa.Table, ...]) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("febrl")
    a, b = directory / "a.csv", directory / "b.csv"
    pacsv.write_csv(febrl_small[0], a)
    pacsv.write_csv(febrl_small[1], b)
    return a, b
