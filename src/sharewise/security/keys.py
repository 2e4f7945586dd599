"""Keys for shares: one pseudonym key per agreement (with rotation) and the package signing key, kept in files."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sharewise.domain.errors import (
    IntegrityError,
    InvalidDataError,
    InvalidStateError,
    NotFoundError,
    Problem,
    StorageError,
)
from sharewise.store.files import write_exclusive

KEY_BYTES = 32
_AGREEMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class PseudonymKey:
    """A pseudonym key of one agreement: its version, a public id, and the secret (never printed)."""

    agreement_id: str
    version: int
    key_id: str
    secret: bytes = field(repr=False)


def key_id_of(secret: bytes) -> str:
    """A non-secret id that tells which key made a pseudonym, without revealing the key."""
    return hashlib.sha256(b"sharewise-key-id\0" + secret).hexdigest()[:16]


class KeyProvider(Protocol):
    """Where share keys come from; keys never sit beside the data they protect."""

    def pseudonym_key(self, agreement_id: str, version: int | None = None) -> PseudonymKey:
        """The agreement's current key (or a given version); NotFoundError when it has none."""
        ...

    def create_pseudonym_key(self, agreement_id: str) -> PseudonymKey:
        """The agreement's first key; InvalidStateError if it already has one."""
        ...

    def rotate_pseudonym_key(self, agreement_id: str) -> PseudonymKey:
        """A new current key for the agreement; older versions stay readable for earlier shares."""
        ...

    def signing_key(self) -> ec.EllipticCurvePrivateKey:
        """The key that signs package manifests (created on first use)."""
        ...

    def rotate_signing_key(self) -> ec.EllipticCurvePrivateKey:
        """A new package-signing key; the old one is retired (kept, never used again to sign)."""
        ...

    def reviewer_key(self, reviewer_id: str) -> Ed25519PrivateKey:
        """A reviewer's current Ed25519 key for signing assessments (created on first use)."""
        ...

    def rotate_reviewer_key(self, reviewer_id: str) -> Ed25519PrivateKey:
        """A new current key for the reviewer; signatures by older keys still verify against their public keys."""
        ...


