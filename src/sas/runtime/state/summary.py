"""The fixed-size per-client summary and the update rule the local backends share (Redis runs it in Lua)."""

from __future__ import annotations

import base64
import json
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
        recent = set(self.buckets)
        dups = sum(1 for b in obs.buckets if b in recent)
        self.buckets = (self.buckets + list(obs.buckets))[-RECENT_BUCKETS:]
        before = list(self.sketches)
        self.sketches = (self.sketches + list(obs.sketches))[-RECENT_SKETCHES:]
        allowed = True
        if obs.client_bucket is not None:
            allowed, self.tokens, self.stamp = take(self.tokens, self.stamp, obs.client_bucket, obs.cost, now)
        self.seen = now
        return dups, before, allowed

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
