"""C2SP signed-note checkpoints: format, key ids, verification, sas keygen key files."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from sas.errors import InputError
from sas.events.checkpoint import (
    Checkpoint,
    NoteError,
    Signer,
    VerifierKey,
    load_signer,
    load_verifier,
    parse_checkpoint,
    sign_checkpoint,
)
from sas.integrity import generate_private_key, write_keypair

ROOT = hashlib.sha256(b"root").digest()


def test_note_layout_is_c2sp_checkpoint_in_a_signed_note() -> None:
    signer = Signer.generate("example.com/log")
    note = sign_checkpoint(Checkpoint("example.com/log/instance-1", 42, ROOT), signer)
    body, sigs = note.split("\n\n")
    assert body.split("\n") == ["example.com/log/instance-1", "42", base64.b64encode(ROOT).decode()]
    assert sigs.startswith("\u2014 example.com/log ") and sigs.endswith("\n") and sigs.count("\n") == 1
    raw = base64.b64decode(sigs.split(" ")[2])
    pub = signer.verifier.public
    # key id: SHA-256(name || "\n" || 0x01 || key)[:4], as in golang.org/x/mod/sumdb/note
    assert raw[:4] == hashlib.sha256(b"example.com/log\n\x01" + pub).digest()[:4] and len(raw) == 68


def test_verifier_key_text_round_trips_and_checks_its_hash() -> None:
    key = Signer.generate().verifier
    assert VerifierKey.parse(str(key)) == key
    name, _, b64 = str(key).split("+", 2)
    with pytest.raises(NoteError):
        VerifierKey.parse(f"{name}+00000000+{b64}")


def test_signature_verifies_only_with_the_right_key_and_body() -> None:
    signer, other = Signer.generate(), Signer.generate()
    note = sign_checkpoint(Checkpoint("o", 7, ROOT), signer)
    parsed = parse_checkpoint(note)
    assert parsed.checkpoint == Checkpoint("o", 7, ROOT)
    assert parsed.verified_by(signer.verifier)
    assert not parsed.verified_by(other.verifier)
    assert not parse_checkpoint(note.replace("\n7\n", "\n8\n")).verified_by(signer.verifier)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "o\n1\n",
        "o\n01\nAAAA\n\n\u2014 k AAAA\n",
        "o\n1\nnot-base64!\n\n\u2014 k AAAAAAAA\n",
        "o\n1\n" + "A" * 44 + "\n\n",
    ],
)
def test_malformed_notes_are_note_errors(text: str) -> None:
    with pytest.raises(NoteError):
        parse_checkpoint(text)


def test_sas_keygen_key_files_sign_and_verify(tmp_path: Path) -> None:
    key_path, pub_path = write_keypair(generate_private_key(), tmp_path / "ledger")
    signer = load_signer(key_path)
    verifier = load_verifier(pub_path)
    assert verifier == signer.verifier
    (tmp_path / "vkey").write_text(str(verifier) + "\n")
    assert load_verifier(tmp_path / "vkey") == verifier
    assert load_verifier(str(verifier)) == verifier
    with pytest.raises(InputError):
        load_verifier(tmp_path / "missing.pub")
