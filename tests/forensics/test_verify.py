"""The mutation suite: every way of editing a 10 000-event ledger is detected and named; the intact one verifies."""

from __future__ import annotations

from pathlib import Path

import pytest
from ledgers import Built, edit_lines, edit_sqlite_entries, entry_indexes, first_origin, write_ledger

from sas.events.anchor import SqliteAnchor
from sas.events.canonical import CHECKPOINT_PREFIX, loads
from sas.events.checkpoint import Checkpoint, Signer, parse_checkpoint, sign_checkpoint
from sas.forensics.ledger import load_ledger
from sas.forensics.verify import VerifyReport, verify_ledger

FORMATS = ["jsonl", "db"]


def check(path: Path, built: Built, anchor: Path | None = None) -> VerifyReport:
    store = SqliteAnchor(str(anchor)) if anchor is not None else None
    try:
        return verify_ledger(load_ledger(path), [built.signer.verifier], store)
    finally:
        if store is not None:
            store.close()


def mutate_entries(path: Path, origin: str, change) -> None:  # type: ignore[no-untyped-def]
    """Apply ``change`` to the entry lines of one sub-log, whatever the format."""
    if path.suffix == ".db":
        edit_sqlite_entries(path, change, origin)
        return

    def apply(lines: list[bytes]) -> list[bytes]:
        idx = entry_indexes(lines, origin)
        new = change([lines[i] for i in idx])
        out: list[bytes] = []
        it = iter(new)
        positions = set(idx)
        for i, line in enumerate(lines):
            if i in positions:
                if i == idx[-1]:
                    out.extend(it)  # whatever remains (insertions) goes where the sub-log's last entry was
                else:
                    nxt = next(it, None)
                    if nxt is not None:
                        out.append(nxt)
            else:
                out.append(line)
        return out

    edit_lines(path, apply)


