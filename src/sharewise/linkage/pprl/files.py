"""Encoding files: opaque ids and Bloom filters in Parquet, with the schema fingerprint and a secret check."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from sharewise.domain.errors import InvalidDataError, NotFoundError, Problem
from sharewise.linkage.pprl.schema import LinkageSchema

ENCODING_COLUMNS = ("enc_id", "clk")
META_KEY = b"sharewise.pprl"


@dataclass(frozen=True)
class Encodings:
    """What a linkage unit receives: opaque ids, packed encodings, and the schema they were made under."""

    ids: list[str]
    bits: npt.NDArray[np.uint8]
    schema_name: str
    schema_version: int
    fingerprint: str
    secret_check: str
    encoded_bits: int


def opaque_ids(n: int) -> list[str]:
    """Random ids for encodings; only the encoding party's crosswalk maps them back to record ids."""
    text = secrets.token_bytes(12 * n).hex().encode("ascii")
    return np.frombuffer(text, dtype="S24").astype("U24").tolist() if n else []


def write_encodings(path: Path, ids: list[str], bits: npt.NDArray[np.uint8], schema: LinkageSchema, check: str) -> None:
    width = bits.shape[1]
    clk = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(ids), [None, pa.py_buffer(np.ascontiguousarray(bits).tobytes())]
    )
    meta = {
        "schema_name": schema.name,
        "schema_version": schema.version,
        "fingerprint": schema.fingerprint(),
        "secret_check": check,
        "encoded_bits": schema.encoded_bits,
    }
    table = pa.table({"enc_id": pa.array(ids, pa.string()), "clk": clk})
    table = table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def read_encodings(path: Path, label: str) -> Encodings:
    """Read and check an encoding file: exactly the encoding columns, the metadata, and consistent lengths."""
    if not path.exists():
        raise NotFoundError(f"{label}: file not found: {path.name}")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidDataError(
            "wrong encodings", [Problem(label, f"{path.name} is not a Parquet encoding file")]
        ) from exc
    problems = []
    extra = [c for c in table.column_names if c not in ENCODING_COLUMNS]
    if extra:
        problems.append(Problem(label, f"unexpected columns {', '.join(extra)}: a linkage unit accepts encodings only"))
    missing = [c for c in ENCODING_COLUMNS if c not in table.column_names]
    if missing:
        problems.append(Problem(label, f"missing columns {', '.join(missing)}"))
    raw_meta = (table.schema.metadata or {}).get(META_KEY)
    if raw_meta is None:
        problems.append(Problem(label, "no sharewise PPRL metadata (not made by `sharewise pprl encode`)"))
    if problems:
        raise InvalidDataError("wrong encodings", problems)
    meta = json.loads(raw_meta)  # type: ignore[arg-type]
    clk = table.column("clk").combine_chunks()
    if not pa.types.is_fixed_size_binary(clk.type) or clk.type.byte_width * 8 != meta["encoded_bits"]:
        raise InvalidDataError(
            "wrong encodings", [Problem(f"{label}.clk", "encodings do not have the length the schema says")]
        )
    if table.num_rows == 0:
        raise InvalidDataError("empty input", [Problem(label, f"{path.name} has no encodings")])
    if clk.null_count:
        raise InvalidDataError("wrong encodings", [Problem(f"{label}.clk", "some encodings are missing")])
    buffer = clk.buffers()[1]
    width = clk.type.byte_width
    bits = np.frombuffer(buffer, dtype=np.uint8, count=(clk.offset + len(clk)) * width)[clk.offset * width :]
    return Encodings(
        ids=table.column("enc_id").to_pylist(),
        bits=bits.reshape(len(clk), width).copy(),
        schema_name=str(meta["schema_name"]),
        schema_version=int(meta["schema_version"]),
        fingerprint=str(meta["fingerprint"]),
        secret_check=str(meta["secret_check"]),
        encoded_bits=int(meta["encoded_bits"]),
    )


def check_compatible(a: Encodings, b: Encodings) -> None:
    """Two parties' encodings can be matched only under the same schema and the same secret."""
    problems = []
    if a.fingerprint != b.fingerprint:
        problems.append(
            Problem(
                "schema",
                f"the parties used different linkage schemas ({a.schema_name} v{a.schema_version} "
                f"and {b.schema_name} v{b.schema_version}, fingerprints {a.fingerprint[:12]} and {b.fingerprint[:12]})",
            )
        )
    elif a.secret_check != b.secret_check:
        problems.append(Problem("secret", "the parties used different secrets"))
    if problems:
        raise InvalidDataError("schema mismatch between parties", problems)
