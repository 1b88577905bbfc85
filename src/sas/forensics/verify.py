"""Verify a ledger: every leaf, every checkpoint signature, consistency between checkpoints, and the anchor.

The fast path compares each checkpoint's signed root with the root of the stored entries at its size: leaves
are hashed while the ledger is read (:mod:`sas.forensics.scan`), the nodes above them in aligned blocks by
forked workers while this process checks the signatures (:mod:`sas.forensics.hashing`). An intact ledger costs
one leaf hash and one node hash per event and no JSON parsing. Only a sub-log that fails is diagnosed: its
entries are read back (and re-hashed, so a file changed since is an error) and their sequence numbers name what
happened (``modified``, ``deleted``, ``inserted``, ``reordered``, ``truncated``, ``forked``, ``bad-signature``)
and where. Every
checkpoint record also carries its frontier (the subtree roots at that size, checked against the signed root),
so verification resumes after a gap instead of giving up on everything that follows; a gap that a recorded
Lambda ``platform.logsDropped`` report covers is ``dropped`` and does not count as tampering.

Localisation: a deleted, inserted or reordered event carries its own sequence number and is named exactly. A
modified event is named exactly when the edit left the line non-canonical or changed its sequence number;
an edit that keeps the line canonical is narrowed to the smallest subtree of a signed checkpoint's frontier
whose root no longer matches (the signatures cover roots, not single events): at worst the checkpoint
interval, which is why checkpoints are frequent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sas.errors import InputError
from sas.events.anchor import AnchorStore
from sas.events.canonical import decode_entry, dumps, entry_origin_seq
from sas.events.checkpoint import NoteError, SignedCheckpoint, VerifierKey, parse_checkpoint
from sas.events.merkle import Frontier, root
from sas.forensics import hashing
from sas.forensics.ledger import DROPPED_EVENTS, Ledger, StoredCheckpoint, StoredLog

TAMPERING_KINDS = ("modified", "deleted", "inserted", "reordered", "truncated", "forked", "bad-signature")


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str  # one of TAMPERING_KINDS, or "dropped" (a gap the platform explains)
    origin: str
    first_seq: int | None
    last_seq: int | None
    message: str
    explained: bool = False

    @property
    def event_id(self) -> str:
        return f"{self.origin}:{self.first_seq}" if self.first_seq is not None else self.origin

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "origin": self.origin,
            "first_event": self.event_id if self.first_seq is not None else None,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "explained": self.explained,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class LogStatus:
    origin: str
    events: int
    checkpoints: int
    signed_size: int  # largest checkpoint with a good signature
    verified_size: int  # events proven by a checkpoint (prefix, or resumed after an explained gap)
    anchored_size: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "events": self.events,
            "checkpoints": self.checkpoints,
            "signed_size": self.signed_size,
            "verified_size": self.verified_size,
            "anchored_size": self.anchored_size,
        }


@dataclass(frozen=True, slots=True)
class VerifyReport:
    source: str
    events: int
    logs: tuple[LogStatus, ...]
    problems: tuple[Problem, ...]
    warnings: tuple[str, ...]
    keys: tuple[str, ...]
    key_source: str  # "given" | "ledger"
    anchor_checked: bool
    unparsed: int = 0  # records that could not be parsed and were skipped

    @property
    def tampered(self) -> bool:
        return any(not p.explained for p in self.problems)

    @property
    def verified_events(self) -> int:
        return sum(s.verified_size for s in self.logs)

    @property
    def complete(self) -> bool:
        """Every event is covered by a signed checkpoint and every record parsed: nothing is merely unverified."""
        return self.verified_events == self.events and not self.unparsed

    @property
    def first_problem(self) -> Problem | None:
        bad = [p for p in self.problems if not p.explained]
        return bad[0] if bad else None

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.kind for p in self.problems if not p.explained))

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": "tampered" if self.tampered else "ok",
            "events": self.events,
            "verified_events": self.verified_events,
            "complete": self.complete,
            "unparsed_records": self.unparsed,
            "kinds": list(self.kinds),
            "first_problem": None if self.first_problem is None else self.first_problem.to_dict(),
            "problems": [p.to_dict() for p in self.problems],
            "warnings": list(self.warnings),
            "keys": list(self.keys),
            "key_source": self.key_source,
            "anchor_checked": self.anchor_checked,
            "logs": [s.to_dict() for s in self.logs],
        }


@dataclass(slots=True)
class _GoodCheckpoint:
    size: int
    root: bytes
    frontier: tuple[bytes, ...]
    position: int
    note: SignedCheckpoint


@dataclass(slots=True)
class _LogResult:
    problems: list[Problem] = field(default_factory=list)
    signed_size: int = 0
    verified_size: int = 0
    good: list[_GoodCheckpoint] = field(default_factory=list)
    hashes: list[bytes] = field(default_factory=list)  # filled only when a sub-log needs diagnosis
    roots_at: dict[int, bytes] = field(default_factory=dict)


def _keys_for(ledger: Ledger, keys: Sequence[VerifierKey] | None) -> tuple[list[VerifierKey], str]:
    if keys:
        return list(keys), "given"
    found: list[VerifierKey] = []
    for text in ledger.keys:
        with contextlib.suppress(NoteError):
            found.append(VerifierKey.parse(text))
    if not found:
        raise InputError(f"{ledger.source}: no public key given (--pub) and none recorded in the ledger")
    return found, "ledger"


def _frontier_root(cp: _GoodCheckpoint) -> bytes | None:
    try:
        return Frontier(cp.size, cp.frontier).root()
    except ValueError:
        return None


class _Context:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._drop_times: list[tuple[float, int | None, str]] | None = None
        self._used: dict[str, int] = {}

    def drop_reports(self) -> list[tuple[float, int | None, str]]:
        """``(time, dropped_records, origin_or_empty)`` of every platform dropped-log report."""
        if self._drop_times is None:
            found: list[tuple[float, int | None, str]] = []
            for report in self.ledger.platform_reports:
                t = _time_of(report.get("time"))
                record = report.get("record")
                count = record.get("droppedRecords") if isinstance(record, dict) else None
                found.append((t if t is not None else 0.0, count if isinstance(count, int) else None, ""))
            for origin, log in self.ledger.logs.items():
                for entry in log.entries:
                    if b"logsDropped" not in entry and b"logs-dropped" not in entry and b"writeFailed" not in entry:
                        continue
                    record_obj = decode_entry(entry)
                    if record_obj is None or record_obj.get("event") not in DROPPED_EVENTS:
                        continue
                    details = record_obj.get("details")
                    count = details.get("droppedRecords") if isinstance(details, dict) else None
                    t = record_obj.get("time")
                    found.append(
                        (
                            float(t) if isinstance(t, (int, float)) else 0.0,
                            count if isinstance(count, int) else None,
                            origin,
                        )
                    )
            self._drop_times = found
        return self._drop_times

    def explains(self, origin: str, gap_start_time: float | None, missing: int) -> bool:
        """True when dropped-log reports issued after the gap began account for ``missing`` more lines.

        Reports are a budget: lines they explain in one gap are not available to explain another.
        """
        reports = [
            r
            for r in self.drop_reports()
            if (not r[2] or r[2] == origin) and (gap_start_time is None or r[0] >= gap_start_time - 1.0)
        ]
        if not reports:
            return False
        if any(r[1] is None for r in reports):
            return True  # a report that does not count what it dropped explains any gap after it
        budget = sum(r[1] for r in reports if r[1] is not None) - self._used.get(origin, 0)
        if missing > budget:
            return False
        self._used[origin] = self._used.get(origin, 0) + missing
        return True


def _time_of(value: Any) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def _entry_time(entry: bytes) -> float | None:
    record = decode_entry(entry)
    t = None if record is None else record.get("time")
    return float(t) if isinstance(t, (int, float)) else None


def _parse_notes(log: StoredLog) -> list[tuple[StoredCheckpoint, SignedCheckpoint | NoteError]]:
    """Every checkpoint of the sub-log in stored order, parsed (or why it cannot be)."""
    out: list[tuple[StoredCheckpoint, SignedCheckpoint | NoteError]] = []
    for stored in sorted(log.checkpoints, key=lambda c: c.position):
        try:
            out.append((stored, parse_checkpoint(stored.note)))
        except NoteError as exc:
            out.append((stored, exc))
    return out


def _check_signatures(
    log: StoredLog,
    keys: Sequence[VerifierKey],
    result: _LogResult,
    parsed: Sequence[tuple[StoredCheckpoint, SignedCheckpoint | NoteError]],
) -> None:
    last_good = 0
    bad: list[tuple[int, str]] = []
    for stored, note in parsed:
        if isinstance(note, NoteError):
            bad.append((last_good, f"checkpoint note is malformed: {note}"))
            continue
        cp = note.checkpoint
        if cp.origin != log.origin:
            bad.append((last_good, f"checkpoint for {cp.origin!r} stored in sub-log {log.origin!r}"))
            continue
        if not any(note.verified_by(k) for k in keys):
            signers = ", ".join(sorted({s.name + "+" + s.key_id.hex() for s in note.signatures}))
            bad.append(
                (last_good, f"checkpoint at size {cp.size} is not signed by a trusted key (signed by {signers})")
            )
            continue
        result.good.append(_GoodCheckpoint(cp.size, cp.root, stored.frontier, stored.position, note))
        last_good = cp.size
    for start, message in bad[:1]:
        result.problems.append(Problem("bad-signature", log.origin, start, None, message))
    if len(bad) > 1:
        result.problems.append(
            Problem("bad-signature", log.origin, None, None, f"{len(bad) - 1} more checkpoint(s) with bad signatures")
        )
    result.good.sort(key=lambda c: (c.size, c.position))
    by_size: dict[int, bytes] = {}
    for good in result.good:
        prior = by_size.setdefault(good.size, good.root)
        if prior != good.root:
            result.problems.append(
                Problem(
                    "forked",
                    log.origin,
                    None,
                    good.size - 1,
                    f"two validly signed checkpoints of size {good.size} with different roots: two histories were "
                    "signed for this sub-log (a cloned instance or a compromised signer)",
                )
            )
            break
    result.signed_size = max((c.size for c in result.good), default=0)


def _fast_path(log: StoredLog, result: _LogResult) -> _GoodCheckpoint | None:
    """Compare each signed checkpoint with the root the stored entries give at its size (computed in bulk by
    :func:`sas.forensics.hashing.roots_at`); returns the first checkpoint that does not match."""
    n = log.count
    for cp in result.good:
        if cp.size > n or result.roots_at.get(cp.size) != cp.root:
            return cp
        result.verified_size = max(result.verified_size, cp.size)
    return None


def _unsigned_tail_problem(ctx: _Context, log: StoredLog, start: int) -> Problem | None:
    """The entries after the newest checkpoint are not signed yet, but an honest writer gives each the sequence
    number of its position: a repeated, reordered or missing one there is tampering no signature shows yet."""
    if start >= log.count:
        return None
    tail = log.entries_from(start)
    seqs = _seqs(tail)
    in_order = list(range(start, start + len(seqs)))
    if seqs == in_order:
        return None
    after = "after the newest checkpoint, so no signature covers it yet"
    first = next(i for i, seq in enumerate(seqs) if seq != start + i)
    position, seq = start + first, seqs[first]
    if seq < 0:
        return Problem("modified", log.origin, position, None, f"position {position} is not a ledger entry ({after})")
    if len(set(seqs)) != len(seqs) or seq < start:
        message = f"position {position} repeats event {seq} ({after}): events were inserted"
        return Problem("inserted", log.origin, seq, None, message)
    if sorted(seqs) == in_order:
        return Problem(
            "reordered",
            log.origin,
            position,
            None,
            f"position {position} holds event {seq} where event {position} belongs ({after}): events were reordered",
        )
    missing = seq - position
    explained = ctx.explains(log.origin, _entry_time(tail[first - 1]) if first else None, missing)
    what = "a gap the platform reported (logs dropped)" if explained else "events missing"
    return Problem(
        "dropped" if explained else "deleted",
        log.origin,
        position,
        seq - 1,
        f"{missing} event(s) {position}..{seq - 1} are absent ({after}): {what}",
        explained,
    )


def _seqs(entries: Sequence[bytes]) -> list[int]:
    out: list[int] = []
    for entry in entries:
        found = entry_origin_seq(entry)
        out.append(-1 if found is None else found[1])
    return out


def _roots_match(hashes: Sequence[bytes], good: Sequence[_GoodCheckpoint]) -> tuple[int, int]:
    """(checkpoints matched, checkpoints that cover this many leaves) over a candidate leaf order."""
    frontier = Frontier()
    matched = covered = 0
    for cp in good:
        if cp.size > len(hashes) or cp.size < frontier.size:
            continue
        covered += 1
        frontier.extend(hashes[frontier.size : cp.size])
        if frontier.root() == cp.root:
            matched += 1
    return matched, covered


def _try_fork(log: StoredLog, seqs: list[int], result: _LogResult) -> Problem | None:
    branches: list[list[int]] = [[]]
    for idx, s in enumerate(seqs):
        target = next((b for b in branches if len(b) == s), None)
        if target is not None:
            target.append(idx)
        elif 0 <= s < len(branches[0]):
            branches.append([*branches[0][:s], idx])
        else:
            return None
    if len(branches) < 2:
        return None
    fork_at = min(
        next((i for i, (a, b) in enumerate(zip(branches[0], br, strict=False)) if a != b), len(br))
        for br in branches[1:]
    )
    signed_branches = 0
    for br in branches:
        hs = [result.hashes[i] for i in br]
        frontier = Frontier()
        for cp in result.good:
            if cp.size > len(hs) or cp.size <= fork_at or cp.size < frontier.size:
                continue
            frontier.extend(hs[frontier.size : cp.size])
            if frontier.root() == cp.root:
                signed_branches += 1
                break
    if signed_branches < 2:
        return None
    return Problem(
        "forked",
        log.origin,
        fork_at,
        None,
        f"{len(branches)} histories diverge at event {fork_at}, each with validly signed checkpoints "
        "(a cloned instance writing under the same sub-log, or a compromised signer)",
    )


def _inserted(log: StoredLog, seqs: list[int], result: _LogResult) -> Problem:
    seen: set[int] = set()
    candidates: list[int] = []
    for i, s in enumerate(seqs):
        if s in seen:
            candidates.append(i)
        seen.add(s)
    # the copy may be the earlier or the later of two equal sequence numbers: find the one whose removal heals
    suspects: list[int] = []
    for c in candidates[:8]:
        suspects.extend(j for j, s in enumerate(seqs) if s == seqs[c])
    for pos in dict.fromkeys(suspects):
        trial = result.hashes[:pos] + result.hashes[pos + 1 :]
        matched, covered = _roots_match(trial, result.good)
        if covered and matched == covered:
            return Problem(
                "inserted",
                log.origin,
                seqs[pos],
                seqs[pos],
                f"an event claiming sequence {seqs[pos]} was inserted at position {pos}; removing it restores "
                "every signed root",
            )
    first = candidates[0] if candidates else 0
    return Problem(
        "inserted",
        log.origin,
        seqs[first],
        None,
        f"position {first} holds a second event with sequence {seqs[first]}: events were inserted",
    )


def _walk_positioned(
    ctx: _Context, log: StoredLog, seqs: list[int], result: _LogResult, reordered: bool
) -> list[Problem]:
    """Walk checkpoints over entries placed by their sequence numbers, resuming after gaps via frontiers."""
    by_seq: dict[int, int] = {}
    for i, s in enumerate(seqs):
        if s >= 0:
            by_seq.setdefault(s, i)
    problems: list[Problem] = []
    frontier: Frontier | None = Frontier()
    verified = 0
    reported_gap_upto = -1
    for cp in result.good:
        if frontier is not None and cp.size < frontier.size:
            continue
        start = frontier.size if frontier is not None else None
        lo = start if start is not None else 0
        missing = [s for s in range(max(lo, reported_gap_upto + 1), cp.size) if s not in by_seq]
        if missing:
            first, last = missing[0], missing[-1]
            before = by_seq.get(first - 1)
            t = _entry_time(log.entries[before]) if before is not None else None
            n_missing = len(missing)
            explained = ctx.explains(log.origin, t, n_missing)
            tail = first >= len(by_seq) and all(s not in by_seq for s in range(first, max(by_seq, default=-1) + 1))
            kind = "dropped" if explained else ("truncated" if tail else "deleted")
            what = (
                "a gap the platform reported (logs dropped)"
                if explained
                else ("the newest events are missing" if tail else "events missing from the middle")
            )
            prev = problems[-1] if problems else None
            if prev is not None and prev.kind == kind and prev.last_seq == first - 1 and prev.first_seq is not None:
                first, n_missing = prev.first_seq, n_missing + (first - prev.first_seq)
                problems.pop()
            problems.append(
                Problem(
                    kind,
                    log.origin,
                    first,
                    last,
                    f"{n_missing} event(s) {first}..{last} covered by checkpoint {cp.size} are absent: {what}",
                    explained,
                )
            )
            reported_gap_upto = cp.size - 1
            # resume from this checkpoint's own frontier, if it is the one that was signed
            frontier = Frontier(cp.size, cp.frontier) if _frontier_root(cp) == cp.root else None
            if frontier is not None and explained:
                verified = cp.size
            continue
        if frontier is None or start is None:
            continue
        frontier.extend([result.hashes[by_seq[s]] for s in range(start, cp.size)])
        if frontier.root() != cp.root:
            problems.append(_modified(log, seqs, by_seq, start, cp, result, reordered))
            return problems
        verified = cp.size
    result.verified_size = verified if not any(not p.explained for p in problems) else result.verified_size
    return problems


def _modified(
    log: StoredLog,
    seqs: list[int],
    by_seq: dict[int, int],
    start: int,
    cp: _GoodCheckpoint,
    result: _LogResult,
    reordered: bool,
) -> Problem:
    for s in range(start, cp.size):
        entry = log.entries[by_seq[s]]
        record = decode_entry(entry)
        if record is None or dumps(record) != entry:
            return Problem(
                "modified",
                log.origin,
                s,
                s,
                f"event {s} was edited (its bytes are no longer canonical JSON); checkpoint {cp.size} does not match",
            )
    lo, hi = _localize(result, by_seq, start, cp.size)
    if hi - lo == 1:
        return Problem(
            "modified",
            log.origin,
            lo,
            lo,
            f"event {lo} was modified: its subtree no longer matches the one signed checkpoint {cp.size} committed to",
        )
    return Problem(
        "modified",
        log.origin,
        lo,
        hi - 1,
        f"an event among {lo}..{hi - 1} was modified: their content no longer matches signed checkpoint "
        f"{cp.size} (the events before {start} verify)",
    )


def _subtrees(size: int) -> list[tuple[int, int]]:
    """The perfect subtrees a frontier of ``size`` holds, as leaf ranges, largest first."""
    out, at = [], 0
    for bit in range(size.bit_length() - 1, -1, -1):
        if size >> bit & 1:
            out.append((at, at + (1 << bit)))
            at += 1 << bit
    return out


def _localize(result: _LogResult, by_seq: dict[int, int], lo: int, hi: int) -> tuple[int, int]:
    """Narrow ``[lo, hi)`` using the frontiers of signed checkpoints (their subtree roots are authenticated by
    the signed root they reproduce): a subtree whose root no longer matches holds the edit, one that matches
    does not."""
    for cp in result.good:
        if _frontier_root(cp) != cp.root:
            continue
        for (a, b), node in zip(_subtrees(cp.size), cp.frontier, strict=True):
            if b <= lo or a >= hi or any(s not in by_seq for s in range(max(a, lo), min(b, hi))):
                continue
            leaves = [result.hashes[by_seq[s]] for s in range(a, b)] if all(s in by_seq for s in range(a, b)) else None
            if leaves is None:
                continue
            if root(leaves) != node:
                lo, hi = max(lo, a), min(hi, b)
            elif a <= lo < b:
                lo = b
            elif a < hi <= b:
                hi = a
            if hi - lo <= 1:
                return lo, max(hi, lo + 1)
    return lo, max(hi, lo + 1)


def _verify_log(ctx: _Context, log: StoredLog, result: _LogResult) -> None:
    """Everything after the signatures (``result.good``) and the bulk roots (``result.roots_at``)."""
    if any(p.kind == "forked" for p in result.problems):
        return
    mismatch = _fast_path(log, result)
    if mismatch is None:
        problem = _unsigned_tail_problem(ctx, log, result.verified_size)
        if problem is not None:
            result.problems.append(problem)
        return
    result.hashes = hashing.unpack(log.leaf_hashes())  # diagnosis works leaf by leaf
    seqs = _seqs(log.entries)
    if len(set(seqs)) != len(seqs):
        fork = _try_fork(log, seqs, result)
        result.problems.append(fork or _inserted(log, seqs, result))
        return
    ordered = sorted(seqs)
    if ordered != seqs:
        first = next(i for i, (a, b) in enumerate(zip(seqs, ordered, strict=True)) if a != b)
        result.problems.append(
            Problem(
                "reordered",
                log.origin,
                ordered[first],
                None,
                f"position {first} holds event {seqs[first]} where event {ordered[first]} belongs: events were "
                "reordered",
            )
        )
        result.problems.extend(p for p in _walk_positioned(ctx, log, seqs, result, True) if p.kind != "modified")
        return
    problems = _walk_positioned(ctx, log, seqs, result, False)
    if not problems:
        problems.append(
            Problem("modified", log.origin, None, None, f"checkpoint {mismatch.size} does not match the stored events")
        )
    result.problems.extend(problems)


def _check_anchor(
    ledger: Ledger,
    anchor_notes: Sequence[tuple[str, str]],
    keys: Sequence[VerifierKey],
    results: dict[str, _LogResult],
    anchored: dict[str, int],
    problems: list[Problem],
    warnings: list[str],
) -> None:
    for origin, text in anchor_notes:
        try:
            note = parse_checkpoint(text)
        except NoteError as exc:
            problems.append(Problem("bad-signature", origin, None, None, f"anchored checkpoint is malformed: {exc}"))
            continue
        if not any(note.verified_by(k) for k in keys):
            problems.append(
                Problem("bad-signature", origin, None, None, "anchored checkpoint is not signed by a trusted key")
            )
            continue
        cp = note.checkpoint
        anchored[origin] = cp.size
        log = ledger.logs.get(origin)
        if log is None:
            problems.append(
                Problem(
                    "truncated",
                    origin,
                    0,
                    cp.size - 1,
                    f"the anchor holds checkpoint {cp.size} of this sub-log but the ledger has none of it: the "
                    "sub-log was removed",
                )
            )
            continue
        result = results[origin]
        if any(not p.explained for p in result.problems):
            continue  # already tampered; the anchor adds nothing clearer
        count = log.count
        if cp.size > count:
            first = min(count, result.signed_size) if result.signed_size else count
            problems.append(
                Problem(
                    "truncated",
                    origin,
                    first,
                    cp.size - 1,
                    f"the anchor holds checkpoint {cp.size} but the ledger ends at {count} events (last "
                    f"signed {result.signed_size}): the ledger was cut back",
                )
            )
            continue
        at = result.roots_at.get(cp.size)
        if (at if at is not None else hashing.root_of(log.leaf_hashes()[: cp.size * 32])) != cp.root:
            problems.append(
                Problem(
                    "forked",
                    origin,
                    None,
                    cp.size - 1,
                    f"the anchored checkpoint {cp.size} has a different root from this ledger: the ledger is not the "
                    "history that was anchored (replaced or forked)",
                )
            )
            continue
        if cp.size < result.signed_size:
            warnings.append(
                f"{origin}: the anchor holds size {cp.size}, behind the ledger's last checkpoint {result.signed_size} "
                "(anchoring failed or was off)"
            )


def verify_ledger(
    ledger: Ledger, keys: Sequence[VerifierKey] | None = None, anchor: AnchorStore | None = None
) -> VerifyReport:
    trusted, key_source = _keys_for(ledger, keys)
    ctx = _Context(ledger)
    results: dict[str, _LogResult] = {}
    problems: list[Problem] = []
    warnings: list[str] = []
    anchor_notes = list(anchor.items()) if anchor is not None else []
    anchor_sizes: dict[str, list[int]] = {}
    for origin, text in anchor_notes:
        with contextlib.suppress(NoteError):
            anchor_sizes.setdefault(origin, []).append(parse_checkpoint(text).checkpoint.size)
    origins = sorted(ledger.logs)
    parsed = {o: _parse_notes(ledger.logs[o]) for o in origins}
    for origin in origins:
        results[origin] = _LogResult()

    def check_signatures() -> None:
        for origin in origins:
            _check_signatures(ledger.logs[origin], trusted, results[origin], parsed[origin])

    # roots at the size of every checkpoint, signed or not (they share all their nodes), are hashed by the
    # workers while this process checks the signatures
    wanted = [
        [n.checkpoint.size for _, n in parsed[o] if not isinstance(n, NoteError)] + anchor_sizes.get(o, [])
        for o in origins
    ]
    packed = [ledger.logs[o].leaf_hashes() for o in origins]
    for origin, roots in zip(origins, hashing.roots_at(packed, wanted, before=check_signatures), strict=True):
        results[origin].roots_at = roots
    for origin in origins:
        log = ledger.logs[origin]
        result = results[origin]
        _verify_log(ctx, log, result)
        problems.extend(result.problems)
        if not result.good and log.count:
            if not any(p.kind == "bad-signature" for p in result.problems):
                # an instance reaped before its first checkpoint looks exactly like this; only the anchor can
                # tell it from checkpoints removed by hand, so without one this is unverified, not tampered
                warnings.append(
                    f"{origin}: {log.count} event(s) and no checkpoint: none of them is verified "
                    "(the instance stopped before signing, or its checkpoints were removed)"
                )
        elif log.count > result.signed_size and not result.problems:
            warnings.append(
                f"{origin}: {log.count - result.signed_size} newest event(s) after checkpoint "
                f"{result.signed_size} are not signed yet (writer still running, or it stopped before close)"
            )
    anchored: dict[str, int] = {}
    if anchor is not None:
        _check_anchor(ledger, anchor_notes, trusted, results, anchored, problems, warnings)
    else:
        warnings.append("no anchor given (--anchor): truncation of the newest checkpoints cannot be ruled out")
    if key_source == "ledger":
        warnings.append(
            "signatures checked against the key recorded in the ledger itself; pass --pub KEY to check them "
            "against a key you trust"
        )
    if ledger.malformed:
        warnings.append(f"{ledger.malformed} record(s) could not be parsed and were skipped")
    statuses = tuple(
        LogStatus(
            origin,
            ledger.logs[origin].count,
            len(ledger.logs[origin].checkpoints),
            results[origin].signed_size,
            results[origin].verified_size,
            anchored.get(origin),
        )
        for origin in sorted(ledger.logs)
    )
    return VerifyReport(
        source=ledger.source,
        events=ledger.event_count,
        logs=statuses,
        problems=tuple(problems),
        warnings=tuple(warnings),
        keys=tuple(str(k) for k in trusted),
        key_source=key_source,
        anchor_checked=anchor is not None,
        unparsed=ledger.malformed,
    )
