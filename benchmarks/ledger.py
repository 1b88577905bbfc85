"""Ledger figures: append cost per event, per-invocation cost, verification speed, bytes per event on disk.

    .venv/bin/python benchmarks/ledger.py                 # 200k appends, 1M-event verification
    .venv/bin/python benchmarks/ledger.py --append 100000 --verify 200000

Append cost is CPU time (time.process_time) per event through the real writer (LedgerWriter.emit), with a
checkpoint every 1 000 events (hashing, Ed25519 signature, store write and an SQLite anchor CAS included),
amortised over the run. Per invocation is what the runtime Shield pays on every request: ``emit(event)`` then
``flush()`` on the default ``stdout`` store (here sent to /dev/null), default checkpoint cadence, checkpoints
included; best of 7 timeit runs, wall and CPU. Verification is load + verify_ledger (every leaf hashed, every
checkpoint root and signature checked), wall and CPU (this process and its hashing workers). Events are
realistic runtime records (~430 bytes of canonical JSON). The events are built before timing starts so that
only the ledger is measured. The machine is shared: compare figures with the load average printed beside them.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import platform
import random
import resource
import shutil
import tempfile
import time
import timeit
from pathlib import Path

from sas.events import RuntimeEvent, Verdict
from sas.events.anchor import SqliteAnchor
from sas.events.checkpoint import Signer
from sas.events.ledger import LedgerWriter
from sas.events.stores import JsonlStore, LedgerStore, SqliteStore, StdoutStore
from sas.forensics.ledger import load_ledger
from sas.forensics.verify import verify_ledger


def make_events(n: int, instances: int = 4, seed: int = 1) -> list[RuntimeEvent]:
    rng = random.Random(seed)
    ids = [f"2026/11/20/[$LATEST]{rng.getrandbits(128):032x}" for _ in range(instances)]
    out = []
    t = 1_790_000_000.0
    for i in range(n):
        t += rng.uniform(0.0005, 0.01)
        detection = rng.random() < 0.05
        out.append(
            RuntimeEvent(
                time=t,
                event="detection" if detection else "invocation",
                detector="extraction" if detection else "shield",
                category="model" if detection else "",
                threat="model-extraction" if detection else "",
                severity="high" if detection else "info",
                verdict=Verdict.ALERT if detection else Verdict.ALLOW,
                request_id=f"{rng.getrandbits(64):016x}",
                client_id=f"ip:198.51.100.{rng.randrange(1, 250)}",
                instance_id=ids[i % instances],
                function="digits-classifier",
                platform="aws",
                details={"duration_ms": round(rng.uniform(1, 40), 3), "size": rng.randrange(60, 4000), "status": 200},
            )
        )
    return out


def cpu_info() -> str:
    model = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        flags = Path("/proc/cpuinfo").read_text()
        sha = "SHA-NI" if " sha_ni" in flags else "no SHA-NI"
    except OSError:
        sha = "?"
    return f"{model}, {os.cpu_count()} cores, {sha}"


def bench_append(kind: str, events: list[RuntimeEvent], workdir: Path, signer: Signer) -> tuple[float, float, int]:
    path = workdir / f"append.{kind}"
    anchor = SqliteAnchor(str(workdir / f"anchor-{kind}.db"))
    store: LedgerStore = SqliteStore(str(path)) if kind == "db" else JsonlStore(str(path))
    writer = LedgerWriter(store, signer=signer, anchor=anchor, checkpoint_every=1000, checkpoint_seconds=3600.0)
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i, event in enumerate(events):
        writer.emit(event)
        if i % 100 == 99:
            writer.flush()  # end of an invocation batch, as the runtime does
    writer.close()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    size = store.size_on_disk()
    assert writer.dropped == 0, writer.errors
    return cpu / len(events) * 1e6, wall / len(events) * 1e6, size


def bench_invocation(signer: Signer) -> tuple[float, float]:
    """Microseconds (wall, CPU) per ``emit(event); flush()`` on the stdout store, best of 7 runs of 20 000."""
    event = make_events(1)[0]
    with open(os.devnull, "w") as null:
        writer = LedgerWriter(StdoutStore(null), signer=signer)  # default cadence: 1 000 events or 10 s

        def one() -> None:
            writer.emit(event)
            writer.flush()

        for _ in range(5000):
            one()
        n = 20_000
        wall = min(timeit.repeat(one, number=n, repeat=7)) / n * 1e6
        cpu = min(timeit.repeat(one, number=n, repeat=7, timer=time.process_time)) / n * 1e6
        writer.close()
    assert writer.dropped == 0, writer.errors
    return wall, cpu


def _cpu() -> float:
    """CPU seconds of this process and its finished children (verification forks hashing workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def bench_verify(path: Path, signer: Signer, anchor: Path) -> tuple[float, float, float, int]:
    gc.collect()
    cpu0, wall0 = _cpu(), time.perf_counter()
    ledger = load_ledger(path)
    load_wall = time.perf_counter() - wall0
    store = SqliteAnchor(str(anchor))
    report = verify_ledger(ledger, [signer.verifier], store)
    store.close()
    cpu, wall = _cpu() - cpu0, time.perf_counter() - wall0
    assert not report.tampered and report.events == ledger.event_count, report.problems
    return wall, cpu, load_wall, report.events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--append", type=int, default=200_000, help="events appended per store (>= 100k)")
    parser.add_argument("--verify", type=int, default=1_000_000, help="events in the verification ledger")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="sas-ledger-bench-"))
    try:
        signer = Signer.generate()
        print(f"machine: {cpu_info()}; python {platform.python_version()}; load average {os.getloadavg()[0]:.1f}")
        # a yardstick for reading the figures on a shared or throttled machine (~12 us on an idle 2.5 GHz Xeon)
        t0 = time.process_time()
        for _ in range(2000):
            sum(range(1000))
        print(f"calibration: sum(range(1000)) = {(time.process_time() - t0) / 2000 * 1e6:.1f} us CPU")
        sample = make_events(2000)
        from sas.events.canonical import encode_entry

        encoded = [encode_entry(e, "sas-ledger/digits-classifier/x", i) for i, e in enumerate(sample)]
        mean = sum(map(len, encoded)) / len(encoded)
        t0 = time.process_time()
        for _ in range(50):
            for line in encoded:
                hashlib.sha256(b"\x00" + line).digest()
        sha = (time.process_time() - t0) / (50 * len(encoded)) * 1e6
        t0 = time.process_time()
        for _ in range(20):
            for i, event in enumerate(sample):
                encode_entry(event, "sas-ledger/digits-classifier/x", i)
        enc = (time.process_time() - t0) / (20 * len(sample)) * 1e6
        print(
            f"entry size: {mean:.0f} bytes of canonical JSON; per event: encode {enc:.2f} us, "
            f"SHA-256 leaf hash {sha:.2f} us (+ ~1 node hash per leaf)"
        )

        wall_us, cpu_us = bench_invocation(signer)
        print(
            f"per invocation: emit+flush {wall_us:.2f} us (stdout; {cpu_us:.2f} us CPU; checkpoint every 1000 "
            f"included; load average {os.getloadavg()[0]:.1f})"
        )
        events = make_events(args.append)
        for kind, label in (("db", "sqlite"), ("jsonl", "jsonl")):
            cpu_us, wall_us, size = bench_append(kind, events, workdir, signer)
            print(
                f"append {label:<6}: {cpu_us:.2f} us CPU/event ({wall_us:.2f} us wall), "
                f"{args.append} events, checkpoint every 1000 (signed + anchored); "
                f"{size / args.append:.0f} bytes/event on disk"
            )
        del events

        big = make_events(args.verify)
        for kind, label in (("db", "sqlite"), ("jsonl", "jsonl")):
            path = workdir / f"verify.{kind}"
            anchor = SqliteAnchor(str(workdir / f"verify-anchor-{kind}.db"))
            store: LedgerStore = SqliteStore(str(path)) if kind == "db" else JsonlStore(str(path))
            writer = LedgerWriter(store, signer=signer, anchor=anchor, checkpoint_every=1000, checkpoint_seconds=3600)
            for event in big:
                writer.emit(event)
            writer.close()
            wall, cpu, load_wall, n = bench_verify(path, signer, workdir / f"verify-anchor-{kind}.db")
            print(
                f"verify {label:<6}: {n} events in {wall:.2f} s wall = {n / wall:,.0f} events/s "
                f"({cpu:.2f} s CPU incl. hashing workers = {n / cpu:,.0f} events per CPU-second; "
                f"reading {load_wall:.2f} s; load average {os.getloadavg()[0]:.1f})"
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
