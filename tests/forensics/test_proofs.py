"""Inclusion proofs (C2SP tlog-proof) verify with the public key alone; a modified event's proof fails."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from ledgers import Built

from sas.cli import main
from sas.errors import InputError
from sas.events.checkpoint import Signer
from sas.forensics.ledger import load_ledger
from sas.forensics.proofs import HEADER, check_proof, make_proof
from sas.forensics.timeline import ledger_events


@pytest.fixture(scope="module")
def ledger_and_ids(built: Built):  # type: ignore[no-untyped-def]
    ledger = load_ledger(built.paths["db"])
    events = ledger_events(ledger)
    ids = [events[0].event_id, events[4321].event_id, events[-1].event_id]
    return ledger, ids


def test_proof_is_a_tlog_proof_and_verifies_offline(built: Built, ledger_and_ids) -> None:  # type: ignore[no-untyped-def]
    ledger, ids = ledger_and_ids
    for event_id in ids:
        text = make_proof(ledger, event_id)
        lines = text.split("\n")
        assert lines[0] == HEADER and lines[1].startswith("extra ") and lines[2].startswith("index ")
        result = check_proof(text, built.signer.verifier)  # nothing but the text and the public key
        assert result.ok, result.message
        assert f"{result.origin}:{result.index}" == event_id and result.event is not None


def test_proof_for_a_modified_event_fails(built: Built, ledger_and_ids) -> None:  # type: ignore[no-untyped-def]
    ledger, ids = ledger_and_ids
    text = make_proof(ledger, ids[1])
    extra = text.split("\n")[1]
    entry = base64.b64decode(extra[6:])
    forged = entry.replace(b'"client_id":"', b'"client_id":"innocent-')
    assert forged != entry
    bad = text.replace(extra, "extra " + base64.b64encode(forged).decode())
    result = check_proof(bad, built.signer.verifier)
    assert not result.ok and "not included" in result.message
    assert not check_proof(text, built.signer.verifier, entry=forged).ok


def test_proof_fails_with_another_key_or_a_moved_index(built: Built, ledger_and_ids) -> None:  # type: ignore[no-untyped-def]
    ledger, ids = ledger_and_ids
    text = make_proof(ledger, ids[1])
    assert not check_proof(text, Signer.generate().verifier).ok
    index_line = next(line for line in text.split("\n") if line.startswith("index "))
    moved = text.replace(index_line, f"index {int(index_line[6:]) + 1}")
    assert not check_proof(moved, built.signer.verifier).ok
    assert not check_proof("garbage", built.signer.verifier).ok


def test_unknown_event_id_is_an_input_error(ledger_and_ids) -> None:  # type: ignore[no-untyped-def]
    ledger, _ = ledger_and_ids
    with pytest.raises(InputError):
        make_proof(ledger, "no-such-log:3")
    with pytest.raises(InputError):
        make_proof(ledger, "not-an-id")


def test_cli_prove_then_check_proof(
    built: Built, ledger_and_ids, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    _, ids = ledger_and_ids
    pub = tmp_path / "ledger.vkey"
    pub.write_text(str(built.signer.verifier))
    proof = tmp_path / "e.tlog-proof"
    assert main(["forensics", "prove", str(built.paths["jsonl"]), ids[2], "-o", str(proof)]) == 0
    assert main(["forensics", "check-proof", str(proof), "--pub", str(pub)]) == 0
    assert capsys.readouterr().out.startswith("OK: ")
    proof.write_text(proof.read_text().replace("index ", "index 1", 1))
    assert main(["forensics", "check-proof", str(proof), "--pub", str(pub)]) == 1


@pytest.mark.parametrize("where", ["audit-path", "extra", "checkpoint-root", "checkpoint-signature"])
def test_non_ascii_in_a_proofs_base64_is_malformed_not_raised(built: Built, ledger_and_ids, where: str) -> None:  # type: ignore[no-untyped-def]
    """Found by fuzzing: base64.b64decode raises a plain ValueError (not binascii.Error) for a non-ASCII string,
    which escaped check_proof and the checkpoint parser as a traceback."""
    ledger, ids = ledger_and_ids
    lines = make_proof(ledger, ids[1]).split("\n")
    blank = lines.index("")
    at = {"audit-path": 3, "extra": 1, "checkpoint-root": blank + 3, "checkpoint-signature": len(lines) - 2}[where]
    lines[at] = lines[at][:-3] + "é" + lines[at][-2:]
    result = check_proof("\n".join(lines), built.signer.verifier)
    assert not result.ok and ("base64" in result.message or "malformed" in result.message), result.message


def test_a_checkpoint_size_in_another_scripts_digits_is_malformed(built: Built, ledger_and_ids) -> None:  # type: ignore[no-untyped-def]
    """str.isdigit() accepts Arabic-Indic digits and int() reads them: a size must be ASCII digits."""
    from sas.events.checkpoint import NoteError, parse_checkpoint

    ledger, ids = ledger_and_ids
    lines = make_proof(ledger, ids[1]).split("\n")
    size_line = lines.index("") + 2
    lines[size_line] = "".join(chr(0x0660 + int(c)) for c in lines[size_line])
    with pytest.raises(NoteError, match="malformed"):
        parse_checkpoint("\n".join(lines[lines.index("") + 1 :]))
