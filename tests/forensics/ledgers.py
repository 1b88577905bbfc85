"""Build ledgers through the real writer, and tamper with them the way an intruder with file access would."""

from __future__ import annotations

import random
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from sas.events import RuntimeEvent, Verdict
from sas.events.anchor import AnchorStore, SqliteAnchor
from sas.events.checkpoint import Signer
from sas.events.ledger import LedgerWriter
from sas.events.stores import JsonlStore, SqliteStore

ATTACKER_IP = "203.0.113.66"
THREATS = [
    ("model", "model-extraction", "extraction"),
    ("model", "adversarial-input", "ood"),
    ("model", "denial-of-wallet", "rate"),
    ("infrastructure", "runtime-compromise", "egress"),
    ("function", "unsafe-handler-code", "input"),
]


def realistic_events(
    n: int, *, instances: int = 3, seed: int = 7, start: float = 1_790_000_000.0
) -> list[RuntimeEvent]:
    """Invocations from benign clients, and an extraction campaign by one client that ends in blocks."""
    rng = random.Random(seed)
    instance_ids = [f"2026/11/20/[$LATEST]{rng.getrandbits(128):032x}" for _ in range(instances)]
    events: list[RuntimeEvent] = []
    t = start
    for i in range(n):
        t += rng.uniform(0.001, 0.05)
        instance = instance_ids[rng.randrange(instances)]
        attacker = rng.random() < 0.1
        client = ATTACKER_IP if attacker else f"198.51.100.{rng.randrange(1, 40)}"
        request = f"req-{i:07d}"
        if attacker and rng.random() < 0.5:
            category, threat, detector = THREATS[0] if rng.random() < 0.7 else rng.choice(THREATS)
            verdict = Verdict.BLOCK if rng.random() < 0.4 else Verdict.ALERT
            events.append(
                RuntimeEvent(
                    time=t,
                    event="detection",
                    detector=detector,
                    category=category,
                    threat=threat,
                    severity="high" if verdict is Verdict.BLOCK else "medium",
                    verdict=verdict,
                    request_id=request,
                    client_id=client,
                    instance_id=instance,
                    function="digits-classifier",
                    platform="aws",
                    details={"score": round(rng.random(), 4), "queries_last_minute": rng.randrange(50, 900)},
                )
            )
        else:
            events.append(
                RuntimeEvent(
                    time=t,
                    event="invocation",
                    detector="",
                    category="",
                    threat="",
                    severity="info",
                    verdict=Verdict.ALLOW,
                    request_id=request,
                    client_id=client,
                    instance_id=instance,
                    function="digits-classifier",
                    platform="aws",
                    details={"latency_ms": round(rng.uniform(2, 40), 2), "input_bytes": rng.randrange(100, 4000)},
                )
            )
    return events


def write_ledger(
    path: Path,
    events: list[RuntimeEvent],
    signer: Signer,
    *,
    anchor: AnchorStore | None = None,
    every: int = 1000,
    close: bool = True,
) -> LedgerWriter:
    store = SqliteStore(str(path)) if path.suffix == ".db" else JsonlStore(str(path))
    writer = LedgerWriter(store, signer=signer, anchor=anchor, checkpoint_every=every, checkpoint_seconds=3600.0)
    for i, event in enumerate(events):
        writer.emit(event)
        if i % 50 == 49:
            writer.flush()  # the end of an invocation
    if close:
        writer.close()
    return writer


# ---------------------------------------------------------------- tampering on JSON-lines ledgers


def edit_lines(path: Path, change: Callable[[list[bytes]], list[bytes]]) -> None:
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join(change(lines)))


def entry_indexes(lines: list[bytes], origin: str | None = None) -> list[int]:
    marker = b'{"_sas_log":"' + (origin.encode() if origin else b"")
    return [i for i, line in enumerate(lines) if line.startswith(marker)]


def first_origin(path: Path) -> str:
    for line in path.read_bytes().split(b"\n"):
        if line.startswith(b'{"_sas_log":"'):
            return line[13 : line.index(b'"', 13)].decode()
    raise AssertionError("no entries")


# ---------------------------------------------------------------- tampering on SQLite ledgers


def edit_sqlite_entries(path: Path, change: Callable[[list[bytes]], list[bytes]], origin: str) -> None:
    """Rewrite the entries of one sub-log (all batches), keeping the batch layout where sizes allow."""
    db = sqlite3.connect(path)
    rows = db.execute("SELECT id, data FROM batches WHERE origin = ? ORDER BY id", (origin,)).fetchall()
    lines = [line for _, data in rows for line in bytes(data).split(b"\n")]
    new = change(lines)
    db.execute("DELETE FROM batches WHERE origin = ?", (origin,))
    db.execute(
        "INSERT INTO batches (id, origin, first_seq, count, data) VALUES (?, ?, 0, ?, ?)",
        (rows[0][0], origin, len(new), b"\n".join(new)),
    )
    db.commit()
    db.close()


class Built:
    """A pristine ledger of 10 000+ events from real shielded invocations (the scripted attack through
    ``sas.Shield``, written by the ledger behind its sink), in SQLite as the Shield wrote it and replayed
    through the writer into JSON lines; with its key and anchors. Tests copy it before tampering."""

    def __init__(self, root: Path) -> None:
        from scripted_attack import run

        from sas.events.canonical import entry_event
        from sas.events.checkpoint import load_signer
        from sas.forensics.ledger import load_ledger

        made = run(root / "shield", invocations=8400, checkpoint_every=1000)
        self.signer = load_signer(made["key"])
        ledger = load_ledger(made["ledger"])
        records = sorted(ledger.iter_records(), key=lambda r: (r["time"], r["_sas_log"], r["_sas_seq"]))
        self.events = [e for e in (entry_event(r) for r in records) if e is not None]
        self.paths: dict[str, Path] = {"db": made["ledger"]}
        self.anchors: dict[str, Path] = {"db": made["anchor"]}
        path, anchor_path = root / "ledger.jsonl", root / "anchor-jsonl.db"
        anchor = SqliteAnchor(str(anchor_path))
        write_ledger(path, self.events, self.signer, anchor=anchor)
        anchor.close()
        self.paths["jsonl"], self.anchors["jsonl"] = path, anchor_path

    def copy(self, suffix: str, dest: Path) -> tuple[Path, Path]:
        path = dest / self.paths[suffix].name
        anchor = dest / self.anchors[suffix].name
        shutil.copy(self.paths[suffix], path)
        shutil.copy(self.anchors[suffix], anchor)
        return path, anchor
