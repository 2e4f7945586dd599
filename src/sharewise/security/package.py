"""Share packages: a signed manifest with the files, encrypted for the recipient as CMS, published atomically."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sharewise.domain.errors import IntegrityError, InvalidDataError, Problem, StorageError
from sharewise.security import cms

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"  # DER ECDSA P-256 / SHA-256 over manifest.json: `openssl dgst -sha256 -verify`
SIGNER_KEY = "signer.pub.pem"
PACKAGE_SUFFIX = ".p7m"
FORMAT = "sharewise-package/1"
_DATA_FILE = re.compile(r"^data/part-\d+\.(parquet|csv)$")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class PublishedPackage:
    """A package as published: its path, size and SHA-256 (of the encrypted file)."""

    path: Path
    sha256: str
    bytes: int


@dataclass(frozen=True)
class VerifiedPackage:
    """A package that decrypted, whose signature and every file hash checked out."""

    manifest: dict[str, Any]
    signer_key_id: str
    signer_pinned: bool  # the signature was checked against a key the recipient trusts, not the enclosed one
    files: tuple[str, ...]


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """A short id of a public key: SHA-256 of its SubjectPublicKeyInfo."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def load_certificate(path: Path) -> x509.Certificate:
    """A recipient's X.509 certificate (PEM or DER) with an RSA key, for CMS key transport."""
    try:
        data = path.read_bytes()
        cert = x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)
    except (OSError, ValueError) as exc:
        raise InvalidDataError(
            "invalid recipient certificate", [Problem(str(path), "not a readable X.509 certificate")]
        ) from exc
    if not isinstance(cert.public_key(), rsa.RSAPublicKey):
        raise InvalidDataError(
            "invalid recipient certificate", [Problem(str(path), "CMS encryption needs an RSA certificate")]
        )
    return cert


def load_private_key(path: Path) -> rsa.RSAPrivateKey:
    """A recipient's RSA private key (PEM, unencrypted)."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidDataError("invalid private key", [Problem(str(path), "not a readable PEM private key")]) from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidDataError("invalid private key", [Problem(str(path), "not an RSA private key")])
    return key


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    """The sender's signing public key (PEM), which the recipient received out of band."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise InvalidDataError("invalid signer key", [Problem(str(path), "not a readable PEM public key")]) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InvalidDataError("invalid signer key", [Problem(str(path), "not an EC public key")])
    return key