def _check_private(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise IntegrityError(
            f"{path} is accessible to others (mode {mode:o}); restrict it with chmod 600 (or 700 for a directory)"
        )


class FileKeyProvider:
    """Keys in a directory (mode 700) of files (mode 600): pseudonym/<agreement>/v<N>.key and signing-ec-p256.pem."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _private_dir(self, path: Path) -> Path:
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the key directory {path}: {exc.strerror}") from exc
        _check_private(path)
        return path

    def _agreement_dir(self, agreement_id: str) -> Path:
        if not _AGREEMENT_ID.match(agreement_id) or ".." in agreement_id:
            raise InvalidDataError(
                "invalid agreement id", [Problem("agreement", "letters, digits, '.', '_' and '-' (at most 128)")]
            )
        return self.directory / "pseudonym" / agreement_id

    def _versions(self, agreement_id: str) -> list[int]:
        folder = self._agreement_dir(agreement_id)
        if not folder.is_dir():
            return []
        return sorted(int(m.group(1)) for p in folder.iterdir() if (m := re.fullmatch(r"v(\d+)\.key", p.name)))

    def pseudonym_key(self, agreement_id: str, version: int | None = None) -> PseudonymKey:
        versions = self._versions(agreement_id)
        if not versions:
            raise NotFoundError(
                f"agreement {agreement_id} has no pseudonym key; create one with `sharewise share key {agreement_id}`"
            )
        chosen = versions[-1] if version is None else version
        if chosen not in versions:
            raise NotFoundError(f"agreement {agreement_id} has no pseudonym key version {chosen}")
        folder = self._agreement_dir(agreement_id)
        _check_private(self.directory)
        _check_private(folder)
        path = folder / f"v{chosen}.key"
        _check_private(path)
        secret = path.read_bytes()
        if len(secret) != KEY_BYTES:
            raise IntegrityError(f"{path} does not hold a {KEY_BYTES}-byte key")
        return PseudonymKey(agreement_id, chosen, key_id_of(secret), secret)

    def create_pseudonym_key(self, agreement_id: str) -> PseudonymKey:
        if self._versions(agreement_id):
            raise InvalidStateError(f"agreement {agreement_id} already has a pseudonym key; rotate it instead")
        return self._new_version(agreement_id, 1)

    def rotate_pseudonym_key(self, agreement_id: str) -> PseudonymKey:
        versions = self._versions(agreement_id)
        if not versions:
            raise NotFoundError(f"agreement {agreement_id} has no pseudonym key to rotate")
        return self._new_version(agreement_id, versions[-1] + 1)

    def _new_version(self, agreement_id: str, version: int) -> PseudonymKey:
        self._private_dir(self.directory)
        self._private_dir(self.directory / "pseudonym")
        folder = self._private_dir(self._agreement_dir(agreement_id))
        secret = secrets.token_bytes(KEY_BYTES)
        try:
            created = write_exclusive(folder / f"v{version}.key", secret)
        except OSError as exc:
            raise StorageError(f"cannot write a key for agreement {agreement_id}: {exc.strerror}") from exc
        if not created:
            raise InvalidStateError(
                f"key version {version} of agreement {agreement_id} was created concurrently; retry"
            )
        return PseudonymKey(agreement_id, version, key_id_of(secret), secret)

    def signing_key(self) -> ec.EllipticCurvePrivateKey:
        path = self._private_dir(self.directory) / "package-signing-ec-p256.pem"
        if not path.exists():
            pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            try:
                write_exclusive(path, pem)
            except OSError as exc:
                raise StorageError(f"cannot write the signing key: {exc.strerror}") from exc
        _check_private(path)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise IntegrityError(f"{path} does not hold an EC private key")
        return key

    def rotate_signing_key(self) -> ec.EllipticCurvePrivateKey:
        path = self._private_dir(self.directory) / "package-signing-ec-p256.pem"
        if path.exists():
            old = self.signing_key()
            retired = path.with_name(f"package-signing-ec-p256.{_public_key_id(old)}.retired.pem")
            try:
                os.replace(path, retired)
            except OSError as exc:
                raise StorageError(f"cannot retire the signing key: {exc.strerror}") from exc
        return self.signing_key()

    def _reviewer_dir(self, reviewer_id: str) -> Path:
        if not _AGREEMENT_ID.match(reviewer_id) or ".." in reviewer_id:
            raise InvalidDataError(
                "invalid reviewer id", [Problem("reviewer", "letters, digits, '.', '_' and '-' (at most 128)")]
            )
        return self.directory / "reviewers" / reviewer_id

    def _reviewer_versions(self, reviewer_id: str) -> list[int]:
        folder = self._reviewer_dir(reviewer_id)
        if not folder.is_dir():
            return []
        return sorted(int(m.group(1)) for p in folder.iterdir() if (m := re.fullmatch(r"v(\d+)\.pem", p.name)))

    def reviewer_key(self, reviewer_id: str) -> Ed25519PrivateKey:
        versions = self._reviewer_versions(reviewer_id)
        if not versions:
            return self._new_reviewer_key(reviewer_id, 1)
        path = self._reviewer_dir(reviewer_id) / f"v{versions[-1]}.pem"
        _check_private(path)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise IntegrityError(f"{path} does not hold an Ed25519 private key")
        return key

    def rotate_reviewer_key(self, reviewer_id: str) -> Ed25519PrivateKey:
        versions = self._reviewer_versions(reviewer_id)
        return self._new_reviewer_key(reviewer_id, (versions[-1] if versions else 0) + 1)

    def _new_reviewer_key(self, reviewer_id: str, version: int) -> Ed25519PrivateKey:
        folder = self._reviewer_dir(reviewer_id)
        self._private_dir(folder.parent)
        self._private_dir(folder)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            created = write_exclusive(folder / f"v{version}.pem", pem)
        except OSError as exc:
            raise StorageError(f"cannot write the reviewer key: {exc.strerror}") from exc
        if not created:
            raise InvalidStateError(f"reviewer '{reviewer_id}' already has a key version {version}")
        return key


def _public_key_id(key: ec.EllipticCurvePrivateKey) -> str:
    """The id packages record for their signer (SHA-256 of the SubjectPublicKeyInfo, as package.key_id)."""
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def public_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The public half of a signing key, to give to recipients out of band."""
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
