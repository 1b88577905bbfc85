"""The ledger writer behind the sink API: sub-logs per instance, checkpoint cadence, anchoring, never raising."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from sas.errors import ConfigError
from sas.events import RuntimeEvent, Verdict, open_sink
from sas.events.anchor import MemoryAnchor
from sas.events.canonical import loads
from sas.events.checkpoint import Signer, parse_checkpoint
from sas.events.ledger import LedgerWriter, ledger_from_config
from sas.events.stores import JsonlStore, LedgerStore, SqliteStore, StdoutStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def ev(i: int, instance: str = "i-1") -> RuntimeEvent:
    return RuntimeEvent(
        time=1_790_000_000.0 + i,
        event="invocation",
        detector="",
        category="",
        threat="",
        severity="info",
        verdict=Verdict.ALLOW,
        request_id=f"r{i}",
        client_id="c",
        instance_id=instance,
        function="fn",
        platform="aws",
        details={"i": i},
    )


def records(path: Path) -> list[dict[str, object]]:
    return [loads(line) for line in path.read_bytes().splitlines() if line]


def checkpoints(path: Path) -> list[tuple[str, int]]:
    out = []
    for r in records(path):
        if "_sas_checkpoint" in r:
            cp = parse_checkpoint(str(r["note"])).checkpoint
            out.append((cp.origin, cp.size))
    return out


def test_one_sub_log_per_instance_with_its_own_sequence(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    w = LedgerWriter(JsonlStore(str(path)), signer=Signer.generate(), checkpoint_every=1000)
    for i in range(10):
        w.emit(ev(i, instance="a" if i % 2 else "b"))
    w.close()
    entries = [r for r in records(path) if "_sas_log" in r]
    by_log: dict[str, list[object]] = {}
    for r in entries:
        by_log.setdefault(str(r["_sas_log"]), []).append(r["_sas_seq"])
    assert sorted(by_log) == ["sas-ledger/fn/a", "sas-ledger/fn/b"]
    assert all(seqs == list(range(5)) for seqs in by_log.values())
    assert sorted(checkpoints(path)) == [("sas-ledger/fn/a", 5), ("sas-ledger/fn/b", 5)]


def test_checkpoint_every_n_events(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    w = LedgerWriter(JsonlStore(str(path)), signer=Signer.generate(), checkpoint_every=100, clock=Clock())
    for i in range(350):
        w.emit(ev(i))
    assert [s for _, s in checkpoints(path)] == [100, 200, 300]
    w.close()
    assert [s for _, s in checkpoints(path)] == [100, 200, 300, 350]


def test_checkpoint_no_later_than_t_seconds_after_the_oldest_unsigned_event(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    clock = Clock()
    w = LedgerWriter(
        JsonlStore(str(path)), signer=Signer.generate(), checkpoint_every=1000, checkpoint_seconds=5, clock=clock
    )
    w.emit(ev(0))
    clock.now = 4.0
    w.emit(ev(1))
    w.flush()  # end of invocation: stored, not yet due for a signature
    assert checkpoints(path) == [] and len([r for r in records(path) if "_sas_log" in r]) == 2
    clock.now = 5.5  # a frozen instance runs no timer; the next flush signs
    w.flush()
    assert [s for _, s in checkpoints(path)] == [2]
    clock.now = 20.0
    w.emit(ev(2))  # nothing unsigned was old: no immediate checkpoint for a lone event
    assert [s for _, s in checkpoints(path)] == [2]
    clock.now = 26.0
    w.emit(ev(3))
    assert [s for _, s in checkpoints(path)] == [2, 4]


def test_flush_stores_buffered_events_so_a_reaped_instance_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    w = LedgerWriter(SqliteStore(str(path)), signer=Signer.generate(), checkpoint_every=1000, clock=Clock())
    for i in range(3):
        w.emit(ev(i))
    w.flush()
    from sas.forensics.ledger import load_ledger

    assert load_ledger(path).event_count == 3  # readable while the writer is still open


def test_anchor_holds_the_latest_checkpoint_and_a_second_writer_conflicts(tmp_path: Path) -> None:
    anchor = MemoryAnchor()
    signer = Signer.generate()
    w = LedgerWriter(JsonlStore(str(tmp_path / "a.jsonl")), signer=signer, anchor=anchor, checkpoint_every=10)
    for i in range(25):
        w.emit(ev(i))
    w.checkpoint_all()
    assert parse_checkpoint(anchor.get("sas-ledger/fn/i-1") or "").checkpoint.size == 25
    clone = LedgerWriter(JsonlStore(str(tmp_path / "b.jsonl")), signer=signer, anchor=anchor, checkpoint_every=10)
    for i in range(10):
        clone.emit(ev(i))
    assert clone.anchor_conflicts == 1  # it never saw the anchor it would replace
    assert parse_checkpoint(anchor.get("sas-ledger/fn/i-1") or "").checkpoint.size == 25


class BrokenStore(LedgerStore):
    def write(self, batches: object, checkpoints: object) -> None:  # type: ignore[override]
        raise OSError("disk full")

    def write_meta(self, meta: object) -> None:  # type: ignore[override]
        raise OSError("disk full")


def test_a_failing_store_never_raises_into_the_handler() -> None:
    w = LedgerWriter(BrokenStore(), signer=Signer.generate(), checkpoint_every=2)
    for i in range(5):
        w.emit(ev(i))
    w.flush()
    w.close()
    assert w.dropped >= 1 and "disk full" in w.errors[0]


def test_stdout_lines_survive_a_cloudwatch_prefix(tmp_path: Path) -> None:
    out = io.StringIO()
    w = LedgerWriter(StdoutStore(out), signer=Signer.generate(), checkpoint_every=3)
    for i in range(7):
        w.emit(ev(i))
    w.close()
    lines = out.getvalue().splitlines()
    assert all(len(line) < 256 * 1024 and line.startswith('{"_sas_') for line in lines)
    exported = "\n".join(f"2026-11-20T10:00:{i:02d}.000Z\tr-{i}\t{line}" for i, line in enumerate(lines))
    path = tmp_path / "cloudwatch-export.txt"
    path.write_text("START RequestId: r-0 Version: $LATEST\n" + exported + "\r\n")
    from sas.forensics.ledger import load_ledger
    from sas.forensics.verify import verify_ledger

    report = verify_ledger(load_ledger(path))
    assert not report.tampered and report.events == 7 and report.logs[0].verified_size == 7


def test_sink_specs_open_the_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_path = tmp_path / "k"
    from sas.integrity import generate_private_key, write_keypair

    key, pub = write_keypair(generate_private_key(), key_path)
    monkeypatch.setenv("SAS_SIGNING_KEY", str(key))
    monkeypatch.setenv("SAS_ANCHOR", f"sqlite:{tmp_path / 'anchor.db'}")
    sink = open_sink(f"sqlite:{tmp_path / 'l.db'}")
    assert isinstance(sink, LedgerWriter)
    sink.emit(ev(0))
    sink.close()
    from sas.events.anchor import SqliteAnchor
    from sas.events.checkpoint import load_verifier
    from sas.forensics.ledger import load_ledger
    from sas.forensics.verify import verify_ledger

    report = verify_ledger(
        load_ledger(tmp_path / "l.db"), [load_verifier(pub)], SqliteAnchor(str(tmp_path / "anchor.db"))
    )
    assert not report.tampered and report.events == 1 and report.key_source == "given"
    meta = load_ledger(tmp_path / "l.db").metas[0]
    assert meta["ephemeral_key"] is False
    plain = open_sink(f"plain-jsonl:{tmp_path / 'p.jsonl'}")
    plain.emit(ev(1))
    plain.close()
    assert json.loads((tmp_path / "p.jsonl").read_text())["request_id"] == "r1"


def test_unreadable_key_falls_back_to_an_ephemeral_key_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAS_SIGNING_KEY", str(tmp_path / "missing.key"))
    path = tmp_path / "l.jsonl"
    w = LedgerWriter(JsonlStore(str(path)), checkpoint_every=1)
    w.emit(ev(0))
    w.close()
    meta = next(r["_sas_meta"] for r in records(path) if "_sas_meta" in r)
    assert meta["ephemeral_key"] is True and "missing.key" in meta["key_error"]  # type: ignore[index]


def test_forensics_config_table_is_validated(tmp_path: Path) -> None:
    w = ledger_from_config({"ledger": f"jsonl:{tmp_path / 'l.jsonl'}", "checkpoint_every": 5, "checkpoint_seconds": 2})
    assert (w.checkpoint_every, w.checkpoint_seconds) == (5, 2.0)
    with pytest.raises(ConfigError):
        ledger_from_config({"ledger": "stdout", "checkpoint_every": 0})
    with pytest.raises(ConfigError):
        ledger_from_config({"ledger": "ftp:x"})


@pytest.mark.parametrize("suffix", ["jsonl", "db"])
def test_a_forked_child_writes_its_own_sub_log_not_a_fork(tmp_path: Path, suffix: str) -> None:
    import os

    from sas.forensics.ledger import load_ledger
    from sas.forensics.verify import verify_ledger

    path = tmp_path / f"l.{suffix}"
    signer = Signer.generate()
    store = SqliteStore(str(path)) if suffix == "db" else JsonlStore(str(path))
    w = LedgerWriter(store, signer=signer, checkpoint_every=10)
    for i in range(15):
        w.emit(ev(i))
    w.flush()
    pid = os.fork()
    if pid == 0:  # the child: same memory, same instance id
        try:
            for i in range(15, 40):
                w.emit(ev(i))
            w.close()
        finally:
            os._exit(0 if w.dropped == 0 else 1)
    for i in range(15, 30):
        w.emit(ev(i))
    w.close()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    report = verify_ledger(load_ledger(path), [signer.verifier])
    assert not report.tampered, report.problems
    origins = sorted((s.origin, s.events) for s in report.logs)
    assert origins[0] == ("sas-ledger/fn/i-1", 30) and origins[1][0].startswith("sas-ledger/fn/i-1-pid")
    assert origins[1][1] == 25


class FlakyStore(JsonlStore):
    """Fails its second batch write (a full disk for a moment), then recovers."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.calls = 0

    def write(self, batches, checkpoints) -> None:  # type: ignore[no-untyped-def, override]
        self.calls += 1
        if self.calls == 2:
            raise OSError("No space left on device")
        super().write(batches, checkpoints)


