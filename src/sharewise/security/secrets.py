"""Named secret keys kept in files apart from the data, readable by their owner only."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sharewise.domain.errors import IntegrityError, StorageError
from sharewise.store.files import write_exclusive

KEY_BYTES = 32


class FileSecrets:
    """32-byte keys by name in one directory (mode 700; files mode 600), created on first use."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def key(self, name: str) -> bytes:
        if not name.replace("-", "").replace("_", "").isalnum():
            raise ValueError("key names are letters, digits, - and _")
        path = self.directory / f"{name}.key"
        if path.exists():
            mode = path.stat().st_mode & 0o777
            if mode & 0o077:
                raise IntegrityError(f"key file {path} is accessible to others (mode {mode:o}); chmod 600 it")
            data = path.read_bytes()
            if len(data) != KEY_BYTES:
                raise IntegrityError(f"key file {path} does not hold a {KEY_BYTES}-byte key")
            return data
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            data = secrets.token_bytes(KEY_BYTES)
            created = write_exclusive(path, data)
        except OSError as exc:
            raise StorageError(f"cannot create key {name} in {self.directory}: {exc.strerror}") from exc
        # Another process or thread created it first: theirs is whole (never half written), and it is the key.
        return data if created else self.key(name)

    def key_id(self, name: str) -> str:
        """A non-secret id of the current key (to know which key sealed a record)."""
        return hashlib.sha256(b"key-id\0" + self.key(name)).hexdigest()[:16]


def keyed_token(key: bytes, value: str) -> str:
    """HMAC-SHA256 of a value: a lookup token that reveals nothing without the key."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def seal(key: bytes, plaintext: bytes, context: bytes) -> bytes:
    """AES-256-GCM with a random 96-bit nonce; the context is authenticated, not stored."""
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, context)


def unseal(key: bytes, sealed: bytes, context: bytes) -> bytes:
    """Open what seal() produced, or raise IntegrityError if it was altered or the key differs."""
    from cryptography.exceptions import InvalidTag

    try:
        return AESGCM(key).decrypt(sealed[:12], sealed[12:], context)
    except (InvalidTag, ValueError) as exc:
        raise IntegrityError("sealed data failed authentication (altered, or another key)") from exc
