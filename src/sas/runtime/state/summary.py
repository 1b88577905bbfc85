"""The fixed-size per-client summary and the update rule the local backends share (Redis runs it in Lua)."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from sas.runtime.state.base import MAX_COUNTERS, RECENT_BUCKETS, RECENT_SKETCHES, Observation, TokenBucket


@dataclass
class ClientSummary:
    counters: dict[str, float] = field(default_factory=dict)
    buckets: list[str] = field(default_factory=list)  # oldest first, at most RECENT_BUCKETS
    sketches: list[bytes] = field(default_factory=list)  # oldest first, at most RECENT_SKETCHES
    tokens: float | None = None
    stamp: float = 0.0
    seen: float = 0.0

    def apply(self, obs: Observation, now: float) -> tuple[int, list[bytes], bool]:
        """Add ``obs``; returns (near-duplicate hits, sketches before this request, token bucket allowed)."""
        for name, amount in obs.counters.items():
            if name in self.counters or len(self.counters) < MAX_COUNTERS:
                self.counters[name] = self.counters.get(name, 0.0) + float(amount)
        # a request usually carries one bucket: scanning the 256-id ring beats building a set of it
        recent = self.buckets if len(obs.buckets) <= 4 else set(self.buckets)
        dups = sum(1 for b in obs.buckets if b in recent)
        self.buckets.extend(obs.buckets)
        del self.buckets[:-RECENT_BUCKETS]
        before = list(self.sketches)
        if obs.close_within >= 0 and obs.sketches:
            self._add(MAX_COUNTERS, "close", float(count_close(before, obs.sketches, obs.close_within)))
            self._add(MAX_COUNTERS, "nc", float(len(obs.sketches)))
        if obs.count_dups and obs.buckets:
            self._add(MAX_COUNTERS, "dup", float(dups))
            self._add(MAX_COUNTERS, "nd", float(len(obs.buckets)))
        self.sketches = (self.sketches + list(obs.sketches))[-RECENT_SKETCHES:]
        allowed = True
        if obs.client_bucket is not None:
            allowed, self.tokens, self.stamp = take(self.tokens, self.stamp, obs.client_bucket, obs.cost, now)
        self.seen = now
        return dups, before, allowed

    def _add(self, limit: int, name: str, amount: float) -> None:
        if name in self.counters or len(self.counters) < limit:
            self.counters[name] = self.counters.get(name, 0.0) + amount

    def to_json(self) -> str:
        return json.dumps(
            {
                "c": self.counters,
                "b": self.buckets,
                "s": [base64.b64encode(s).decode() for s in self.sketches],
                "t": self.tokens,
                "ts": self.stamp,
                "seen": self.seen,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> ClientSummary:
        d = json.loads(text)
        return cls(
            {str(k): float(v) for k, v in d["c"].items()},
            [str(b) for b in d["b"]],
            [base64.b64decode(s) for s in d["s"]],
            None if d["t"] is None else float(d["t"]),
            float(d["ts"]),
            float(d["seen"]),
        )


def take(tokens: float | None, stamp: float, bucket: TokenBucket, cost: float, now: float) -> tuple[bool, float, float]:
    """Refill then take; returns (allowed, tokens left, new stamp). A new bucket starts full."""
    current = bucket.burst if tokens is None else min(bucket.burst, tokens + max(0.0, now - stamp) * bucket.rate)
    if current >= cost:
        return True, current - cost, now
    return False, current, now


def count_close(ring: list[bytes], new: Sequence[bytes], within: float) -> int:
    """How many ``new`` sketches (int8 vectors) lie within squared distance ``within`` of the ring or of an
    earlier new one; the Redis script computes the same in Lua. numpy does the arithmetic (the detectors that
    send sketches already import it; the state package itself stays importable without it)."""
    import numpy as np

    width = len(new[0])
    if any(len(x) != width for x in new):
        return 0
    joined = b"".join(ring)
    if len(joined) != width * len(ring):
        joined = b"".join(r for r in ring if len(r) == width)
    ref = np.frombuffer(joined, dtype=np.int8).reshape(-1, width).astype(np.int32)
    if len(new) == 1:  # the common request: one row
        if not ref.shape[0]:
            return 0
        diff = ref - np.frombuffer(new[0], dtype=np.int8)
        return int(np.einsum("ij,ij->i", diff, diff).min() <= within)
    cur = np.frombuffer(b"".join(new), dtype=np.int8).reshape(-1, width).astype(np.int32)
    hits = 0
    for i in range(cur.shape[0]):
        pool = np.concatenate([ref, cur[:i]]) if i else ref
        if pool.shape[0]:
            diff = pool - cur[i]
            if int(np.einsum("ij,ij->i", diff, diff).min()) <= within:
                hits += 1
    return hits
