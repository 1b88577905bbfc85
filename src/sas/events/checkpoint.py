"""Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed-note envelopes, signed with Ed25519.

A checkpoint is three lines, ``origin``, ``size`` and the base64 RFC 6962 root, followed by a blank line and
one signature line per signer: ``— NAME base64(key_id[4] || signature[64])``. The key id is the first four
bytes of ``SHA-256(NAME || "\\n" || 0x01 || public_key)``; the verifier key text is
``NAME+hex(key_id)+base64(0x01 || public_key)``. Using the standard format means tools built for Go's
``golang.org/x/mod/sumdb/note`` and the C2SP witness ecosystem can read and cosign our checkpoints.

Key files are those of ``sas keygen`` (PKCS#8 / SubjectPublicKeyInfo PEM, see :mod:`sas.integrity`); a
signed-note verifier key string is accepted too. ``cryptography`` and :mod:`sas.integrity` are imported
only when a key is used, so loading this module costs nothing at cold start.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sas.errors import InputError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALG_ED25519 = 1
SIG_PREFIX = "\u2014 "
DEFAULT_KEY_NAME = "sas-ledger"


class NoteError(InputError):
    """A signed note or checkpoint that cannot be parsed."""


def _raw_public(key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(name: str, public_raw: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_raw).digest()[:4]


def _check_name(name: str) -> str:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise InputError(f"invalid key name {name!r}: no spaces or '+'")
    return name


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """A public key with its signed-note name; ``str()`` gives the ``NAME+HASH+KEY`` text form."""

    name: str
    public: bytes  # 32 raw bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public)

    def __str__(self) -> str:
        raw = base64.b64encode(bytes([ALG_ED25519]) + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{raw}"

    def verify(self, signature: bytes, message: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        parts = text.strip().split("+", 2)  # the base64 part may itself hold '+'
        if len(parts) != 3:
            raise NoteError("verifier key must be NAME+HASH+BASE64")
        name, hex_id, b64 = parts
        try:
            raw = base64.b64decode(b64, validate=True)
            wanted = bytes.fromhex(hex_id)
        except ValueError:  # binascii.Error is one
            raise NoteError("verifier key is not valid hex/base64") from None
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("verifier key is not an Ed25519 key")
        key = cls(_check_name(name), raw[1:])
        if key.key_id != wanted:
            raise NoteError("verifier key hash does not match its name and key")
        return key


class Signer:
    """An Ed25519 private key with its signed-note name."""

    def __init__(self, private_key: Ed25519PrivateKey, name: str = DEFAULT_KEY_NAME) -> None:
        self.name = _check_name(name)
        self._key = private_key
        self.verifier = VerifierKey(self.name, _raw_public(private_key.public_key()))

    @classmethod
    def generate(cls, name: str = DEFAULT_KEY_NAME) -> Signer:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return cls(Ed25519PrivateKey.generate(), name)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


def load_signer(path: str | os.PathLike[str], name: str = DEFAULT_KEY_NAME) -> Signer:
    """A signer from a ``sas keygen`` private key file (PKCS#8 PEM or 32 raw/hex/base64 bytes)."""
    from sas.integrity import load_private_key

    return Signer(load_private_key(path), name)


def load_verifier(source: str | os.PathLike[str], name: str = DEFAULT_KEY_NAME) -> VerifierKey:
    """A verifier key from a ``sas keygen`` public key file, or a ``NAME+HASH+KEY`` string or file."""
    text = os.fspath(source)
    if not Path(text).exists() and text.count("+") >= 2:
        return VerifierKey.parse(text)
    try:
        data = Path(text).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read public key {text}: {exc.strerror or exc}") from None
    stripped = data.strip()
    if stripped.count(b"+") >= 2 and b"-----" not in stripped and b"\n" not in stripped:
        return VerifierKey.parse(stripped.decode("ascii", "replace"))
    from sas.integrity import load_public_key

    return VerifierKey(name, _raw_public(load_public_key(data)))


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: the sub-log's origin, its size and the RFC 6962 root at that size."""

    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


@dataclass(frozen=True, slots=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    body: str
    signatures: tuple[NoteSignature, ...]
    text: str

    def verified_by(self, key: VerifierKey) -> bool:
        """True when a signature line of ``key`` (same name and key id) verifies over the body."""
        message = self.body.encode()
        return any(
            s.name == key.name and s.key_id == key.key_id and key.verify(s.signature, message) for s in self.signatures
        )


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    body = checkpoint.body()
    sig = signer.sign(body.encode())
    line = base64.b64encode(signer.verifier.key_id + sig).decode()
    return f"{body}\n{SIG_PREFIX}{signer.name} {line}\n"


def parse_checkpoint(text: str) -> SignedCheckpoint:
    """Parse a signed checkpoint note; malformed text is a :class:`NoteError`."""
    body, sep, sigs = text.partition("\n\n")
    if not sep:
        raise NoteError("signed note has no signature block")
    body += "\n"
    lines = body.split("\n")
    if len(lines) < 4:
        raise NoteError("checkpoint body needs origin, size and root lines")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    # ASCII digits only (str.isdigit also accepts other scripts' digits, which int() reads); b64decode raises a
    # plain ValueError, not binascii.Error, for a non-ASCII string
    size_ok = size_text.isascii() and size_text.isdigit() and (size_text == "0" or not size_text.startswith("0"))
    if not origin or not size_ok:
        raise NoteError("checkpoint origin or size is malformed")
    try:
        root = base64.b64decode(root_text, validate=True)
    except ValueError:
        raise NoteError("checkpoint root is not base64") from None
    if len(root) != 32:
        raise NoteError("checkpoint root is not a SHA-256 hash")
    signatures: list[NoteSignature] = []
    for line in sigs.split("\n"):
        if not line:
            continue
        if not line.startswith(SIG_PREFIX):
            raise NoteError("malformed signature line")
        name, _, b64 = line[len(SIG_PREFIX) :].partition(" ")
        try:
            raw = base64.b64decode(b64, validate=True)
        except ValueError:
            raise NoteError("signature is not base64") from None
        if len(raw) < 5:
            raise NoteError("signature too short")
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
    if not signatures:
        raise NoteError("signed note has no signature")
    return SignedCheckpoint(Checkpoint(origin, int(size_text), root), body, tuple(signatures), text)
