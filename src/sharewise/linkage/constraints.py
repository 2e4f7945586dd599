"""Cannot-link constraints: veto scored pairs that strong evidence says join two people, and cluster without them.

The rules are data (`data/cannot_link.yaml`, or a file of the same format): each is a conjunction of conditions from a
small vocabulary, each condition one SQL expression over the prepared columns of the two records (`l`, `r`). Everything
runs as DuckDB SQL over the predictions table, except the split of a cluster that joins two records a rule keeps
apart, which is sequential by nature and touches only those clusters (a handful in a million records).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import yaml

from sharewise.domain.errors import InvalidDataError, NotFoundError, Problem

RULES_FORMAT = "sharewise-cannot-link/1"

# The prepared columns the conditions read, with their types (a column the records lack is null: its conditions never hold).
COLUMNS: dict[str, str] = {
    "given_std": "VARCHAR",
    "given_formal": "VARCHAR[]",
    "middle_std": "VARCHAR",
    "surname_std": "VARCHAR",
    "dob": "VARCHAR",
    "ssn": "VARCHAR",
    "sex": "VARCHAR",
}


@dataclass(frozen=True)
class Param:
    """A condition parameter: its default and range (integers where `integer`)."""

    default: float
    low: float
    high: float
    integer: bool = False


@dataclass(frozen=True)
class ConditionKind:
    """A condition of the vocabulary: what it checks, its parameters, and its SQL (given the parameters)."""

    summary: str
    params: Mapping[str, Param]
    sql: Callable[[Mapping[str, float], Sequence[str]], str]


def _ssn_differs(p: Mapping[str, float], _: Sequence[str]) -> str:
    return (
        f"l.ssn <> r.ssn AND length(l.ssn) = length(r.ssn) AND length(l.ssn) >= {int(p['min_digits'])} "
        f"AND damerau_levenshtein(l.ssn, r.ssn) > {int(p['typo_edits'])}"
    )


def _ssn_agrees(p: Mapping[str, float], _: Sequence[str]) -> str:
    return (
        f"l.ssn = r.ssn OR damerau_levenshtein(l.ssn, r.ssn) <= {int(p['typo_edits'])} "
        f"OR (least(length(l.ssn), length(r.ssn)) < {int(p['min_digits'])} AND right(l.ssn, 4) = right(r.ssn, 4))"
    )


def _dob_differs(p: Mapping[str, float], _: Sequence[str]) -> str:
    transposed = (
        "substr(l.dob, 1, 4) = substr(r.dob, 1, 4) AND substr(l.dob, 6, 2) = substr(r.dob, 9, 2) "
        "AND substr(l.dob, 9, 2) = substr(r.dob, 6, 2)"
    )
    return f"damerau_levenshtein(l.dob, r.dob) > {int(p['typo_edits'])} AND NOT ({transposed})"


def _held(condition: str) -> str:
    """SQL: true when the condition holds, false when it does not or is null (missing data is no evidence).

    A CASE, not coalesce(): DuckDB evaluates a CASE condition's AND and OR operands only on the rows still undecided,
    so a costly comparison (Damerau-Levenshtein) runs on the few pairs a cheap one lets through; inside coalesce() it
    runs on every pair (measured on a million records: 0.05 s against 1.9 s).
    """
    return f"(CASE WHEN {condition} THEN true ELSE false END)"


def _given_names_unrelated(p: Mapping[str, float], unknown: Sequence[str]) -> str:
    similarity = float(p["similarity"])
    placeholders = ", ".join(f"'{name}'" for name in unknown) or "''"
    # Cheap comparisons first: each is evaluated only on the pairs that no earlier one related.
    related = [
        "l.given_std = r.given_std",
        # nicknames of one formal name (given_formal holds the name itself and what it can stand for)
        "list_has_any(l.given_formal, r.given_formal)",
        # an initial, or an abbreviation (Chris / Christopher), of the name or of a formal name it stands for (W / Bill)
        "starts_with(l.given_std, r.given_std) OR starts_with(r.given_std, l.given_std)",
        "list_bool_or(list_transform(l.given_formal, lambda x: starts_with(x, r.given_std)))",
        "list_bool_or(list_transform(r.given_formal, lambda x: starts_with(x, l.given_std)))",
        # a part of a compound name (Ann / Maryann)
        "least(length(l.given_std), length(r.given_std)) >= 3 "
        "AND (ends_with(l.given_std, r.given_std) OR ends_with(r.given_std, l.given_std))",
        # given and middle name swapped, or the middle initial standing for the given name
        "starts_with(l.given_std, r.middle_std) OR starts_with(r.middle_std, l.given_std)",
        "starts_with(r.given_std, l.middle_std) OR starts_with(l.middle_std, r.given_std)",
        f"l.given_std IN ({placeholders}) OR r.given_std IN ({placeholders})",
        # a typo: similar spelling, or a letter replaced, added, dropped or two swapped (short names: Kia / Kai)
        f"jaro_winkler_similarity(l.given_std, r.given_std) >= {similarity}",
        # given name and surname swapped (allowing a typo)
        f"jaro_winkler_similarity(l.given_std, r.surname_std) >= {similarity}",
        f"jaro_winkler_similarity(l.surname_std, r.given_std) >= {similarity}",
        f"damerau_levenshtein(l.given_std, r.given_std) <= {int(p['typo_edits'])}",
    ]
    return "l.given_std IS NOT NULL AND r.given_std IS NOT NULL AND NOT (" + " OR ".join(map(_held, related)) + ")"


CONDITIONS: dict[str, ConditionKind] = {
    "ssn_differs": ConditionKind(
        "both SSNs have the same number of digits, at least min_digits, and differ by more than typo_edits",
        {"min_digits": Param(7, 4, 12, True), "typo_edits": Param(2, 0, 6, True)},
        _ssn_differs,
    ),
    "ssn_agrees": ConditionKind(
        "both SSNs present and within typo_edits, or the last four agree when either is partial",
        {"min_digits": Param(7, 4, 12, True), "typo_edits": Param(2, 0, 6, True)},
        _ssn_agrees,
    ),
    "dob_equal": ConditionKind("the same date of birth", {}, lambda p, u: "l.dob = r.dob"),
    "dob_differs": ConditionKind(
        "both dates of birth present and more than typo_edits apart, and not day and month transposed",
        {"typo_edits": Param(2, 0, 6, True)},
        _dob_differs,
    ),
    "given_names_unrelated": ConditionKind(
        "both given names present and not the same name, a nickname, an initial, a part, swapped, or a typo",
        {"similarity": Param(0.88, 0.5, 1.0), "typo_edits": Param(1, 0, 3, True)},
        _given_names_unrelated,
    ),
    "sex_differs": ConditionKind("both sexes present and different", {}, lambda p, u: "l.sex <> r.sex"),
    "surname_equal": ConditionKind("the same surname", {}, lambda p, u: "l.surname_std = r.surname_std"),
}


@dataclass(frozen=True)
class Condition:
    """One condition of a rule, with its parameters; `negated` when the rule asks that it does not hold."""

    kind: str
    params: Mapping[str, float] = field(default_factory=dict)
    negated: bool = False

    def sql(self, unknown: Sequence[str]) -> str:
        kind = CONDITIONS[self.kind]
        values = {name: self.params.get(name, param.default) for name, param in kind.params.items()}
        held = _held(kind.sql(values, unknown))
        return f"NOT {held}" if self.negated else held


@dataclass(frozen=True)
class CannotLink:
    """A rule: when all its conditions hold for two records, they are two people."""

    id: str
    summary: str
    conditions: tuple[Condition, ...]
    enabled: bool = True


@dataclass(frozen=True)
class CannotLinkRules:
    """The rules in force and the placeholder given names they ignore; `sha256` is the digest of the file they were
    read from (what the audit trail records: a file's path can name a person), empty for rules built in code."""

    rules: tuple[CannotLink, ...]
    unknown_given_names: tuple[str, ...] = ()
    sha256: str = ""

    @property
    def enabled(self) -> tuple[CannotLink, ...]:
        return tuple(rule for rule in self.rules if rule.enabled)

    def violated(self) -> str:
        """SQL: the id of the first enabled rule that two records (`l`, `r`) break, or null."""
        if not self.enabled:
            return "CAST(NULL AS VARCHAR)"
        cases = " ".join(
            f"WHEN {' AND '.join(t.sql(self.unknown_given_names) for t in rule.conditions)} THEN '{rule.id}'"
            for rule in self.enabled
        )
        return f"CASE {cases} END"


TOP_LEVEL = frozenset({"format", "rules", "unknown_given_names"})
# A rules file is a page of YAML; anything far larger is not one (and is not read into memory).
MAX_RULES_BYTES = 1 << 20
_RULE_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_NAME = re.compile(r"^[a-z]+$")


def _condition(raw: object, where: str, problems: list[Problem], negated: bool = False) -> Condition | None:
    if not isinstance(raw, dict) or len(raw) != 1:
        problems.append(Problem(where, "one condition: {name: {parameters}} or not: {name: {parameters}}"))
        return None
    name, params = next(iter(raw.items()))
    if name == "not" and not negated:
        return _condition(params, f"{where}.not", problems, negated=True)
    if name not in CONDITIONS:
        problems.append(Problem(where, f"unknown condition '{name}': one of {', '.join(CONDITIONS)}, or not"))
        return None
    kind = CONDITIONS[name]
    if params is None:
        params = {}
    if not isinstance(params, dict):
        problems.append(Problem(f"{where}.{name}", "parameters as a mapping ({} for none)"))
        return None
    values: dict[str, float] = {}
    for key, value in params.items():
        spec = kind.params.get(str(key))
        if spec is None:
            known = ", ".join(kind.params) or "none"
            problems.append(Problem(f"{where}.{name}.{key}", f"unknown parameter (parameters: {known})"))
        elif isinstance(value, bool) or not isinstance(value, int | float) or (spec.integer and value != int(value)):
            problems.append(Problem(f"{where}.{name}.{key}", "an integer" if spec.integer else "a number"))
        elif not spec.low <= value <= spec.high:
            problems.append(Problem(f"{where}.{name}.{key}", f"from {spec.low:g} to {spec.high:g}"))
        else:
            values[str(key)] = float(value)
    return Condition(name, values, negated)


def parse_rules(raw: object, where: str = "cannot-link rules") -> CannotLinkRules:
    """Rules from their YAML form; InvalidDataError listing every problem, located by field."""
    problems: list[Problem] = []
    if not isinstance(raw, dict):
        raise InvalidDataError("invalid cannot-link rules", [Problem(where, "a mapping with format and rules")])
    if raw.get("format") != RULES_FORMAT:
        problems.append(Problem(f"{where}: format", f"must be {RULES_FORMAT}"))
    unexpected = sorted(map(str, set(raw) - TOP_LEVEL))
    if unexpected:
        # A misspelt key (`unknown_given_name`) would otherwise be ignored without a word.
        fields = ", ".join(sorted(TOP_LEVEL))
        problems.append(Problem(where, f"unknown fields: {', '.join(unexpected)} (fields: {fields})"))
    unknown = raw.get("unknown_given_names") or []
    if not isinstance(unknown, list) or not all(isinstance(n, str) and _NAME.match(n) for n in unknown):
        problems.append(Problem(f"{where}: unknown_given_names", "a list of lower-case names (letters only)"))
        unknown = []
    rules: list[CannotLink] = []
    raw_rules = raw.get("rules")
    if not isinstance(raw_rules, list):
        problems.append(Problem(f"{where}: rules", "a list of rules (an empty list turns every rule off)"))
        raw_rules = []
    seen: set[str] = set()
    for i, item in enumerate(raw_rules):
        at = f"{where}: rules[{i}]"
        if not isinstance(item, dict):
            problems.append(Problem(at, "a mapping with id, summary and all"))
            continue
        rule_id = item.get("id")
        if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id):
            problems.append(Problem(f"{at}.id", "a kebab-case id (lower-case letters, digits, hyphens)"))
            rule_id = f"rule-{i}"
        elif rule_id in seen:
            problems.append(Problem(f"{at}.id", f"'{rule_id}' is used twice"))
        seen.add(rule_id)
        summary = item.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            problems.append(Problem(f"{at}.summary", "a plain-language summary"))
            summary = ""
        enabled = item.get("enabled", True)
        if not isinstance(enabled, bool):
            problems.append(Problem(f"{at}.enabled", "true or false"))
            enabled = True
        extra = set(item) - {"id", "summary", "all", "enabled"}
        if extra:
            problems.append(Problem(at, f"unknown fields: {', '.join(sorted(map(str, extra)))}"))
        raw_conditions = item.get("all")
        if not isinstance(raw_conditions, list) or not raw_conditions:
            problems.append(Problem(f"{at}.all", "a non-empty list of conditions (all must hold)"))
            continue
        conditions = [_condition(t, f"{at}.all[{j}]", problems) for j, t in enumerate(raw_conditions)]
        if all(t is not None and t.negated for t in conditions):
            problems.append(Problem(f"{at}.all", "at least one condition that is not negated"))
        rules.append(
            CannotLink(rule_id, " ".join(summary.split()), tuple(t for t in conditions if t is not None), enabled)
        )
    if problems:
        raise InvalidDataError("invalid cannot-link rules", problems)
    return CannotLinkRules(tuple(rules), tuple(unknown))


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_rules(path: Path) -> CannotLinkRules:
    """Rules from a YAML file of the format of `data/cannot_link.yaml`, with the file's SHA-256.

    NotFoundError when there is no such file; InvalidDataError, every problem located by field, for anything else
    (not a file, too large, not UTF-8, not YAML, not the format). Problems name the file, never its folder.
    """
    name = path.name or "cannot-link rules"
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_RULES_BYTES + 1)
    except FileNotFoundError as exc:
        raise NotFoundError("cannot-link rules not found", [Problem(name, "no such file")]) from exc
    except IsADirectoryError as exc:
        raise InvalidDataError("invalid cannot-link rules", [Problem(name, "a folder, not a rules file")]) from exc
    except OSError as exc:
        raise InvalidDataError(
            "invalid cannot-link rules", [Problem(name, f"cannot be read ({type(exc).__name__})")]
        ) from exc
    if len(data) > MAX_RULES_BYTES:
        raise InvalidDataError("invalid cannot-link rules", [Problem(name, "larger than 1 MiB: not a rules file")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidDataError("invalid cannot-link rules", [Problem(name, "not UTF-8 text")]) from exc
    try:
        raw = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: a value YAML cannot build, such as 2026-02-30
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        raise InvalidDataError(
            "invalid cannot-link rules",
            [
                Problem(
                    where,
                    "not valid YAML"
                    if isinstance(exc, yaml.YAMLError)
                    else "a value that cannot be read (for example an impossible date)",
                )
            ],
        ) from exc
    return replace(parse_rules(raw, name), sha256=_digest(data))


@cache
def default_rules() -> CannotLinkRules:
    """The rules sharewise ships (`src/sharewise/linkage/data/cannot_link.yaml`)."""
    data = resources.files("sharewise.linkage").joinpath("data", "cannot_link.yaml").read_bytes()
    return replace(parse_rules(yaml.safe_load(data.decode("utf-8")), "cannot_link.yaml"), sha256=_digest(data))


def provenance(rules: CannotLinkRules) -> str:
    """Where rules came from, for reports and the audit trail: `shipped` (the file sharewise ships), `file` (another
    rules file, identified by its SHA-256) or `code` (built in code, no file)."""
    if not rules.sha256:
        return "code"
    return "shipped" if rules.sha256 == default_rules().sha256 else "file"


@dataclass(frozen=True)
class Constrained:
    """What the constraints did.

    `edges` names a view in the connection: the predictions at or above the threshold (every column) without the
    pairs a rule vetoed or a split cut; `clusters` (record_id, cluster_id; the cluster id is its smallest record id,
    as Splink names clusters), empty when clustering was not asked for; `vetoed` counts vetoed pairs by rule;
    `clusters_split` and `edges_cut` count the clusters built through other records that joined two records a rule
    keeps apart, and the pairs cut to split them.
    """

    edges: str
    clusters: pa.Table
    vetoed: dict[str, int]
    clusters_split: int = 0
    edges_cut: int = 0

    @property
    def pairs_vetoed(self) -> int:
        return sum(self.vetoed.values())


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {d[0] for d in con.execute(f"SELECT * FROM {table} LIMIT 0").description}


def _has_data(table: pa.Table, column: str) -> bool:
    return column in table.column_names and table.num_rows - table.column(column).null_count > 0


def _typed_null(column: str) -> str:
    return f"CAST(NULL AS {COLUMNS[column]})"


class _Records:
    """The records the conditions read: for scored pairs, the predictions' own copies of the compared columns when they
    hold every column with data (no join), otherwise the prepared records (a view over them, registered)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        predictions: str,
        records: pa.Table | Mapping[str, pa.Table],
        tag: str,
    ) -> None:
        self.con, self.predictions, self.tag = con, predictions, tag
        self.tables = list(records.items()) if isinstance(records, Mapping) else [("", records)]
        for source, table in self.tables:
            if "record_id" not in table.column_names:
                raise InvalidDataError("records without ids", [Problem(source or "records", "no record_id column")])
        present = _columns(con, predictions)
        self.per_source = "source_dataset_l" in present and isinstance(records, Mapping)
        self.keys = ["record_id_l", "record_id_r"] + (
            ["source_dataset_l", "source_dataset_r"] if self.per_source else []
        )
        with_data = {c for c in COLUMNS if any(_has_data(t, c) for _, t in self.tables)}
        self.copied = {c for c in COLUMNS if {f"{c}_l", f"{c}_r"} <= present}
        self.joined = bool(with_data - self.copied)
        self.view = f"{tag}_records"
        parts = []
        for i, (source, table) in enumerate(self.tables):
            arrow = f"{tag}_in{i}"
            con.register(arrow, table.select([c for c in ("record_id", *COLUMNS) if c in table.column_names]))
            cols = ", ".join(c if c in table.column_names else f"{_typed_null(c)} AS {c}" for c in COLUMNS)
            label = source.replace("'", "''")
            parts.append(
                f"SELECT '{label}' AS source_dataset, CAST(record_id AS VARCHAR) AS record_id, {cols} FROM {arrow}"
            )
        con.execute(f"CREATE OR REPLACE TEMP VIEW {self.view} AS " + " UNION ALL ".join(parts))

    def pairs(self, level: float) -> str:
        """SQL: the predictions at or above `level` as `p`, with each record's columns as `l` and `r`."""
        keys = ", ".join(f"q.{k}" for k in self.keys)
        if not self.joined:

            def side(s: str) -> str:
                return ", ".join(f"{c} := {f'q.{c}_{s}' if c in self.copied else _typed_null(c)}" for c in COLUMNS)

            return (
                f"(SELECT {keys}, struct_pack({side('l')}) AS l, struct_pack({side('r')}) AS r "
                f"FROM {self.predictions} q WHERE q.match_probability >= {level}) p"
            )
        on = {
            s: f"{s}.record_id = CAST(q.record_id_{s} AS VARCHAR)"
            + (f" AND {s}.source_dataset = q.source_dataset_{s}" if self.per_source else "")
            for s in ("l", "r")
        }
        return (
            f"(SELECT {keys}, l, r FROM {self.predictions} q JOIN {self.view} l ON {on['l']} "
            f"JOIN {self.view} r ON {on['r']} WHERE q.match_probability >= {level}) p"
        )

    def of(self, ids: str, out: str) -> None:
        """A table `out` of the columns of the records listed in table `ids` (record_id), for pairs never scored."""
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {out} AS SELECT x.* EXCLUDE (source_dataset) FROM {self.view} x "
            f"SEMI JOIN {ids} i USING (record_id)"
        )

    def ids(self) -> str:
        """SQL: every record id (one table)."""
        return f"SELECT CAST(record_id AS VARCHAR) AS record_id FROM {self.tag}_in0"


def _components(con: duckdb.DuckDBPyConnection, edges: str, out: str) -> None:
    """Connected components of the records in `edges`: a table `out` (record_id, cluster_id = its smallest record id).

    Record ids are numbered in their own order first, so the rounds join integers; each round gives every record the
    smallest label among itself and its neighbours, then the label of that label (pointer jumping), so a chain of n
    records settles in about log n rounds.
    """
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {out}_ids AS SELECT record_id, (row_number() OVER (ORDER BY record_id)) - 1 "
        f"AS n FROM (SELECT record_id_l AS record_id FROM {edges} UNION SELECT record_id_r FROM {edges})"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {out}_links AS "
        f"WITH e AS (SELECT a.n AS a, b.n AS b FROM {edges} k JOIN {out}_ids a ON a.record_id = k.record_id_l "
        f"JOIN {out}_ids b ON b.record_id = k.record_id_r) "
        f"SELECT a, b FROM e UNION ALL SELECT b, a FROM e UNION ALL SELECT n, n FROM {out}_ids"
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE {out}_labels AS SELECT n AS node, n AS label FROM {out}_ids")
    while True:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {out}_next AS "
            f"WITH step AS (SELECT k.a AS node, min(x.label) AS label FROM {out}_links k "
            f"JOIN {out}_labels x ON x.node = k.b GROUP BY k.a) "
            f"SELECT s.node, least(s.label, j.label) AS label FROM step s JOIN step j ON j.node = s.label"
        )
        changed = con.execute(
            f"SELECT count(*) FROM {out}_next x JOIN {out}_labels o USING (node) WHERE x.label <> o.label"
        ).fetchall()[0][0]
        con.execute(f"DROP TABLE {out}_labels")
        con.execute(f"ALTER TABLE {out}_next RENAME TO {out}_labels")
        if not changed:
            break
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {out} AS SELECT i.record_id, c.record_id AS cluster_id FROM {out}_labels x "
        f"JOIN {out}_ids i ON i.n = x.node JOIN {out}_ids c ON c.n = x.label"
    )
    for suffix in ("ids", "links", "labels"):
        con.execute(f"DROP TABLE {out}_{suffix}")