def test_a_failed_write_is_recorded_in_the_sub_log_so_the_gap_is_explained(tmp_path: Path) -> None:
    from sas.forensics.ledger import load_ledger
    from sas.forensics.verify import verify_ledger

    path = tmp_path / "l.jsonl"
    signer = Signer.generate()
    w = LedgerWriter(FlakyStore(str(path)), signer=signer, checkpoint_every=1000, clock=Clock())
    for i in range(30):
        w.emit(ev(i))
        if i % 10 == 9:
            w.flush()  # the second of these writes fails: events 10..19 are lost
    w.close()
    assert w.dropped == 1 and "No space left" in w.errors[0]
    report = verify_ledger(load_ledger(path), [signer.verifier])
    assert not report.tampered, report.problems
    assert [(p.kind, p.first_seq, p.last_seq, p.explained) for p in report.problems] == [("dropped", 10, 19, True)]
    entries = [r for r in records(path) if r.get("event") == "ledger.writeFailed"]
    assert entries and entries[0]["details"] == {  # type: ignore[comparison-overlap]
        "droppedRecords": 10,
        "firstSeq": 10,
        "error": "No space left on device",
    }


def test_stdout_lines_keep_their_bytes_and_their_place_whatever_the_stream_encoding(tmp_path: Path) -> None:
    """A real text stream (not UTF-8, with the handler's own prints pending in it): the ledger lines are the
    canonical bytes, and each sits between the output before and after it."""
    from dataclasses import replace

    from sas.forensics.ledger import load_ledger
    from sas.forensics.verify import verify_ledger

    path = tmp_path / "stdout.txt"
    signer = Signer.generate()
    with open(path, "w", encoding="latin-1") as stream:
        stream.write("cold start\n")
        w = LedgerWriter(StdoutStore(stream), signer=signer, checkpoint_every=5)
        for i in range(12):
            w.emit(replace(ev(i), details={"i": i, "note": "caf\u00e9 \u2615"}))  # no latin-1 for the cup
            w.flush()
            stream.write(f"handler printed {i}\n")
        w.close()
    lines = path.read_bytes().split(b"\n")
    assert lines[0] == b"cold start" and "caf\u00e9 \u2615".encode() in lines[2]
    order = [line for line in lines if line.startswith((b'{"_sas_log"', b"handler"))]
    assert [x.startswith(b"{") for x in order] == [True, False] * 12  # entry i, then what followed it
    assert [loads(x)["_sas_seq"] for x in order[0::2]] == list(range(12))
    assert all(x == f"handler printed {i}".encode() for i, x in enumerate(order[1::2]))
    report = verify_ledger(load_ledger(path), [signer.verifier])
    assert not report.tampered and report.events == 12 and report.logs[0].verified_size == 12


