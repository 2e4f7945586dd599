"""The person index: stable person ids across batches, with merges and splits recorded, and the trained linkage
model that later batches reuse, in a DuckDB file."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from sharewise.domain.errors import InvalidDataError, Problem, StorageError
from sharewise.linkage.model import TrainedModel
from sharewise.linkage.prepare import PREPARED_COLUMNS


@dataclass(frozen=True)
class IndexEvent:
    """A change of the index: a person created, merged into another, or split off another."""

    event: str  # created | merged | split
    person_id: str
    other_person_id: str | None
    records: int


@dataclass(frozen=True)
class Assignment:
    """Every record's person id after a batch, and the events that batch caused."""

    persons: dict[str, str]
    events: list[IndexEvent]
    next_number: int


def person_label(number: int) -> str:
    return f"P{number:09d}"


def assign(existing: Mapping[str, str], clusters: Mapping[str, str], next_number: int) -> Assignment:
    """Person ids for clustered records that keep every existing id that still names a group of records.

    A cluster keeps the id of the person most of whose records it holds (the oldest id when several persons
    claim it: the others are merged into it); a cluster claimed by nobody gets a new id (split off when it
    holds records of an existing person, created otherwise).
    """
    members: dict[str, list[str]] = defaultdict(list)
    for record, cluster in clusters.items():
        members[cluster].append(record)
    parts: dict[str, Counter[str]] = defaultdict(Counter)  # person -> cluster -> records
    for record, cluster in clusters.items():
        if record in existing:
            parts[existing[record]][cluster] += 1
    home = {
        person: sorted(c for c, n in counter.items() if n == max(counter.values()))[0]
        for person, counter in parts.items()
    }
    claims: dict[str, list[str]] = defaultdict(list)
    for person, cluster in home.items():
        claims[cluster].append(person)
    persons: dict[str, str] = {}
    events: list[IndexEvent] = []
    for cluster in sorted(members):
        records = members[cluster]
        claimants = sorted(claims.get(cluster, []))
        if claimants:
            survivor = claimants[0]
            for other in claimants[1:]:
                events.append(IndexEvent("merged", other, survivor, sum(parts[other].values())))
        else:
            survivor = person_label(next_number)
            next_number += 1
            origins = sorted({existing[r] for r in records if r in existing})
            if origins:
                for origin in origins:
                    events.append(
                        IndexEvent("split", survivor, origin, sum(1 for r in records if existing.get(r) == origin))
                    )
            else:
                events.append(IndexEvent("created", survivor, None, len(records)))
        for record in records:
            persons[record] = survivor
    return Assignment(persons, events, next_number)


class PersonIndex:
    """A person index in a DuckDB file the user names (the data plane; never the control-plane database)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.con = duckdb.connect(str(path))
        except (duckdb.Error, OSError) as exc:
            raise StorageError(f"cannot open the person index {path.name}") from exc
        self.con.execute("CREATE TABLE IF NOT EXISTS sw_meta (key VARCHAR PRIMARY KEY, value BIGINT)")
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS sw_person_records (record_id VARCHAR PRIMARY KEY, person_id VARCHAR, batch BIGINT)"
        )
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS sw_person_events (batch BIGINT, event VARCHAR, person_id VARCHAR, "
            "other_person_id VARCHAR, records BIGINT)"
        )
        # Every model a batch trained (Splink's JSON with what it was trained on); the latest is reused.
        self.con.execute("CREATE TABLE IF NOT EXISTS sw_model (batch BIGINT PRIMARY KEY, model VARCHAR)")

    def close(self) -> None:
        self.con.close()

    def _meta(self, key: str, default: int) -> int:
        rows = self.con.execute("SELECT value FROM sw_meta WHERE key = ?", [key]).fetchall()
        return int(rows[0][0]) if rows else default

    def prepared(self) -> pa.Table | None:
        tables = {r[0] for r in self.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "sw_prepared" not in tables:
            return None
        return self.con.sql(f"SELECT {', '.join(PREPARED_COLUMNS)} FROM sw_prepared").to_arrow_table()

    def persons(self) -> dict[str, str]:
        return dict(self.con.execute("SELECT record_id, person_id FROM sw_person_records").fetchall())

    def check_new(self, batch: pa.Table) -> None:
        known = self.persons()
        clashes = [r for r in batch.column("record_id").to_pylist() if r in known]
        if clashes:
            raise InvalidDataError(
                "records already indexed", [Problem("record_id", f"{len(clashes)} record ids are already in the index")]
            )

    def model(self) -> tuple[int, TrainedModel] | None:
        """The latest trained model and the batch that trained it, or None before any."""
        rows = self.con.execute("SELECT batch, model FROM sw_model ORDER BY batch DESC LIMIT 1").fetchall()
        if not rows:
            return None
        return int(rows[0][0]), TrainedModel.from_json(rows[0][1], f"{self.path.name}: sw_model batch {rows[0][0]}")

    def apply(self, batch: pa.Table, assignment: Assignment, model: TrainedModel | None = None) -> int:
        """Store a batch's prepared records, every record's person id, the events and the model it trained (if it
        trained one); return the batch number."""
        number = self._meta("batches", 0) + 1
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.register("sw_batch", batch)
            if self.prepared() is None:
                self.con.execute("CREATE TABLE sw_prepared AS SELECT * FROM sw_batch")
            else:
                self.con.execute("INSERT INTO sw_prepared SELECT * FROM sw_batch")
            self.con.unregister("sw_batch")
            rows = pa.table({"record_id": list(assignment.persons), "person_id": list(assignment.persons.values())})
            self.con.register("sw_assigned", rows)
            self.con.execute(
                "UPDATE sw_person_records SET person_id = a.person_id FROM sw_assigned a "
                "WHERE sw_person_records.record_id = a.record_id"
            )
            self.con.execute(
                "INSERT INTO sw_person_records SELECT a.record_id, a.person_id, ? FROM sw_assigned a "
                "WHERE a.record_id NOT IN (SELECT record_id FROM sw_person_records)",
                [number],
            )
            self.con.unregister("sw_assigned")
            for e in assignment.events:
                self.con.execute(
                    "INSERT INTO sw_person_events VALUES (?, ?, ?, ?, ?)",
                    [number, e.event, e.person_id, e.other_person_id, e.records],
                )
            if model is not None:
                self.con.execute("INSERT INTO sw_model VALUES (?, ?)", [number, model.to_json()])
            for key, value in (("batches", number), ("next_person", assignment.next_number)):
                self.con.execute("INSERT OR REPLACE INTO sw_meta VALUES (?, ?)", [key, value])
            self.con.execute("COMMIT")
        except duckdb.Error as exc:
            self.con.execute("ROLLBACK")
            raise StorageError(f"writing the person index {self.path.name} failed; nothing changed") from exc
        return number

    def next_number(self) -> int:
        return self._meta("next_person", 1)