def _split(edges: list[tuple[str, str, float]], apart: set[tuple[str, str]]) -> tuple[dict[str, str], int]:
    """Rebuild clusters from their edges, strongest first (ties by record ids), never joining two groups that a
    cannot-link pair spans. Returns each record's new cluster id (its group's smallest record id) and the number of
    edges left out."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    enemies: dict[str, set[str]] = {}
    for a, b in apart:
        enemies.setdefault(a, set()).add(b)
        enemies.setdefault(b, set()).add(a)
    members: dict[str, list[str]] = {}
    cut = 0
    for a, b, _ in sorted(edges, key=lambda e: (-e[2], e[0], e[1])):
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        group_a, group_b = members.setdefault(ra, [ra]), members.setdefault(rb, [rb])
        small, other = (group_a, rb) if len(group_a) <= len(group_b) else (group_b, ra)
        if any(find(enemy) == other for x in small for enemy in enemies.get(x, ())):
            cut += 1
            continue
        parent[rb] = ra
        members[ra] = group_a + group_b
        del members[rb]
    result: dict[str, str] = {}
    for group in members.values():
        label = min(group)
        for record in group:
            result[record] = label
    return result, cut


def apply_constraints(
    con: duckdb.DuckDBPyConnection,
    predictions: str,
    records: pa.Table | Mapping[str, pa.Table],
    threshold: float,
    rules: CannotLinkRules | None = None,
    cluster: bool = True,
) -> Constrained:
    """Veto the scored pairs a cannot-link rule matches and, when `cluster`, build clusters that respect the rules.

    `predictions` is a table in `con` with Splink's columns (record_id_l, record_id_r, match_probability,
    match_weight; source_dataset_l and _r when linking files; the compared columns as `<column>_l` and `_r` when
    Splink retains them, which spares a join); `records` the prepared records (one table; or, when linking, a mapping
    from source dataset name to its table). Pairs below `threshold` are not edges. Clusters are the connected
    components of the remaining edges; a cluster that still joins two records a rule keeps apart (through other
    records) is rebuilt from its edges, strongest first, leaving out each edge that would join them.
    """
    if rules is None:
        rules = default_rules()
    if cluster and isinstance(records, Mapping):
        raise InvalidDataError("invalid call", [Problem("cluster", "clusters are built when deduplicating one table")])
    tag = "sw_cl_" + uuid.uuid4().hex[:8]
    source = _Records(con, predictions, records, tag)
    level = float(threshold)
    keys = ", ".join(source.keys)
    violated = rules.violated()
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {tag}_removed AS SELECT {keys}, {violated} AS reason "
        f"FROM {source.pairs(level)} WHERE {'reason IS NOT NULL' if rules.enabled else 'false'}"
    )
    vetoed = {
        str(rule): int(n)
        for rule, n in con.execute(f"SELECT reason, count(*) FROM {tag}_removed GROUP BY 1 ORDER BY 1").fetchall()
    }
    edges = f"{tag}_edges"
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {edges} AS SELECT p.* FROM {predictions} p "
        f"ANTI JOIN {tag}_removed x USING ({keys}) WHERE p.match_probability >= {level}"
    )
    if not cluster:
        empty = pa.table({"record_id": pa.array([], pa.string()), "cluster_id": pa.array([], pa.string())})
        return Constrained(edges, empty, vetoed)
    kept, linked = f"{tag}_kept", f"{tag}_linked"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {kept} AS SELECT CAST(record_id_l AS VARCHAR) AS record_id_l, "
        f"CAST(record_id_r AS VARCHAR) AS record_id_r, match_weight FROM {edges}"
    )
    _components(con, kept, linked)
    split = cut = 0
    if rules.enabled:
        # Every pair of records in a cluster of three or more (a cluster of two is one edge, already checked).
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {tag}_big AS SELECT record_id, cluster_id FROM {linked} "
            f"WHERE cluster_id IN (SELECT cluster_id FROM {linked} GROUP BY 1 HAVING count(*) >= 3)"
        )
        source.of(f"{tag}_big", f"{tag}_attrs")
        apart = con.execute(
            f"WITH m AS (SELECT b.cluster_id, a.* FROM {tag}_big b JOIN {tag}_attrs a USING (record_id)) "
            f"SELECT l.record_id, r.record_id FROM m l JOIN m r "
            f"ON l.cluster_id = r.cluster_id AND l.record_id < r.record_id WHERE {violated} IS NOT NULL"
        ).fetchall()
        if apart:
            pairs = {(str(a), str(b)) for a, b in apart}
            con.register(f"{tag}_apart", pa.table({"record_id": sorted({x for pair in pairs for x in pair})}))
            bad = con.execute(
                f"SELECT DISTINCT cluster_id FROM {linked} SEMI JOIN {tag}_apart USING (record_id)"
            ).fetchall()
            split = len(bad)
            rows = con.execute(
                f"SELECT k.record_id_l, k.record_id_r, k.match_weight FROM {kept} k JOIN {linked} c "
                f"ON c.record_id = k.record_id_l WHERE c.cluster_id IN "
                f"(SELECT cluster_id FROM {linked} SEMI JOIN {tag}_apart USING (record_id))"
            ).fetchall()
            fixed, cut = _split([(str(a), str(b), float(w)) for a, b, w in rows], pairs)
            con.register(f"{tag}_fix", pa.table({"record_id": list(fixed), "cluster_id": list(fixed.values())}))
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {tag}_fixed AS SELECT c.record_id, "
                f"coalesce(f.cluster_id, c.cluster_id) AS cluster_id FROM {linked} c LEFT JOIN {tag}_fix f "
                f"USING (record_id)"
            )
            # The edges the split left out now join two clusters: they are removed too.
            con.execute(
                f"INSERT INTO {tag}_removed BY NAME SELECT k.record_id_l, k.record_id_r, 'split' AS reason "
                f"FROM {kept} k JOIN {tag}_fixed a ON a.record_id = k.record_id_l "
                f"JOIN {tag}_fixed b ON b.record_id = k.record_id_r WHERE a.cluster_id <> b.cluster_id"
            )
            linked = f"{tag}_fixed"
    table = con.sql(
        f"SELECT r.record_id, coalesce(c.cluster_id, r.record_id) AS cluster_id FROM ({source.ids()}) r "
        f"LEFT JOIN {linked} c USING (record_id) ORDER BY r.record_id"
    ).to_arrow_table()
    return Constrained(edges, table, vetoed, split, cut)


def describe(rules: CannotLinkRules) -> list[dict[str, Any]]:
    """The rules as plain data (id, summary, conditions with parameters), for reports and the audit trail."""
    return [
        {
            "id": rule.id,
            "summary": rule.summary,
            "enabled": rule.enabled,
            "conditions": [
                {"condition": t.kind, "negated": t.negated, **{k: v for k, v in sorted(t.params.items())}}
                for t in rule.conditions
            ],
        }
        for rule in rules.rules
    ]