def canonical_json(data: Mapping[str, Any]) -> bytes:
    """JSON with sorted keys and no insignificant whitespace differences, for signing."""
    return (json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _neutral(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Tar entries without the sender's user names or modes."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o600
    return info


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


@dataclass(frozen=True)
class SealedPackage:
    """An encrypted package written beside its final name, not yet published."""

    partial: Path
    target: Path
    sha256: str
    bytes: int

    def commit(self) -> PublishedPackage:
        """Publish: rename into place (atomic on one file system) and sync the directory."""
        try:
            if self.target.exists():
                raise StorageError(f"{self.target} already exists; a published package is never overwritten")
            os.replace(self.partial, self.target)
            _fsync_dir(self.target.parent)
        except OSError as exc:
            self.discard()
            raise _storage_error(exc) from exc
        return PublishedPackage(self.target, self.sha256, self.bytes)

    def discard(self) -> None:
        """Remove the unpublished file."""
        self.partial.unlink(missing_ok=True)


def _storage_error(exc: OSError) -> StorageError:
    if exc.errno == errno.ENOSPC:
        return StorageError("the disk is full while publishing the package; nothing was published")
    return StorageError(f"publishing the package failed ({exc.strerror}); nothing was published")


def seal(
    staging: Path,
    files: Sequence[str],
    manifest: Mapping[str, Any],
    signer: ec.EllipticCurvePrivateKey,
    recipient: x509.Certificate,
    target: Path,
) -> SealedPackage:
    """Sign the manifest (with each file's SHA-256), bundle, encrypt for the recipient, and write it beside target.

    Nothing appears under the final name until commit(): a crash at any point leaves either no
    package or a whole one.
    """
    if target.exists():
        raise StorageError(f"{target} already exists; a published package is never overwritten")
    entries: list[dict[str, Any]] = []
    for name in files:
        if not _DATA_FILE.match(name):
            raise ValueError(f"unexpected package file name {name}")
        path = staging / name
        entries.append({"path": name, "sha256": sha256_file(path), "bytes": path.stat().st_size})
    document = {**manifest, "format": FORMAT, "files": entries, "signer_key_id": key_id(signer.public_key())}
    body = canonical_json(document)
    signature = signer.sign(body, ec.ECDSA(hashes.SHA256()))
    signer_pem = signer.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    partial = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")
    bundle = staging / f".bundle-{secrets.token_hex(4)}.tar"
    try:
        with tarfile.open(bundle, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, data in ((MANIFEST, body), (SIGNATURE, signature), (SIGNER_KEY, signer_pem)):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o600
                tar.addfile(info, io.BytesIO(data))
            for name in files:
                tar.add(staging / name, arcname=name, recursive=False, filter=_neutral)
        target.parent.mkdir(parents=True, exist_ok=True)
        sealed = cms.envelope(bundle, recipient, partial, lambda handle, data: _write_chunk(handle, data))  # noqa: PLW0108 (late binding: tests replace _write_chunk)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise _storage_error(exc) from exc
    finally:
        bundle.unlink(missing_ok=True)
    return SealedPackage(partial, target, sealed.sha256, sealed.bytes)


_PARTIAL = re.compile(r"^\..+\.(\d+)-[0-9a-f]{8}\.partial$")


def sweep_partials(directory: Path) -> list[Path]:
    """Remove unpublished package files left by processes that no longer run (a crash or kill -9).

    Files of a running process are left alone, so concurrent shares into one directory are safe.
    """
    import psutil

    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for path in directory.iterdir():
        match = _PARTIAL.match(path.name)
        if match and not psutil.pid_exists(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _write_chunk(handle: BinaryIO, data: bytes) -> None:
    handle.write(data)


def publish(
    staging: Path,
    files: Sequence[str],
    manifest: Mapping[str, Any],
    signer: ec.EllipticCurvePrivateKey,
    recipient: x509.Certificate,
    target: Path,
) -> PublishedPackage:
    """seal() then commit()."""
    return seal(staging, files, manifest, signer, recipient, target).commit()


def decrypt_to(path: Path, certificate: x509.Certificate, key: rsa.RSAPrivateKey, target: Path) -> int:
    """Decrypt a package's bundle into a file, in chunks; its size."""
    if not path.is_file():
        raise InvalidDataError("cannot read package", [Problem(str(path), "cannot read the file")])
    try:
        written: int = cms.open_envelope(path, certificate, key, target)
        return written
    except cms.EnvelopeError as exc:
        raise IntegrityError(f"{path.name} does not decrypt with this key: {exc.message}") from exc
    except OSError as exc:
        raise InvalidDataError("cannot read package", [Problem(str(path), "cannot read the file")]) from exc


def decrypt(path: Path, certificate: x509.Certificate, key: rsa.RSAPrivateKey) -> bytes:
    """The bundle inside a (small) package, decrypted with the recipient's key."""
    with tempfile.TemporaryDirectory(prefix="sharewise-open-") as tmp:
        bundle = Path(tmp) / "bundle.tar"
        decrypt_to(path, certificate, key, bundle)
        return bundle.read_bytes()


_SMALL = 1 << 20  # the manifest, its signature and the signer key are small


def verify(
    path: Path,
    certificate: x509.Certificate,
    key: rsa.RSAPrivateKey,
    trusted_signer: ec.EllipticCurvePublicKey | None = None,
    extract_to: Path | None = None,
) -> VerifiedPackage:
    """Decrypt a received package, check its signature and every file's SHA-256, and optionally extract it.

    Everything streams through files: the bundle is decrypted into a private temporary
    directory, each data file is hashed (and extracted) in chunks, and extracted files appear
    under extract_to only once every check has passed.
    """
    with tempfile.TemporaryDirectory(prefix="sharewise-open-") as tmp:
        bundle = Path(tmp) / "bundle.tar"
        decrypt_to(path, certificate, key, bundle)
        staging = Path(tmp) / "extract"
        try:
            return _verify_bundle(bundle, trusted_signer, staging, extract_to)
        except tarfile.TarError as exc:
            raise IntegrityError("the package bundle is not a valid tar archive") from exc


def _verify_bundle(
    bundle: Path, trusted_signer: ec.EllipticCurvePublicKey | None, staging: Path, extract_to: Path | None
) -> VerifiedPackage:
    small: dict[str, bytes] = {}
    manifest: dict[str, Any] | None = None
    listed: dict[str, Any] = {}
    seen: set[str] = set()
    signer: ec.EllipticCurvePublicKey | None = None
    with tarfile.open(bundle, mode="r:") as tar:
        for member in tar:
            name = member.name
            allowed = name in (MANIFEST, SIGNATURE, SIGNER_KEY) or _DATA_FILE.match(name)
            if not member.isfile() or not allowed or name in small or name in seen:
                raise IntegrityError(f"the package holds an unexpected entry: {name!r}")
            handle = tar.extractfile(member)
            if handle is None:
                raise IntegrityError(f"the package entry {name!r} cannot be read")
            if name in (MANIFEST, SIGNATURE, SIGNER_KEY):
                small[name] = handle.read(_SMALL + 1)
                if len(small[name]) > _SMALL:
                    raise IntegrityError(f"the package's {name} is implausibly large")
                if len(small) == 3:
                    signer, manifest = _check_signature(small, trusted_signer)
                    listed = {entry["path"]: entry for entry in manifest.get("files", [])}
                continue
            if manifest is None:
                raise IntegrityError("the package's data comes before its signed manifest")
            if name not in listed:
                raise IntegrityError("the files in the package differ from those its manifest lists")
            seen.add(name)
            digest = hashlib.sha256()
            out = staging / name
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("wb") as writer:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
                    if extract_to is not None:
                        writer.write(chunk)
            if digest.hexdigest() != listed[name]["sha256"]:
                raise IntegrityError(f"{name} does not match its SHA-256 in the manifest")
    for required in (MANIFEST, SIGNATURE, SIGNER_KEY):
        if required not in small:
            raise IntegrityError(f"the package has no {required}")
    if manifest is None or signer is None or set(listed) != seen:
        raise IntegrityError("the files in the package differ from those its manifest lists")
    if extract_to is not None:
        for name in (MANIFEST, SIGNATURE, SIGNER_KEY):
            (staging / name).write_bytes(small[name])
        for name in (MANIFEST, SIGNATURE, SIGNER_KEY, *sorted(listed)):
            out = extract_to / name
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(staging / name, out)
            with out.open("rb+") as synced:
                os.fsync(synced.fileno())
    return VerifiedPackage(manifest, key_id(signer), trusted_signer is not None, tuple(sorted(listed)))


def _check_signature(
    small: dict[str, bytes], trusted_signer: ec.EllipticCurvePublicKey | None
) -> tuple[ec.EllipticCurvePublicKey, dict[str, Any]]:
    try:
        enclosed = serialization.load_pem_public_key(small[SIGNER_KEY])
    except ValueError as exc:
        raise IntegrityError("the enclosed signer key is not readable") from exc
    if not isinstance(enclosed, ec.EllipticCurvePublicKey):
        raise IntegrityError("the enclosed signer key is not an EC key")
    signer = trusted_signer or enclosed
    try:
        signer.verify(small[SIGNATURE], small[MANIFEST], ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise IntegrityError("the manifest signature does not verify: altered, or signed by another key") from exc
    manifest = json.loads(small[MANIFEST])
    if not isinstance(manifest, dict):
        raise IntegrityError("the manifest is not a JSON object")
    return signer, manifest
