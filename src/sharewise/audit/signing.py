"""Ed25519 keys that sign audit checkpoints, kept in files apart from the database."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sharewise.domain.errors import IntegrityError, StorageError
from sharewise.store.files import write_exclusive


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """A short, stable id for a public key (SHA-256 of its raw bytes)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class CheckpointSigner:
    """Signs checkpoint statements with a private key."""

    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_key)

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private_key.sign(message)).decode()


def verify_signature(public_key: Ed25519PublicKey, message: bytes, signature: str) -> bool:
    """Whether a base64 Ed25519 signature over message is valid for the key."""
    try:
        public_key.verify(base64.b64decode(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def load_or_create_signer(path: Path) -> CheckpointSigner:
    """Read the signing key (PEM, PKCS#8), creating it with owner-only permissions if absent."""
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise IntegrityError(f"the audit signing key {path} is readable by others (mode {mode:o}); chmod 600 it")
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, OSError) as exc:
            raise StorageError(f"cannot read the audit signing key {path}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise IntegrityError(f"{path} is not an Ed25519 private key")
        return CheckpointSigner(key)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        created = write_exclusive(path, pem)
    except OSError as exc:
        raise StorageError(f"cannot create the audit signing key at {path}: {exc.strerror}") from exc
    # Another process created it first: that whole key is the one, never a second.
    return CheckpointSigner(key) if created else load_or_create_signer(path)


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_key(pem: str) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise IntegrityError("the public key is not an Ed25519 key")
    return key