class CountingStore(JsonlStore):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.calls = 0

    def write(self, batches, checkpoints) -> None:  # type: ignore[no-untyped-def, override]
        self.calls += 1
        super().write(batches, checkpoints)


def test_a_flush_for_several_instances_is_one_store_write(tmp_path: Path) -> None:
    store = CountingStore(str(tmp_path / "l.jsonl"))
    w = LedgerWriter(store, signer=Signer.generate(), checkpoint_every=1000, clock=Clock())
    for i in range(6):
        w.emit(ev(i, instance=f"i-{i % 3}"))
    w.flush()
    assert store.calls == 1  # one write (one SQLite transaction) for the three sub-logs' batches
    assert len([r for r in records(tmp_path / "l.jsonl") if "_sas_log" in r]) == 6


def test_a_checkpoint_covers_exactly_what_the_store_holds(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    w = LedgerWriter(JsonlStore(str(path)), signer=Signer.generate(), checkpoint_every=1000, clock=Clock())
    for i in range(3):
        w.emit(ev(i))
    w.flush()  # stored, not signed
    w.emit(ev(3))
    w.emit(ev(4))  # buffered only
    w.close()  # writes 3 and 4, then the checkpoint over all five
    kinds = ["entry" if "_sas_log" in r else "checkpoint" if "_sas_checkpoint" in r else "meta" for r in records(path)]
    assert kinds == ["meta", "entry", "entry", "entry", "entry", "entry", "checkpoint"]
    assert [r["_sas_seq"] for r in records(path) if "_sas_log" in r] == [0, 1, 2, 3, 4]
    assert checkpoints(path) == [("sas-ledger/fn/i-1", 5)]


class ReplacedStdout(io.TextIOWrapper):
    """A stream a runtime put in place of the interpreter's stdout: written through its text layer, buffered."""


def test_after_flush_every_event_and_checkpoint_is_out_of_the_process(tmp_path: Path) -> None:
    path = tmp_path / "stdout.txt"
    with path.open("wb") as raw:
        stream = ReplacedStdout(raw, encoding="utf-8")
        w = LedgerWriter(StdoutStore(stream), signer=Signer.generate(), checkpoint_every=3)
        for i in range(7):
            w.emit(ev(i))  # the 3rd and 6th make a checkpoint, written during emit
            w.flush()
            on_disk = path.read_bytes()
            assert on_disk.count(b'{"_sas_log"') == i + 1 and on_disk.count(b'{"_sas_checkpoint"') == (i + 1) // 3
        stream.detach()


def test_invocation_summary_fast_path_writes_the_same_line_as_emit(tmp_path: Path) -> None:
    """Shield summaries go through emit_invocation (no RuntimeEvent built); the ledger must read the same."""
    from sas.events.sink import MemorySink

    fields: dict[str, object] = dict(
        time=1_790_000_000.5,
        verdict=Verdict.ALERT,
        request_id="r-9",
        client_id="ip:203.0.113.9",
        instance_id="i-1",
        function="f",
        platform="aws",
        details={"duration_ms": 1.25, "size": 64, "detections": ["extraction"]},
    )
    event = RuntimeEvent(event="invocation", detector="shield", category="", threat="", severity="info", **fields)  # type: ignore[arg-type]
    fast, slow = tmp_path / "fast.jsonl", tmp_path / "slow.jsonl"
    for path in (fast, slow):
        writer = LedgerWriter(JsonlStore(str(path)), checkpoint_every=10)
        if path is fast:
            writer.emit_invocation(**fields)  # type: ignore[arg-type]
        else:
            writer.emit(event)
        writer.flush()
    assert fast.read_bytes() == slow.read_bytes() and len(records(fast)) == 1
    memory = MemorySink()
    memory.emit_invocation(**fields)  # type: ignore[arg-type]
    assert memory.events == [event]


def test_invocation_summaries_of_alternating_functions_write_the_same_lines_as_emit(tmp_path: Path) -> None:
    """The summary's constant fields are encoded once per function (an Azure app serves several functions from one
    process): alternating functions, platforms and detail shapes must still give emit's lines, byte for byte."""
    summaries = []
    for i, (function, platform) in enumerate([("f", "aws"), ("g", "aws"), ("f", "aws"), ("f", "azure"), ("g", "aws")]):
        details: dict[str, object] = {"duration_ms": 0.5 + i, "size": 10 * i}
        if i == 2:
            details["status"] = 403
        summaries.append(
            dict(
                time=1_790_000_000.5 + i,
                verdict=Verdict.ALLOW,
                request_id=f"r-{i}",
                client_id='ip:203.0.113.9 "quoted"',
                instance_id="i-1",
                function=function,
                platform=platform,
                details=details,
            )
        )
    fast, slow = tmp_path / "fast.jsonl", tmp_path / "slow.jsonl"
    for path in (fast, slow):
        writer = LedgerWriter(JsonlStore(str(path)), checkpoint_every=100)
        for fields in summaries:
            if path is fast:
                writer.emit_invocation(**fields)  # type: ignore[arg-type]
            else:
                extra = dict(event="invocation", detector="shield", category="", threat="", severity="info")
                writer.emit(RuntimeEvent(**extra, **fields))  # type: ignore[arg-type]
            writer.flush()
    assert fast.read_bytes() == slow.read_bytes()
    assert [r["function"] for r in records(fast)] == ["f", "g", "f", "f", "g"]
