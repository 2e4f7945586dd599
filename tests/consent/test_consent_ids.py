"""Consent ids follow the FHIR id rule (1-64 of A-Z a-z 0-9 - .): the longest is stored, others refused first."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from alembic import command
from alembic.config import Config
from pydantic import ValidationError
from sqlalchemy import func, select

from sharewise.consent.fhir import to_fhir
from sharewise.consent.registry import SqlConsentStore
from sharewise.domain.consent import CONSENT_ID_RULE, ConsentRecord
from sharewise.domain.errors import InvalidDataError, NotFoundError
from sharewise.policy.model import LawPack
from sharewise.security.secrets import FileSecrets
from sharewise.services import consents as service
from sharewise.store.database import MIGRATIONS, Store, open_store
from sharewise.store.schema import audit_records, consents
from sharewise.wiring import Control
from tests.conftest import postgres_database
from tests.consent.conftest import PART2, consent

LONGEST = "c-" + "0123456789abcdef" * 3 + "ABCDEF.-a-z-Z9"  # 64 characters
assert len(LONGEST) == 64


def _counts(control: Control) -> tuple[int, int]:
    with control.store.transaction() as conn:
        return (
            conn.execute(select(func.count()).select_from(consents)).scalar_one(),
            conn.execute(select(func.count()).select_from(audit_records)).scalar_one(),
        )


def test_an_id_of_64_characters_is_stored_and_read_back(control: Control, law: LawPack) -> None:
    # `control` runs on SQLite and on PostgreSQL, which enforces the column's length.
    assert service.add(control, law, consent(id=LONGEST), actor="alice") == LONGEST
    assert service.show(control, LONGEST, "alice").id == LONGEST


def test_an_exported_consent_with_a_64_character_id_imports_as_itself(
    control: Control, law: LawPack, tmp_path: Path
) -> None:
    path = tmp_path / "consent.json"
    path.write_text(json.dumps(to_fhir(consent(id=LONGEST))))
    assert service.import_fhir(control, law, path, "alice").id == LONGEST


@pytest.mark.parametrize("bad", [LONGEST + "x", "c 2026", "c_2026", "c-2026-é", ""])
def test_an_id_breaking_the_fhir_rule_is_refused_naming_the_rule(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        consent(id=bad)
    (error,) = info.value.errors()
    assert error["loc"] == ("id",) and error["msg"] == CONSENT_ID_RULE


def test_a_consent_file_with_a_long_id_is_refused_by_line_and_nothing_is_stored(
    control: Control, law: LawPack, tmp_path: Path
) -> None:
    path = tmp_path / "consent.yaml"
    path.write_text(yaml.safe_dump({"id": LONGEST + "x", **PART2}, sort_keys=False))
    with pytest.raises(InvalidDataError) as info:
        service.read_consent(path)
    assert [(p.location, p.message) for p in info.value.problems] == [(f"{path}:1: id", CONSENT_ID_RULE)]
    assert _counts(control) == (0, 0)


@pytest.mark.parametrize("bad", [LONGEST + "x", "c 2026"])
def test_a_fhir_consent_with_a_bad_id_is_refused_at_consent_id_and_nothing_is_stored(
    control: Control, law: LawPack, tmp_path: Path, bad: str
) -> None:
    resource = to_fhir(consent())
    resource["id"] = bad  # too long (FHIR's own check knows no length) or outside its alphabet
    path = tmp_path / "consent.json"
    path.write_text(json.dumps(resource))
    with pytest.raises(InvalidDataError) as info:
        service.import_fhir(control, law, path, "alice")
    assert [(p.location, p.message) for p in info.value.problems] == [(f"{path}: Consent.id", CONSENT_ID_RULE)]
    assert _counts(control) == (0, 0)


def test_the_registry_refuses_a_bad_id_that_skipped_validation(control: Control) -> None:
    copied = consent().model_copy(update={"id": LONGEST + "x"})  # model_copy does not validate
    store = service.registry(control)
    with pytest.raises(InvalidDataError) as info, control.store.transaction() as conn:
        store.add(conn, copied, dt.datetime(2026, 5, 1, tzinfo=dt.UTC))
    assert info.value.problems[0].message == CONSENT_ID_RULE
    assert _counts(control) == (0, 0)


def test_looking_up_an_id_longer_than_the_column_is_not_found(control: Control) -> None:
    with pytest.raises(NotFoundError):
        service.show(control, LONGEST + "x" * 10, "alice")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sharewise.db'}"
    else:
        with postgres_database() as url:  # fails, never skips, without PostgreSQL
            yield url


def _migrate(store: Store, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        conn.commit()


def test_the_migration_widens_the_id_column_and_keeps_the_consents_stored(database_url: str, tmp_path: Path) -> None:
    before = Store(database_url)
    _migrate(before, "0008")  # the schema whose id column held 40 characters
    keys = FileSecrets(tmp_path / "keys")
    registry = SqlConsentStore(keys)
    now = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    old_id = "c-" + "x" * 38
    with before.transaction() as conn:
        registry.add(conn, consent(id=old_id), now)
    before.dispose()
    after = open_store(database_url)  # migrates to the newest revision
    try:
        with after.transaction() as conn:
            registry.add(conn, consent(id=LONGEST), now)
            assert registry.get(conn, old_id, reveal=True) == ConsentRecord.model_validate({**PART2, "id": old_id})
            assert registry.get(conn, LONGEST).id == LONGEST
    finally:
        after.dispose()
