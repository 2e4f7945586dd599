"""Pseudonym keys: one per agreement, rotated by version, in files only their owner can read."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from sharewise.domain.errors import IntegrityError, InvalidDataError, InvalidStateError, NotFoundError
from sharewise.security.keys import FileKeyProvider, public_key_pem
from sharewise.security.secrets import FileSecrets


def test_each_agreement_gets_its_own_key(tmp_path: Path) -> None:
    keys = FileKeyProvider(tmp_path / "keys")
    a = keys.create_pseudonym_key("agr-a")
    b = keys.create_pseudonym_key("agr-b")
    assert a.secret != b.secret and a.key_id != b.key_id
    assert keys.pseudonym_key("agr-a") == a


def test_key_files_and_folders_are_private(tmp_path: Path) -> None:
    keys = FileKeyProvider(tmp_path / "keys")
    keys.create_pseudonym_key("agr-a")
    path = tmp_path / "keys" / "pseudonym" / "agr-a" / "v1.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "keys").stat().st_mode & 0o777 == 0o700


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    keys = FileKeyProvider(tmp_path / "keys")
    keys.create_pseudonym_key("agr-a")
    os.chmod(tmp_path / "keys" / "pseudonym" / "agr-a" / "v1.key", 0o644)
    with pytest.raises(IntegrityError, match="chmod"):
        keys.pseudonym_key("agr-a")


def test_a_missing_key_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="sharewise share key agr-x"):
        FileKeyProvider(tmp_path).pseudonym_key("agr-x")


def test_rotation_makes_a_new_current_key_and_keeps_the_old_one(tmp_path: Path) -> None:
    keys = FileKeyProvider(tmp_path / "keys")
    first = keys.create_pseudonym_key("agr-a")
    second = keys.rotate_pseudonym_key("agr-a")
    assert second.version == 2 and second.secret != first.secret
    assert keys.pseudonym_key("agr-a") == second
    assert keys.pseudonym_key("agr-a", version=1) == first


def test_a_second_first_key_is_refused(tmp_path: Path) -> None:
    keys = FileKeyProvider(tmp_path)
    keys.create_pseudonym_key("agr-a")
    with pytest.raises(InvalidStateError):
        keys.create_pseudonym_key("agr-a")


def test_agreement_ids_cannot_escape_the_key_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidDataError):
        FileKeyProvider(tmp_path).create_pseudonym_key("../../etc")


def test_the_signing_key_is_created_once_and_kept(tmp_path: Path) -> None:
    keys = FileKeyProvider(tmp_path / "keys")
    assert public_key_pem(keys.signing_key()) == public_key_pem(FileKeyProvider(tmp_path / "keys").signing_key())


def test_key_repr_never_shows_the_secret(tmp_path: Path) -> None:
    key = FileKeyProvider(tmp_path).create_pseudonym_key("agr-a")
    assert key.secret.hex() not in repr(key) and str(key.secret) not in repr(key)


def test_the_signing_key_rotates_and_the_old_one_is_retired_not_deleted(tmp_path: Path) -> None:
    from sharewise.security.package import key_id

    keys = FileKeyProvider(tmp_path)
    old = keys.signing_key()
    new = keys.rotate_signing_key()
    assert key_id(new.public_key()) != key_id(old.public_key())
    assert key_id(keys.signing_key().public_key()) == key_id(new.public_key())
    [retired] = tmp_path.glob("package-signing-ec-p256.*.retired.pem")
    assert key_id(old.public_key()) in retired.name and retired.stat().st_mode & 0o077 == 0


def test_reviewer_keys_are_personal_versioned_and_confined(tmp_path: Path) -> None:
    keys = FileKeyProvider(tmp_path)
    first = keys.reviewer_key("sam")
    assert keys.reviewer_key("sam").public_key() == first.public_key()
    assert keys.reviewer_key("lee").public_key() != first.public_key()
    second = keys.rotate_reviewer_key("sam")
    assert keys.reviewer_key("sam").public_key() == second.public_key() != first.public_key()
    with pytest.raises(InvalidDataError):
        keys.reviewer_key("../escape")


# Named keys (FileSecrets) created by two runs at once -----------------------------------------------


def test_a_named_key_being_written_is_never_read_half_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two share jobs of one server create the person-index key at the same moment: both get the one key."""
    real_fdopen = os.fdopen
    writing, resume = threading.Event(), threading.Event()
    calls = [0]

    def paused_first_write(fd: int, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:  # the first writer stops between creating its file and writing the key
            writing.set()
            resume.wait(10)
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", paused_first_write)
    first: list[bytes] = []
    thread = threading.Thread(target=lambda: first.append(FileSecrets(tmp_path / "keys").key("person-index")))
    thread.start()
    assert writing.wait(10)
    second = FileSecrets(tmp_path / "keys").key("person-index")  # meanwhile: no empty or partial key to read
    resume.set()
    thread.join(10)
    assert first == [second] and len(second) == 32
    assert FileSecrets(tmp_path / "keys").key("person-index") == second
    assert [p.name for p in (tmp_path / "keys").iterdir()] == ["person-index.key"]  # no temporary file left


def test_many_threads_creating_one_named_key_all_get_it(tmp_path: Path) -> None:
    start = threading.Barrier(8)
    got: list[bytes] = []

    def create() -> None:
        start.wait()
        got.append(FileSecrets(tmp_path / "keys").key("person-index"))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(got) == 8 and len(set(got)) == 1
    assert stat.S_IMODE((tmp_path / "keys" / "person-index.key").stat().st_mode) == 0o600
