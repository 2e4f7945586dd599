"""Packages: signed, encrypted for one recipient in CMS, verifiable, and published whole or not at all."""

from __future__ import annotations

import errno
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import BinaryIO

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from sharewise.domain.errors import IntegrityError, StorageError
from sharewise.security import package
from tests.pipeline.certs import make_recipient

SIGNER = ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    staging = tmp_path / "staging"
    (staging / "data").mkdir(parents=True)
    (staging / "data" / "part-0.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    return staging


def seal(staged: Path, tmp_path: Path, name: str = "s-1.p7m") -> tuple[package.SealedPackage, Path, Path]:
    cert, key = make_recipient(tmp_path)
    sealed = package.seal(
        staged,
        ["data/part-0.csv"],
        {"share_id": "s-1"},
        SIGNER,
        package.load_certificate(cert),
        tmp_path / "out" / name,
    )
    return sealed, cert, key


def test_a_published_package_verifies_with_the_recipient_key(staged: Path, tmp_path: Path) -> None:
    sealed, cert, key = seal(staged, tmp_path)
    published = sealed.commit()
    result = package.verify(
        published.path,
        package.load_certificate(cert),
        package.load_private_key(key),
        SIGNER.public_key(),
        tmp_path / "got",
    )
    assert result.signer_pinned and result.files == ("data/part-0.csv",)
    assert result.manifest["files"][0]["sha256"] == package.sha256_file(staged / "data" / "part-0.csv")
    assert (tmp_path / "got" / "data" / "part-0.csv").read_text(encoding="utf-8") == "a,b\n1,2\n"


def test_standard_tools_open_the_package(staged: Path, tmp_path: Path) -> None:
    # The openssl command is on every machine of this kind; a missing one fails, never skips.
    assert shutil.which("openssl"), "openssl is needed to show that standard tools open a package"
    sealed, cert, key = seal(staged, tmp_path)
    published = sealed.commit()
    tar = tmp_path / "bundle.tar"
    subprocess.run(
        [
            "openssl",
            "cms",
            "-decrypt",
            "-inform",
            "DER",
            "-in",
            str(published.path),
            "-recip",
            str(cert),
            "-inkey",
            str(key),
            "-binary",
            "-out",
            str(tar),
        ],
        check=True,
        capture_output=True,
    )
    with tarfile.open(tar) as bundle:
        bundle.extractall(tmp_path / "x", filter="data")
    pub = tmp_path / "x" / package.SIGNER_KEY
    subprocess.run(
        [
            "openssl",
            "dgst",
            "-sha256",
            "-verify",
            str(pub),
            "-signature",
            str(tmp_path / "x" / package.SIGNATURE),
            str(tmp_path / "x" / package.MANIFEST),
        ],
        check=True,
        capture_output=True,
    )
    printed = subprocess.run(
        ["openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", str(published.path)],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "aes-256-cbc" in printed.stdout
    assert "rsaesOaep" in printed.stdout and "sha256" in printed.stdout  # SP 800-131A: OAEP, not PKCS #1 v1.5


def test_a_package_sealed_with_pkcs1_v15_key_transport_still_opens(staged: Path, tmp_path: Path) -> None:
    # Packages published before the move to RSAES-OAEP remain readable by their recipients.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.ciphers import algorithms
    from cryptography.hazmat.primitives.serialization import pkcs7

    cert, key = make_recipient(tmp_path)
    old = tmp_path / "old.p7m"
    old.write_bytes(
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(b"bundle bytes")
        .add_recipient(package.load_certificate(cert))
        .set_content_encryption_algorithm(algorithms.AES256)
        .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
    assert package.decrypt(old, package.load_certificate(cert), package.load_private_key(key)) == b"bundle bytes"


def test_a_truncated_or_extended_package_is_refused(staged: Path, tmp_path: Path) -> None:
    sealed, cert, key = seal(staged, tmp_path)
    data = sealed.commit().path.read_bytes()
    for name, altered in (("short.p7m", data[:-16]), ("long.p7m", data + b"\0"), ("junk.p7m", b"not cms at all")):
        path = tmp_path / name
        path.write_bytes(altered)
        with pytest.raises(IntegrityError, match="does not decrypt"):
            package.verify(path, package.load_certificate(cert), package.load_private_key(key))


def test_another_recipient_cannot_open_the_package(staged: Path, tmp_path: Path) -> None:
    sealed, _, _ = seal(staged, tmp_path)
    published = sealed.commit()
    other_cert, other_key = make_recipient(tmp_path, "other")
    with pytest.raises(IntegrityError, match="does not decrypt"):
        package.verify(published.path, package.load_certificate(other_cert), package.load_private_key(other_key))


def test_a_package_signed_by_another_key_fails_a_pinned_check(staged: Path, tmp_path: Path) -> None:
    sealed, cert, key = seal(staged, tmp_path)
    published = sealed.commit()
    stranger = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(IntegrityError, match="signature"):
        package.verify(published.path, package.load_certificate(cert), package.load_private_key(key), stranger)


def test_an_altered_package_fails_verification(staged: Path, tmp_path: Path) -> None:
    sealed, cert, key = seal(staged, tmp_path)
    published = sealed.commit()
    recipient_cert, recipient_key = package.load_certificate(cert), package.load_private_key(key)
    bundle = package.decrypt(published.path, recipient_cert, recipient_key)
    with tarfile.open(fileobj=io.BytesIO(bundle)) as tar:
        manifest_at = tar.getmember(package.MANIFEST).offset_data
    data = bytearray(published.path.read_bytes())
    ciphertext_at = len(data) - (len(bundle) // 16 + 1) * 16  # CBC with PKCS#7 padding ends the file
    data[ciphertext_at + manifest_at + 20] ^= 0x01  # flips a manifest byte in the next block
    published.path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        package.verify(published.path, package.load_certificate(cert), package.load_private_key(key))


def test_nothing_appears_under_the_final_name_until_commit(staged: Path, tmp_path: Path) -> None:
    sealed, _, _ = seal(staged, tmp_path)
    assert not sealed.target.exists() and sealed.partial.exists()
    sealed.discard()
    assert list((tmp_path / "out").iterdir()) == []


def test_a_crash_while_renaming_leaves_no_package(
    staged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sealed, _, _ = seal(staged, tmp_path)

    def crash(src: object, dst: object) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StorageError):
        sealed.commit()
    assert list((tmp_path / "out").iterdir()) == []


def test_a_full_disk_is_reported_and_leaves_nothing(
    staged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(handle: BinaryIO, data: bytes) -> None:
        handle.write(data[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(package, "_write_chunk", full)
    with pytest.raises(StorageError, match="disk is full"):
        seal(staged, tmp_path)
    assert list((tmp_path / "out").iterdir()) == []


def test_an_existing_package_is_never_overwritten(staged: Path, tmp_path: Path) -> None:
    sealed, _, _ = seal(staged, tmp_path)
    sealed.commit()
    with pytest.raises(StorageError, match="already exists"):
        seal(staged, tmp_path)
