"""Small fixed linkage data: a slice of FEBRL4 as standard person files, with its truth."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from sharewise.linkage.evaluate import febrl4
from sharewise.linkage.link import LinkOptions
from sharewise.linkage.model import TrainingOptions
from sharewise.services import linkage

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


@pytest.fixture(scope="session")
def febrl_batches(
    tmp_path_factory: pytest.TempPathFactory, febrl_small: tuple[pa.Table, ...]
) -> tuple[Path, Path, dict[str, str]]:
    """Two batches for a person index, each with enough duplicates to train on, and the truth of both.

    The first holds the originals and half of the duplicates, the second the other half of the duplicates.
    """
    a, b, ta, tb = febrl_small
    half = b.num_rows // 2
    directory = tmp_path_factory.mktemp("batches")
    first, second = directory / "first.csv", directory / "second.csv"
    pacsv.write_csv(pa.concat_tables([a, b.slice(0, half)]), first)
    pacsv.write_csv(b.slice(half), second)
    truth = dict(
        zip(
            ta.column("record_id").to_pylist() + tb.column("record_id").to_pylist(),
            ta.column("entity_id").to_pylist() + tb.column("entity_id").to_pylist(),
            strict=True,
        )
    )
    return first, second, truth


@pytest.fixture(scope="session")
def first_batch_index(
    tmp_path_factory: pytest.TempPathFactory, febrl_batches: tuple[Path, Path, dict[str, str]]
) -> Path:
    """A person index holding the first batch and the model it trained: copy it before adding to it."""
    directory = tmp_path_factory.mktemp("index")
    index = directory / "people.duckdb"
    options = LinkOptions(threshold=0.9, training=TrainingOptions(u_max_pairs=2e5, em_max_pairs=1e5))
    linkage.dedupe_file(febrl_batches[0], directory / "clusters.csv", options, index_path=index)
    return index