def origin_of(path: Path, built: Built) -> str:
    return first_origin(built.paths["jsonl"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_untouched_ledger_verifies_with_anchor(built: Built, tmp_path: Path, fmt: str) -> None:
    path, anchor = built.copy(fmt, tmp_path)
    report = check(path, built, anchor)
    assert not report.tampered, report.problems
    assert report.events == len(built.events) >= 10_000
    assert sum(s.verified_size for s in report.logs) == report.events
    assert all(s.anchored_size == s.events for s in report.logs)


@pytest.mark.parametrize("fmt", FORMATS)
def test_modified_verdict_is_named_modified_within_its_interval(built: Built, tmp_path: Path, fmt: str) -> None:
    path, anchor = built.copy(fmt, tmp_path)
    origin = origin_of(path, built)
    target: list[int] = []

    def change(entries: list[bytes]) -> list[bytes]:
        i = next(i for i, e in enumerate(entries) if b'"verdict":"block"' in e and i > 1500)
        target.append(i)
        entries[i] = entries[i].replace(b'"verdict":"block"', b'"verdict":"allow"')
        return entries

    mutate_entries(path, origin, change)
    report = check(path, built, anchor)
    assert report.tampered and report.kinds[0] == "modified"
    first = report.first_problem
    assert first is not None and first.origin == origin
    assert first.first_seq is not None and first.last_seq is not None
    assert first.first_seq <= target[0] <= first.last_seq and first.last_seq - first.first_seq < 1000


def test_non_canonical_edit_is_pinpointed(built: Built, tmp_path: Path) -> None:
    path, _ = built.copy("jsonl", tmp_path)
    origin = origin_of(path, built)
    mutate_entries(path, origin, lambda es: [*es[:2222], es[2222].replace(b'"severity":', b'"severity": '), *es[2223:]])
    first = check(path, built).first_problem
    assert first is not None and first.kind == "modified" and first.first_seq == first.last_seq == 2222


@pytest.mark.parametrize("fmt", FORMATS)
def test_deleted_event_is_named_exactly(built: Built, tmp_path: Path, fmt: str) -> None:
    path, anchor = built.copy(fmt, tmp_path)
    origin = origin_of(path, built)
    mutate_entries(path, origin, lambda es: es[:1234] + es[1235:])
    report = check(path, built, anchor)
    first = report.first_problem
    assert report.tampered and first is not None
    assert (first.kind, first.origin, first.first_seq, first.last_seq) == ("deleted", origin, 1234, 1234)
    assert first.event_id == f"{origin}:1234"


@pytest.mark.parametrize("fmt", FORMATS)
def test_inserted_event_is_named(built: Built, tmp_path: Path, fmt: str) -> None:
    path, anchor = built.copy(fmt, tmp_path)
    origin = origin_of(path, built)

    def change(entries: list[bytes]) -> list[bytes]:
        fake = entries[1700].replace(b'"client_id":"', b'"client_id":"x')  # an alibi planted beside event 1700
        return [*entries[:1701], fake, *entries[1701:]]

    mutate_entries(path, origin, change)
    first = check(path, built, anchor).first_problem
    assert first is not None and first.kind == "inserted" and first.first_seq == 1700


@pytest.mark.parametrize("fmt", FORMATS)
def test_reordered_events_are_named(built: Built, tmp_path: Path, fmt: str) -> None:
    path, anchor = built.copy(fmt, tmp_path)
    origin = origin_of(path, built)

    def change(entries: list[bytes]) -> list[bytes]:
        entries[2000], entries[2001] = entries[2001], entries[2000]
        return entries

    mutate_entries(path, origin, change)
    report = check(path, built, anchor)
    first = report.first_problem
    assert first is not None and first.kind == "reordered" and first.first_seq == 2000
    assert report.kinds == ("reordered",)  # content intact: nothing else is claimed


def _drop_last_checkpoint(lines: list[bytes], origin: str) -> list[bytes]:
    marker = CHECKPOINT_PREFIX + origin.encode()
    last = max(i for i, line in enumerate(lines) if line.startswith(marker))
    return lines[:last] + lines[last + 1 :]


def test_truncation_with_checkpoints_removed_is_caught_by_the_anchor_only(built: Built, tmp_path: Path) -> None:
    path, anchor = built.copy("jsonl", tmp_path)
    origin = origin_of(path, built)
    records = [loads(line) for line in path.read_bytes().split(b"\n") if line]
    sizes = [r["note"].split("\n")[1] for r in records if r.get("_sas_checkpoint") == origin]
    cut = int(sizes[-1]) - int(sizes[-2])  # everything the final checkpoint added
    mutate_entries(path, origin, lambda es: es[:-cut])
    edit_lines(path, lambda lines: _drop_last_checkpoint(lines, origin))
    without = check(path, built)
    assert not without.tampered and any("no anchor" in w for w in without.warnings)
    report = check(path, built, anchor)
    first = report.first_problem
    assert first is not None and first.kind == "truncated" and first.origin == origin


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_entries_under_a_surviving_checkpoint(built: Built, tmp_path: Path, fmt: str) -> None:
    path, _ = built.copy(fmt, tmp_path)
    origin = origin_of(path, built)
    mutate_entries(path, origin, lambda es: es[:-10])
    first = check(path, built).first_problem
    assert first is not None and first.kind == "truncated"


def test_whole_sub_log_removed_is_truncated(built: Built, tmp_path: Path) -> None:
    path, anchor = built.copy("jsonl", tmp_path)
    origin = origin_of(path, built).encode()
    edit_lines(path, lambda lines: [x for x in lines if origin not in x])
    report = check(path, built, anchor)
    assert report.tampered and report.kinds == ("truncated",)


def test_checkpoint_signed_by_another_key_fails(built: Built, tmp_path: Path) -> None:
    path, anchor = built.copy("jsonl", tmp_path)
    intruder = Signer.generate()

    def resign(lines: list[bytes]) -> list[bytes]:
        i = next(i for i, line in enumerate(lines) if line.startswith(CHECKPOINT_PREFIX))
        record = loads(lines[i])
        cp = parse_checkpoint(record["note"]).checkpoint
        record["note"] = sign_checkpoint(Checkpoint(cp.origin, cp.size, cp.root), intruder)
        from sas.events.canonical import dumps

        lines[i] = dumps(record)
        return lines

    edit_lines(path, resign)
    report = check(path, built, anchor)
    first = report.first_problem
    assert first is not None and first.kind == "bad-signature" and "not signed by a trusted key" in first.message


def test_ledger_rewritten_and_resigned_by_intruder_fails_against_the_real_key(built: Built, tmp_path: Path) -> None:
    intruder = Signer.generate()
    forged = tmp_path / "forged.jsonl"
    events = list(built.events)
    events[5000] = events[5000].__class__(**{**events[5000].to_dict(), "verdict": "allow", "details": {}})
    write_ledger(forged, events, intruder)
    report = check(forged, built)
    assert report.tampered and report.kinds[0] == "bad-signature"
    # and the intruder's own key, recorded in the ledger, is only trusted when asked: it says so
    self_attested = verify_ledger(load_ledger(forged))
    assert not self_attested.tampered and any("recorded in the ledger itself" in w for w in self_attested.warnings)


def test_replaced_history_with_same_key_is_forked_against_the_anchor(built: Built, tmp_path: Path) -> None:
    """Someone with the key re-runs the writer over an edited history: signatures pass, the anchor does not."""
    _, anchor = built.copy("jsonl", tmp_path)
    replayed = tmp_path / "replayed.jsonl"
    events = list(built.events)
    events[42] = events[42].__class__(**{**events[42].to_dict(), "client_id": "someone-else"})
    write_ledger(replayed, events, built.signer)
    assert not check(replayed, built).tampered  # self-consistent...
    report = check(replayed, built, anchor)
    assert report.tampered and report.kinds == ("forked",)  # ...but not the anchored history


def test_cloned_instance_writing_one_sub_log_is_forked(built: Built, tmp_path: Path) -> None:
    """SnapStart without a fresh instance id: two clones append to the same sub-log with the same key."""
    from sas.events.ledger import LedgerWriter
    from sas.events.stores import JsonlStore

    path = tmp_path / "clones.jsonl"
    base = [e for e in built.events if e.instance_id == built.events[0].instance_id][:3000]
    a = LedgerWriter(JsonlStore(str(path)), signer=built.signer, checkpoint_every=500, checkpoint_seconds=3600)
    for e in base[:1000]:
        a.emit(e)
    a.flush()
    import copy

    # the snapshot: a second process restored from the same memory, same sub-log state, same key
    b = LedgerWriter(JsonlStore(str(path)), signer=built.signer, checkpoint_every=500, checkpoint_seconds=3600)
    b._logs = copy.deepcopy(a._logs)
    for ea, eb in zip(base[1000:2000], base[2000:3000], strict=True):
        a.emit(ea)
        b.emit(eb)
    a.close()
    b.close()
    first = check(path, built).first_problem
    assert first is not None and first.kind == "forked"


def test_gap_explained_by_platform_logs_dropped_is_not_tampering(built: Built, tmp_path: Path) -> None:
    path, _ = built.copy("jsonl", tmp_path)
    origin = origin_of(path, built)
    mutate_entries(path, origin, lambda es: es[:600] + es[612:])
    unexplained = check(path, built)
    assert unexplained.tampered and unexplained.first_problem is not None
    assert unexplained.first_problem.kind == "deleted"
    report_line = (
        b'2025-11-20T10:00:00.000Z {"time":"2025-11-20T10:00:00.000Z","type":"platform.logsDropped",'
        b'"record":{"reason":"Some logs were dropped because the downstream consumer is slower","droppedRecords":12,'
        b'"droppedBytes":5000}}'
    )
    edit_lines(path, lambda lines: [*lines, report_line])
    # the report's time is before these events: a report must come after the gap to explain it
    assert check(path, built).tampered
    late = report_line.replace(b"2025-11-20T10", b"2027-11-20T10")
    edit_lines(path, lambda lines: [*lines[:-1], late])
    report = check(path, built)
    assert not report.tampered
    dropped = [p for p in report.problems if p.kind == "dropped"]
    assert dropped and dropped[0].explained and dropped[0].first_seq == 600 and dropped[0].last_seq == 611
    # verification resumed after the gap: everything from the next checkpoint on is proven
    log = next(s for s in report.logs if s.origin == origin)
    assert log.verified_size == log.signed_size


def test_resigned_anchor_from_another_key_is_bad_signature(built: Built, tmp_path: Path) -> None:
    path, anchor_path = built.copy("jsonl", tmp_path)
    store = SqliteAnchor(str(anchor_path))
    origin, note = next(store.items())
    cp = parse_checkpoint(note).checkpoint
    store.compare_and_set(origin, note, sign_checkpoint(cp, Signer.generate()))
    store.close()
    report = check(path, built, anchor_path)
    assert report.tampered and report.kinds == ("bad-signature",)


@pytest.mark.parametrize("fmt", FORMATS)
def test_parallel_reading_equals_serial(built: Built, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    from sas.events.merkle import leaf_hashes
    from sas.forensics import hashing

    serial = load_ledger(built.paths[fmt])
    monkeypatch.setattr(hashing, "PARALLEL_MIN", 10)  # several chunks, read by forked workers
    parallel = load_ledger(built.paths[fmt])
    chunks = [{id(chunk) for log in ledger.logs.values() for chunk, _ in log.runs} for ledger in (serial, parallel)]
    assert len(chunks[0]) == 1 < len(chunks[1])
    assert list(parallel.logs) == list(serial.logs) and parallel.metas == serial.metas
    for origin, log in serial.logs.items():
        other = parallel.logs[origin]
        assert other.entries == log.entries and other.count == len(log.entries)
        assert other.leaf_hashes() == log.leaf_hashes() == b"".join(leaf_hashes(log.entries))
        assert [(c.note, c.frontier, c.position) for c in other.checkpoints] == [
            (c.note, c.frontier, c.position) for c in log.checkpoints
        ]


def test_a_sub_log_reaped_before_its_first_checkpoint_is_unverified_not_tampered(tmp_path: Path) -> None:
    from ledgers import realistic_events

    signer = Signer.generate()
    path = tmp_path / "reaped.jsonl"
    write_ledger(path, realistic_events(120, instances=1), signer, close=False)  # flushed, never signed
    report = verify_ledger(load_ledger(path), [signer.verifier])
    assert not report.tampered and any("no checkpoint" in w for w in report.warnings)


def test_checkpoints_removed_but_anchor_still_proves_the_events(built: Built, tmp_path: Path) -> None:
    path, anchor = built.copy("jsonl", tmp_path)
    origin = origin_of(path, built)
    edit_lines(path, lambda lines: [x for x in lines if not x.startswith(CHECKPOINT_PREFIX + origin.encode())])
    report = check(path, built, anchor)
    assert not report.tampered  # the anchored root still matches every stored event


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\xff" * 5000,
        b'{"_sas_log":"x","_sas_seq":1,' + b"[" * 100_000 + b"\n",
        b'{"_sas_checkpoint":"x","note":"nonsense","frontier":["!!"]}\n{"_sas_meta":[1]}\n',
        b'{"_sas_log":"unterminated\n{"_sas_log":"o","_sas_seq":\n',
    ],
)
def test_hostile_ledger_input_is_reported_not_raised(tmp_path: Path, garbage: bytes) -> None:
    from sas.errors import SasError

    path = tmp_path / "hostile.jsonl"
    path.write_bytes(garbage)
    try:
        ledger = load_ledger(path)
    except SasError:
        return  # unusable input, said in one line: exit 2
    assert ledger.malformed > 0 or ledger.event_count <= 1
    try:
        report = verify_ledger(ledger, [Signer.generate().verifier])
    except SasError:
        return
    assert report.warnings or report.problems
    from sas.forensics.incidents import find_incidents
    from sas.forensics.report import render_report
    from sas.forensics.timeline import ledger_events

    events = ledger_events(ledger)  # unparseable entries are evidence, not events: skipped here
    assert "<html" in render_report(str(path), events, find_incidents(events), report)


def test_gap_explained_by_a_logs_dropped_event_recorded_in_the_ledger(tmp_path: Path) -> None:
    """The runtime (through a Telemetry API extension) records Lambda's report as an event of its own."""
    from sas.events import RuntimeEvent, Verdict
    from sas.events.ledger import LedgerWriter
    from sas.events.stores import JsonlStore

    signer = Signer.generate()
    path = tmp_path / "stdout-capture.jsonl"
    writer = LedgerWriter(JsonlStore(str(path)), signer=signer, checkpoint_every=100)

    def event(i: int, name: str = "invocation", details: dict[str, object] | None = None) -> RuntimeEvent:
        return RuntimeEvent(
            1.79e9 + i, name, "shield", "", "", "info", Verdict.ALLOW, f"r{i}", "c", "i-1", "fn", "aws", details or {}
        )

    for i in range(250):
        writer.emit(event(i))
    writer.emit(
        event(250, "platform.logsDropped", {"droppedRecords": 5, "droppedBytes": 2000, "reason": "slow consumer"})
    )
    writer.close()
    mutate_entries(path, "sas-ledger/fn/i-1", lambda es: es[:120] + es[125:])  # the platform lost 5 lines
    report = verify_ledger(load_ledger(path), [signer.verifier])
    assert not report.tampered
    assert [(p.kind, p.first_seq, p.last_seq, p.explained) for p in report.problems] == [("dropped", 120, 124, True)]
    # more missing lines than the platform reported dropping: not explained
    mutate_entries(path, "sas-ledger/fn/i-1", lambda es: es[:10] + es[20:])
    assert verify_ledger(load_ledger(path), [signer.verifier]).tampered


def test_a_folder_of_gzipped_cloudwatch_exports_verifies(built: Built, tmp_path: Path) -> None:
    import gzip

    lines = built.paths["jsonl"].read_bytes().split(b"\n")
    folder = tmp_path / "export" / "stream"
    folder.mkdir(parents=True)
    for part, start in enumerate(range(0, len(lines), 4000)):
        chunk = b"\n".join(b"2026-09-21T14:13:20.000Z " + line for line in lines[start : start + 4000] if line)
        (folder / f"{part:06d}.gz").write_bytes(gzip.compress(chunk + b"\n"))
    report = verify_ledger(load_ledger(tmp_path / "export"), [built.signer.verifier])
    assert not report.tampered and report.events == len(built.events)


@pytest.mark.parametrize("sizes", [(1500, 7, 2600, 0, 900), (5000, 10, 20)])
@pytest.mark.parametrize("parallel", [False, True])
def test_roots_at_equal_the_rfc_root(monkeypatch: pytest.MonkeyPatch, sizes: tuple[int, ...], parallel: bool) -> None:
    from sas.events.merkle import leaf_hash, root
    from sas.forensics import hashing

    logs = [[leaf_hash(f"entry {i} of {j}".encode()) for i in range(n)] for j, n in enumerate(sizes)]
    wanted = [[1, n // 3, n // 2, n - 1, n, n + 5, 0, 1024] for n in sizes]
    expected = [{w: root(hs[:w]) for w in ws if 0 < w <= len(hs)} for hs, ws in zip(logs, wanted, strict=True)]
    monkeypatch.setattr(hashing, "BLOCK_BITS", 4)  # nodes above the blocks are built from block roots
    if parallel:
        monkeypatch.setattr(hashing, "PARALLEL_MIN", 10)
    assert hashing.roots_at([b"".join(hs) for hs in logs], wanted) == expected


def test_parallel_verification_still_names_tampering(
    built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sas.forensics import hashing

    monkeypatch.setattr(hashing, "PARALLEL_MIN", 100)
    path, anchor = built.copy("jsonl", tmp_path)
    assert not check(path, built, anchor).tampered
    origin = origin_of(path, built)
    mutate_entries(path, origin, lambda es: es[:3000] + es[3001:])
    first = check(path, built, anchor).first_problem
    assert first is not None and (first.kind, first.first_seq) == ("deleted", 3000)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("edit", "kind"),
    [
        ("none", None),
        ("repeat", "inserted"),  # a bypass found by fuzzing: a repeated unsigned entry verified as one more event
        ("drop-middle", "deleted"),
        ("swap", "reordered"),
        ("drop-newest", None),  # truncation of what no checkpoint covers: only an anchor or --strict sees it
    ],
)
def test_entries_after_the_newest_checkpoint_must_follow_their_positions(
    tmp_path: Path, fmt: str, edit: str, kind: str | None
) -> None:
    """A writer still running (or killed before close) leaves entries no checkpoint covers: they are unverified,
    but a repeated, reordered or missing one among them is tampering all the same."""
    from ledgers import realistic_events

    signer = Signer.generate()
    path = tmp_path / ("l.db" if fmt == "db" else "l.jsonl")
    # checkpoints every 40 events, flushes every 50, never closed: entries 80..99 are written and unsigned
    writer = write_ledger(path, realistic_events(110, instances=1), signer, every=40, close=False)
    origin = first_origin(path) if fmt == "jsonl" else load_ledger(path).logs.popitem()[0]

    def change(entries: list[bytes]) -> list[bytes]:
        tail = entries[80:]
        if edit == "repeat":
            tail.insert(5, tail[4])
        elif edit == "drop-middle":
            del tail[7]
        elif edit == "swap":
            tail[3], tail[4] = tail[4], tail[3]
        elif edit == "drop-newest":
            tail.pop()
        return entries[:80] + tail

    mutate_entries(path, origin, change)
    report = verify_ledger(load_ledger(path), [signer.verifier])
    assert report.tampered == (kind is not None), report.problems
    assert report.kinds == (() if kind is None else (kind,))
    assert report.verified_events == 80 and not report.complete
    writer.close()


@pytest.mark.parametrize("value", [2**62, -1, 1.5, 10**6])
@pytest.mark.parametrize("column", ["checkpoints.frontier", "batches.data"])
def test_a_number_stored_in_a_sqlite_ledgers_blob_column_is_damage_not_a_crash(
    tmp_path: Path, column: str, value: float
) -> None:
    """Found by fuzzing: bytes(n) of a number where a blob belongs allocated n bytes (MemoryError for 2**62,
    ValueError for -1, TypeError for 1.5) while loading; the row is now damage that verification reports."""
    import sqlite3

    from ledgers import realistic_events

    signer = Signer.generate()
    path = tmp_path / "l.db"
    write_ledger(path, realistic_events(120, instances=1), signer, every=40)
    table, name = column.split(".")
    db = sqlite3.connect(path)
    db.execute(f"UPDATE {table} SET {name} = ? WHERE id = (SELECT min(id) FROM {table})", (value,))
    db.commit()
    db.close()
    report = verify_ledger(load_ledger(path), [signer.verifier])
    assert report.tampered or report.unparsed or not report.complete
