"""Reading ledgers in chunks and blocks, by forked workers: every layout reads as it does in one piece, and what
is verified is what is shown afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest
from ledgers import Built, edit_lines, realistic_events

from sas.errors import InputError
from sas.events.checkpoint import Signer
from sas.events.ledger import LedgerWriter
from sas.events.merkle import leaf_hashes
from sas.events.stores import JsonlStore, SqliteStore
from sas.forensics import hashing, scan
from sas.forensics import ledger as ledger_module
from sas.forensics.ledger import Ledger, load_ledger
from sas.forensics.verify import verify_ledger


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many chunks (read by forked workers) of many blocks, so that every boundary case happens."""
    monkeypatch.setattr(hashing, "PARALLEL_MIN", 10)
    monkeypatch.setattr(ledger_module, "MIN_CHUNK", 50_000)
    monkeypatch.setattr(scan, "BLOCK", 4096)


def same_content(a: Ledger, b: Ledger) -> None:
    assert list(a.logs) == list(b.logs) and a.metas == b.metas and a.malformed == b.malformed
    assert a.platform_reports == b.platform_reports
    for origin, log in a.logs.items():
        other = b.logs[origin]
        assert other.entries == log.entries
        assert other.leaf_hashes() == log.leaf_hashes() == b"".join(leaf_hashes(log.entries))
        assert [(c.note, c.frontier) for c in other.checkpoints] == [(c.note, c.frontier) for c in log.checkpoints]


def interleaved(path: Path, signer: Signer, n: int = 3000) -> None:
    """Three instances writing one store, each flushing every invocation: sub-logs alternate line by line."""
    store = SqliteStore(str(path)) if path.suffix == ".db" else JsonlStore(str(path))
    writer = LedgerWriter(store, signer=signer, checkpoint_every=200, checkpoint_seconds=3600.0)
    for event in realistic_events(n, instances=3):
        writer.emit(event)
        writer.flush()
    writer.close()


@pytest.mark.parametrize("suffix", [".jsonl", ".db"])
def test_interleaved_sub_logs_are_partitioned_and_verify(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    signer = Signer.generate()
    path = tmp_path / f"interleaved{suffix}"
    interleaved(path, signer)
    whole = load_ledger(path)
    monkeypatch.setattr(hashing, "PARALLEL_MIN", 10)
    monkeypatch.setattr(ledger_module, "MIN_CHUNK", 50_000)
    monkeypatch.setattr(scan, "BLOCK", 64_000)
    parts = load_ledger(path)
    assert any(run.select for log in parts.logs.values() for _, run in log.runs)  # partitioned blocks
    same_content(whole, parts)
    report = verify_ledger(parts, [signer.verifier])
    assert not report.tampered and report.events == 3000 and sum(s.verified_size for s in report.logs) == 3000


def test_an_event_deleted_from_an_interleaved_ledger_is_named(tmp_path: Path, small_chunks: None) -> None:
    signer = Signer.generate()
    path = tmp_path / "interleaved.jsonl"
    interleaved(path, signer)
    origin = next(iter(load_ledger(path).logs))
    victim = f'{{"_sas_log":"{origin}","_sas_seq":345,'.encode()
    edit_lines(path, lambda lines: [x for x in lines if not x.startswith(victim)])
    first = verify_ledger(load_ledger(path), [signer.verifier]).first_problem
    assert first is not None and (first.kind, first.origin, first.first_seq, first.last_seq) == (
        "deleted",
        origin,
        345,
        345,
    )


def test_records_behind_platform_prefixes_read_in_chunks(built: Built, tmp_path: Path, small_chunks: None) -> None:
    """A CloudWatch text export: timestamps in front (not always the same width), the platform's own lines
    between, Windows line ends."""
    lines = built.paths["jsonl"].read_bytes().split(b"\n")
    out = []
    for i, line in enumerate(lines):
        if not line:
            continue
        stamp = b"2026-09-21T14:13:20.000Z " if i % 500 else b"2026-09-21T14:13:20Z\t"
        out.append(stamp + line)
        if i % 97 == 0:
            out.append(b"START RequestId: 8f5c7e2a-3b1d-4c9e-a6f0-1d2e3f4a5b6c Version: $LATEST")
    path = tmp_path / "export.txt"
    path.write_bytes(b"\r\n".join(out) + b"\r\n")
    plain = load_ledger(built.paths["jsonl"])
    prefixed = load_ledger(path)
    assert any(run.skip for log in prefixed.logs.values() for _, run in log.runs)
    same_content(plain, prefixed)
    report = verify_ledger(prefixed, [built.signer.verifier])
    assert not report.tampered and report.events == len(built.events)


def test_lines_longer_than_a_block(built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = load_ledger(built.paths["jsonl"])
    monkeypatch.setattr(scan, "BLOCK", 100)  # every entry is longer
    same_content(whole, load_ledger(built.paths["jsonl"]))


def test_a_file_changed_after_reading_is_an_error_not_a_different_story(built: Built, tmp_path: Path) -> None:
    path, _ = built.copy("jsonl", tmp_path)
    ledger = load_ledger(path)
    assert not verify_ledger(ledger, [built.signer.verifier]).tampered
    data = path.read_bytes()
    at = data.index(b'"verdict":"block"')
    path.write_bytes(data[:at] + b'"verdict":"allow"' + data[at + len(b'"verdict":"block"') :])  # same length
    with pytest.raises(InputError, match="changed while it was being read"):
        next(ledger.iter_records())
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="shortened"):
        next(ledger.iter_records())


def test_a_ledger_in_memory_reads_like_the_file(built: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    data = built.paths["jsonl"].read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    monkeypatch.setattr(hashing, "PARALLEL_MIN", 10)
    monkeypatch.setattr(ledger_module, "MIN_CHUNK", 50_000)
    monkeypatch.setattr(scan, "BLOCK", 4096)
    same_content(load_ledger(built.paths["jsonl"]), load_ledger("-"))


def test_a_folder_of_gzipped_exports_is_decompressed_by_the_workers(
    built: Built, tmp_path: Path, small_chunks: None
) -> None:
    import gzip

    lines = [line for line in built.paths["jsonl"].read_bytes().split(b"\n") if line]
    folder = tmp_path / "export" / "stream"
    folder.mkdir(parents=True)
    for part, start in enumerate(range(0, len(lines), 700)):
        text = b"\n".join(b"2026-09-21T14:13:20.000Z " + line for line in lines[start : start + 700])
        (folder / f"{part:06d}.gz").write_bytes(gzip.compress(text + b"\n"))
    exported = load_ledger(tmp_path / "export")
    same_content(load_ledger(built.paths["jsonl"]), exported)
    report = verify_ledger(exported, [built.signer.verifier])
    assert not report.tampered and report.events == len(built.events)


def test_a_worker_that_dies_costs_time_not_the_result() -> None:
    import os

    if hashing.workers() == 0:
        pytest.skip("one core: no workers to lose")
    parent = os.getpid()

    def task(i: int) -> int:
        if os.getpid() != parent:
            os._exit(3)  # killed at its first task, as by the OOM killer
        return i * i

    assert hashing.parallel_map(task, 20) == [i * i for i in range(20)]


def test_an_error_in_a_worker_is_raised_as_it_is() -> None:
    def task(i: int) -> int:
        if i == 19:  # the first task a worker takes
            raise InputError("chunk 19 is unreadable")
        return i

    with pytest.raises(InputError, match="chunk 19 is unreadable"):
        hashing.parallel_map(task, 20)
