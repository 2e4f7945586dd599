"""CMS EnvelopedData (RFC 5652), streamed: RSAES-OAEP key transport (RFC 8017, SHA-256) and AES-256-CBC.

The cryptography library's PKCS #7 builder offers only PKCS #1 v1.5 key transport, which NIST
SP 800-131A Rev. 2 no longer allows for key transport, and it builds the whole message in
memory. Here the structures that carry keys and algorithms are encoded with asn1crypto; only the
outer lengths are written by hand, so that the content can be encrypted and decrypted in
chunks from file to file. `openssl cms -decrypt` opens what `envelope` writes.

Decryption also accepts PKCS #1 v1.5 key transport, so that packages sealed before the change
still open.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from asn1crypto import algos, cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from sharewise.domain.errors import IntegrityError

CHUNK = 1 << 20
_OID_ENVELOPED = "1.2.840.113549.1.7.3"
_OID_DATA = "1.2.840.113549.1.7.1"


class EnvelopeError(IntegrityError):
    """The file is not an envelope this module can open, or not for this key."""


@dataclass(frozen=True)
class Sealed:
    """What envelope() wrote: its SHA-256 and size."""

    sha256: str
    bytes: int


def _oaep() -> asym_padding.OAEP:
    return asym_padding.OAEP(mgf=asym_padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _header(tag: int, content_length: int) -> bytes:
    return bytes([tag]) + _length(content_length)


def _recipient_info(certificate: x509.Certificate, encrypted_key: bytes) -> cms.RecipientInfo:
    cert = asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
    return cms.RecipientInfo(
        name="ktri",
        value=cms.KeyTransRecipientInfo(
            {
                "version": "v0",
                "rid": cms.RecipientIdentifier(
                    name="issuer_and_serial_number",
                    value=cms.IssuerAndSerialNumber({"issuer": cert.issuer, "serial_number": cert.serial_number}),
                ),
                "key_encryption_algorithm": cms.KeyEncryptionAlgorithm(
                    {
                        "algorithm": "rsaes_oaep",
                        "parameters": algos.RSAESOAEPParams(
                            {
                                "hash_algorithm": {"algorithm": "sha256"},
                                "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
                            }
                        ),
                    }
                ),
                "encrypted_key": encrypted_key,
            }
        ),
    )


def envelope(
    source: Path,
    certificate: x509.Certificate,
    target: Path,
    write: Callable[[BinaryIO, bytes], None] | None = None,
) -> Sealed:
    """Encrypt `source` for the certificate's RSA key into `target` (DER), reading and writing in chunks."""
    public = certificate.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise ValueError("CMS key transport needs an RSA certificate")
    key, iv = os.urandom(32), os.urandom(16)
    recipients = cms.RecipientInfos([_recipient_info(certificate, public.encrypt(key, _oaep()))]).dump()
    algorithm = algos.EncryptionAlgorithm({"algorithm": "aes256_cbc", "parameters": iv}).dump()
    content_type = cms.ContentType(_OID_DATA).dump()
    size = source.stat().st_size
    cipher_length = (size // 16 + 1) * 16  # PKCS #7 padding always adds 1 to 16 bytes
    content = _header(0x80, cipher_length)  # [0] IMPLICIT OCTET STRING
    eci_length = len(content_type) + len(algorithm) + len(content) + cipher_length
    eci = _header(0x30, eci_length) + content_type + algorithm + content
    version = b"\x02\x01\x00"  # v0: no originatorInfo, key transport recipients only
    enveloped_length = len(version) + len(recipients) + len(eci) + cipher_length
    enveloped = _header(0x30, enveloped_length) + version + recipients + eci
    outer_type = cms.ContentType(_OID_ENVELOPED).dump()
    explicit = _header(0xA0, len(enveloped) + cipher_length)
    prefix_tail = outer_type + explicit + enveloped
    prefix = _header(0x30, len(prefix_tail) + cipher_length) + prefix_tail

    emit = write or (lambda handle, data: handle.write(data) and None)
    digest = hashlib.sha256()
    encryptor = Cipher(algorithms.AES256(key), modes.CBC(iv)).encryptor()
    padder = padding.PKCS7(128).padder()
    total = 0
    with source.open("rb") as reader, target.open("wb") as handle:

        def put(data: bytes) -> None:
            nonlocal total
            if data:
                emit(handle, data)
                digest.update(data)
                total += len(data)

        put(prefix)
        while chunk := reader.read(CHUNK):
            put(encryptor.update(padder.update(chunk)))
        put(encryptor.update(padder.finalize()) + encryptor.finalize())
        handle.flush()
        os.fsync(handle.fileno())
    if total != len(prefix) + cipher_length:
        raise ValueError("the source changed while it was encrypted")
    return Sealed(digest.hexdigest(), total)


def _read_header(handle: BinaryIO, expected: int | None = None) -> tuple[int, int, bytes]:
    """One DER tag and length: (tag, length, the header bytes)."""
    first = handle.read(2)
    if len(first) < 2:
        raise EnvelopeError("the envelope ends early")
    tag, n = first[0], first[1]
    header = first
    if expected is not None and tag != expected:
        raise EnvelopeError(f"not a CMS envelope this version can open (tag {tag:#x}, expected {expected:#x})")
    if n == 0x80:
        raise EnvelopeError("indefinite-length envelopes are not supported; re-encode as DER")
    if n & 0x80:
        count = n & 0x7F
        body = handle.read(count)
        if len(body) < count or count > 8:
            raise EnvelopeError("the envelope has an invalid length")
        header += body
        n = int.from_bytes(body, "big")
    return tag, n, header


def _read_element(handle: BinaryIO, expected: int) -> bytes:
    _tag, length, header = _read_header(handle, expected)
    if length > 1 << 24:
        raise EnvelopeError("an envelope header element is implausibly large")
    body = handle.read(length)
    if len(body) < length:
        raise EnvelopeError("the envelope ends early")
    return header + body


def _content_key(recipients: cms.RecipientInfos, certificate: x509.Certificate, key: rsa.RSAPrivateKey) -> bytes:
    cert = asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
    for info in recipients:
        if info.name != "ktri":
            continue
        ktri = info.chosen
        rid = ktri["rid"]
        if rid.name != "issuer_and_serial_number":
            continue
        if rid.chosen["issuer"] != cert.issuer or rid.chosen["serial_number"].native != cert.serial_number:
            continue
        algorithm = ktri["key_encryption_algorithm"]["algorithm"].native
        encrypted = ktri["encrypted_key"].native
        try:
            if algorithm == "rsaes_oaep":
                params = ktri["key_encryption_algorithm"]["parameters"]
                if params["hash_algorithm"]["algorithm"].native != "sha256":
                    raise EnvelopeError("only RSAES-OAEP with SHA-256 is supported")
                return key.decrypt(encrypted, _oaep())
            if algorithm == "rsaes_pkcs1v15":
                return key.decrypt(encrypted, asym_padding.PKCS1v15())
        except ValueError as exc:
            raise EnvelopeError("the content key does not decrypt with this key") from exc
        raise EnvelopeError(f"unsupported key transport {algorithm}")
    raise EnvelopeError("the envelope is not addressed to this certificate")


def open_envelope(source: Path, certificate: x509.Certificate, key: rsa.RSAPrivateKey, target: Path) -> int:
    """Decrypt an envelope addressed to the certificate into `target`, in chunks; the plaintext size.

    EnvelopeError (an IntegrityError) for anything that is not a whole envelope for this key.
    """
    with source.open("rb") as handle:
        _read_header(handle, 0x30)
        if cms.ContentType.load(_read_element(handle, 0x06)).dotted != _OID_ENVELOPED:
            raise EnvelopeError("the file is CMS but not EnvelopedData")
        _read_header(handle, 0xA0)
        _read_header(handle, 0x30)
        _read_element(handle, 0x02)  # version
        peek = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        if peek == b"\xa0":
            _read_element(handle, 0xA0)  # originatorInfo: certificates we do not need
        recipients = cms.RecipientInfos.load(_read_element(handle, 0x31))
        content_key = _content_key(recipients, certificate, key)
        _read_header(handle, 0x30)
        _read_element(handle, 0x06)  # content type: data
        algorithm = algos.EncryptionAlgorithm.load(_read_element(handle, 0x30))
        if algorithm["algorithm"].native not in ("aes256_cbc", "aes128_cbc", "aes192_cbc"):
            raise EnvelopeError(f"unsupported content encryption {algorithm['algorithm'].native}")
        iv = algorithm["parameters"].native
        _tag, length, _ = _read_header(handle, 0x80)
        if length % 16 or length == 0:
            raise EnvelopeError("the encrypted content is not whole AES blocks: truncated or altered")
        try:
            decryptor = Cipher(algorithms.AES(content_key), modes.CBC(iv)).decryptor()
        except ValueError as exc:
            raise EnvelopeError("the content key or IV is malformed") from exc
        unpadder = padding.PKCS7(128).unpadder()
        remaining, written = length, 0
        with target.open("wb") as out:
            while remaining:
                chunk = handle.read(min(CHUNK, remaining))
                if not chunk:
                    raise EnvelopeError("the envelope ends early: truncated")
                remaining -= len(chunk)
                plain = unpadder.update(decryptor.update(chunk))
                out.write(plain)
                written += len(plain)
            try:
                plain = unpadder.update(decryptor.finalize()) + unpadder.finalize()
            except ValueError as exc:
                raise EnvelopeError("the content does not decrypt: altered, or for another recipient") from exc
            out.write(plain)
            written += len(plain)
        if handle.read(1):
            raise EnvelopeError("data follows the envelope: altered")
    return written
