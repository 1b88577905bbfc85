"""The records a ledger writer hands its store besides plain entry lines: a batch of entries and a checkpoint.

Apart from :mod:`sas.events.stores` so that a cold start does not build them: the writer's every flush hands
the store its new lines as they are (``LedgerStore.write_entries``), and these two are needed first by a
checkpoint (or by a flush that writes several instances' sub-logs at once). Each frozen dataclass costs about
half a millisecond to create, which a cold start would pay before its first request for nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sas.events.canonical import CHECKPOINT_KEY, dumps


@dataclass(frozen=True, slots=True)
class Batch:
    """Consecutive entries of one sub-log: their canonical bytes joined by newlines (JSON never holds one)."""

    origin: str
    first_seq: int
    count: int
    data: bytes


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """A signed checkpoint of one sub-log, with the frontier (the roots of its perfect subtrees) at that size."""

    origin: str
    size: int
    note: str
    frontier: tuple[bytes, ...]

    def to_line(self) -> bytes:
        import base64  # here, like the rest of the checkpoint machinery: not on the cold start

        frontier = [base64.b64encode(h).decode() for h in self.frontier]
        return dumps({CHECKPOINT_KEY: self.origin, "frontier": frontier, "note": self.note})
