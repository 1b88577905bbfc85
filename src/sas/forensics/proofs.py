"""Per-event inclusion proofs in the C2SP tlog-proof format, checkable offline with the public key alone.

A proof file holds the entry's canonical bytes in the ``extra`` line (the format's place for "data necessary
to reconstruct the record hash"; untrusted until the proof checks), its index, the RFC 6962 audit path, and
the signed checkpoint verbatim. Whoever holds the ledger's public key can then confirm that exactly this
event, at exactly this position of that instance's sub-log, was covered by a signed checkpoint, without the
ledger. The entry names its own sub-log and sequence number, and the checker requires them to equal the
checkpoint's origin and the proof's index, so a proof cannot be replayed for another position or log.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from sas.errors import InputError
from sas.events.canonical import decode_entry, entry_origin_seq
from sas.events.checkpoint import NoteError, VerifierKey, parse_checkpoint
from sas.events.merkle import Frontier, inclusion_proof, leaf_hash, leaf_hashes, root_from_inclusion
from sas.forensics.ledger import Ledger

HEADER = "c2sp.org/tlog-proof@v1"


def split_event_id(event_id: str) -> tuple[str, int]:
    origin, sep, seq = event_id.rpartition(":")
    if not sep or not origin or not (seq.isascii() and seq.isdigit()):
        raise InputError(f"event id {event_id!r} is not ORIGIN:SEQ (as printed by timeline, incidents and export)")
    return origin, int(seq)


def make_proof(ledger: Ledger, event_id: str) -> str:
    """The tlog-proof text for ``event_id`` against the newest checkpoint whose root the stored events reproduce."""
    origin, seq = split_event_id(event_id)
    log = ledger.logs.get(origin)
    if log is None:
        raise InputError(f"no sub-log {origin!r} in {ledger.source}")
    if seq >= len(log.entries) or entry_origin_seq(log.entries[seq]) != (origin, seq):
        raise InputError(f"event {event_id} is not at its position in {ledger.source} (run verify)")
    hashes = leaf_hashes(log.entries)
    frontier = Frontier()
    chosen: tuple[int, str] | None = None
    notes = []
    for stored in log.checkpoints:
        try:
            notes.append((parse_checkpoint(stored.note), stored.note))
        except NoteError:
            continue
    for note, text in sorted(notes, key=lambda n: n[0].checkpoint.size):
        cp = note.checkpoint
        if cp.origin != origin or cp.size > len(hashes) or cp.size < frontier.size:
            continue
        frontier.extend(hashes[frontier.size : cp.size])
        if frontier.root() != cp.root:
            break  # the stored events stop matching here: only earlier checkpoints can carry a proof
        if cp.size > seq:
            chosen = (cp.size, text)
    if chosen is None:
        raise InputError(f"event {event_id} is not covered by a checkpoint that matches the stored events")
    size, note_text = chosen
    path = inclusion_proof(hashes, seq, size)
    lines = [HEADER, "extra " + base64.b64encode(log.entries[seq]).decode(), f"index {seq}"]
    lines.extend(base64.b64encode(h).decode() for h in path)
    return "\n".join(lines) + "\n\n" + note_text


@dataclass(frozen=True, slots=True)
class ProofResult:
    ok: bool
    message: str
    origin: str = ""
    index: int = -1
    size: int = 0
    event: dict[str, Any] | None = None


def check_proof(text: str, key: VerifierKey, entry: bytes | None = None) -> ProofResult:
    """Check a tlog-proof offline: signature, audit path, and that the entry is the one it claims to be."""
    head, sep, note_text = text.partition("\n\n")
    if not sep:
        return ProofResult(False, "not a tlog-proof: no checkpoint after the proof lines")
    lines = head.split("\n")
    if not lines or lines[0] != HEADER:
        return ProofResult(False, f"not a tlog-proof: first line must be {HEADER}")
    i = 1
    extra: bytes | None = None
    try:
        if i < len(lines) and lines[i].startswith("extra "):
            extra = base64.b64decode(lines[i][6:], validate=True)
            i += 1
        if i >= len(lines) or not lines[i].startswith("index "):
            return ProofResult(False, "malformed proof: missing index line")
        index_text = lines[i][6:]
        # ASCII digits only: str.isdigit also accepts other scripts' digits, which int() reads
        if not (index_text.isascii() and index_text.isdigit()) or (index_text != "0" and index_text.startswith("0")):
            return ProofResult(False, "malformed proof: bad index")
        index = int(index_text)
        path = [base64.b64decode(h, validate=True) for h in lines[i + 1 :] if h]
    except ValueError:  # binascii.Error, and what b64decode raises for a non-ASCII string
        return ProofResult(False, "malformed proof: bad base64")
    data = entry if entry is not None else extra
    if data is None:
        return ProofResult(False, "the proof carries no event bytes and none were given")
    try:
        note = parse_checkpoint(note_text)
    except NoteError as exc:
        return ProofResult(False, f"malformed checkpoint in proof: {exc}")
    cp = note.checkpoint
    if not note.verified_by(key):
        return ProofResult(False, "checkpoint signature does not verify with this key", cp.origin, index, cp.size)
    if root_from_inclusion(leaf_hash(data), index, cp.size, path) != cp.root:
        return ProofResult(
            False,
            "the event is not included in the signed tree (modified event or wrong proof)",
            cp.origin,
            index,
            cp.size,
        )
    if entry_origin_seq(data) != (cp.origin, index):
        return ProofResult(
            False, "the event names another sub-log or position than the proof", cp.origin, index, cp.size
        )
    return ProofResult(
        True,
        f"event {cp.origin}:{index} is included in checkpoint {cp.size} signed by {key.name}+{key.key_id.hex()}",
        cp.origin,
        index,
        cp.size,
        decode_entry(data),
    )
