"""The fixed-size per-client summary and the update rule the local backends share (Redis runs it in Lua)."""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sas.runtime.state.base import MAX_COUNTERS, RECENT_BUCKETS, RECENT_SKETCHES, Observation, TokenBucket


@dataclass(slots=True)
class ClientSummary:
    counters: dict[str, float] = field(default_factory=dict)
    buckets: list[str] = field(default_factory=list)  # oldest first, at most RECENT_BUCKETS
    sketches: list[bytes] = field(default_factory=list)  # oldest first, at most RECENT_SKETCHES
    tokens: float | None = None
    stamp: float = 0.0
    seen: float = 0.0
    # Caches for a summary that lives across requests (memory backend; ``cached=True``). Not serialised:
    # the SQLite backend rebuilds its summary per request and would only pay for building them.
    cached: bool = field(default=False, repr=False, compare=False)
    _index: dict[str, int] | None = field(default=None, repr=False, compare=False)  # ring id -> occurrences
    _ring: _SketchRing | None = field(default=None, repr=False, compare=False)

    def apply(self, obs: Observation, now: float) -> tuple[int, list[bytes], bool]:
        """Add ``obs``; returns (near-duplicate hits, sketches before this request, token bucket allowed)."""
        counters = self.counters
        if len(counters) + len(obs.counters) + 4 <= MAX_COUNTERS:  # room even if every name is new
            for name, amount in obs.counters.items():
                counters[name] = counters.get(name, 0.0) + float(amount)
        else:
            for name, amount in obs.counters.items():
                if name in counters or len(counters) < MAX_COUNTERS:
                    counters[name] = counters.get(name, 0.0) + float(amount)
        new_buckets = obs.buckets
        dups = self._dups(new_buckets)
        before = list(self.sketches)
        new_sketches = obs.sketches
        if obs.close_within >= 0 and new_sketches:
            ring = self._ring
            if self.cached and len(new_sketches) == 1:
                if ring is None or ring.width != len(new_sketches[0]):
                    ring = self._ring = _SketchRing(len(new_sketches[0]), before)
                close = ring.close_then_push(new_sketches[0], obs.close_within)
                ring = None  # already pushed
            else:
                close = count_close(before, new_sketches, obs.close_within)
            self._add(MAX_COUNTERS, "close", float(close))
            self._add(MAX_COUNTERS, "nc", float(len(new_sketches)))
        else:
            ring = self._ring
        if obs.count_dups and new_buckets:
            self._add(MAX_COUNTERS, "dup", float(dups))
            self._add(MAX_COUNTERS, "nd", float(len(new_buckets)))
        if new_sketches:
            self.sketches.extend(new_sketches)
            del self.sketches[:-RECENT_SKETCHES]
            if ring is not None:
                for sketch in new_sketches:
                    ring.push(sketch)
        allowed = True
        if obs.client_bucket is not None:
            allowed, self.tokens, self.stamp = take(self.tokens, self.stamp, obs.client_bucket, obs.cost, now)
        self.seen = now
        return dups, before, allowed

    def apply_row(
        self,
        counters: Mapping[str, float],
        bucket: str,
        sketch: bytes,
        cost: float,
        client_bucket: TokenBucket | None,
        close_within: float,
        now: float,
    ) -> tuple[int, bool]:
        """:meth:`apply` for one bucket id and one sketch, duplicates counted (the memory backend's hot path).

        Returns (near-duplicate hits, token bucket allowed). The same counters, rings and tokens as
        ``apply(Observation(..., (bucket,), (sketch,), cost, client_bucket, None, close_within, True), now)``
        (tested), without the generic loops over the request's ids and sketches.
        """
        if not self.cached:
            obs = Observation("", counters, {}, (bucket,), (sketch,), cost, client_bucket, None, close_within, True)
            dups, _, allowed = self.apply(obs, now)
            return dups, allowed
        mine = self.counters
        roomy = len(mine) + len(counters) + 4 <= MAX_COUNTERS  # room even if every name is new
        if roomy:
            for name, amount in counters.items():  # floats already (update_row's contract)
                mine[name] = mine.get(name, 0.0) + amount
        else:
            for name, amount in counters.items():
                if name in mine or len(mine) < MAX_COUNTERS:
                    mine[name] = mine.get(name, 0.0) + float(amount)
        # the bucket ring and its index (ring id -> occurrences), as _dups keeps them
        ring = self.buckets
        index = self._index
        if index is None:
            index = self._index = {}
            for b in ring:
                index[b] = index.get(b, 0) + 1
        seen = index.get(bucket, 0)
        index[bucket] = seen + 1
        ring.append(bucket)
        if len(ring) > RECENT_BUCKETS:
            old = ring.pop(0)
            left = index[old] - 1
            if left:
                index[old] = left
            else:
                del index[old]
        dups = 1 if seen else 0
        sketches = self.sketches
        sring = self._ring
        if close_within >= 0:
            if sring is None or sring.width != len(sketch):
                sring = self._ring = _SketchRing(len(sketch), sketches)
            close = sring.close_then_push(sketch, close_within)
            if roomy:
                mine["close"] = mine.get("close", 0.0) + close
                mine["nc"] = mine.get("nc", 0.0) + 1.0
            else:
                self._add(MAX_COUNTERS, "close", float(close))
                self._add(MAX_COUNTERS, "nc", 1.0)
        elif sring is not None:
            sring.push(sketch)
        if roomy:
            mine["dup"] = mine.get("dup", 0.0) + dups
            mine["nd"] = mine.get("nd", 0.0) + 1.0
        else:
            self._add(MAX_COUNTERS, "dup", float(dups))
            self._add(MAX_COUNTERS, "nd", 1.0)
        sketches.append(sketch)
        if len(sketches) > RECENT_SKETCHES:
            del sketches[0]
        allowed = True
        if client_bucket is not None:  # take(), written out
            tokens, burst = self.tokens, client_bucket.burst
            if tokens is None:
                tokens = burst
            else:
                elapsed = now - self.stamp
                tokens += (elapsed if elapsed > 0.0 else 0.0) * client_bucket.rate
                tokens = tokens if tokens < burst else burst  # min(burst, tokens), without the call
            allowed = tokens >= cost
            self.tokens = tokens - cost if allowed else tokens
            self.stamp = now
        self.seen = now
        return dups, allowed

    def mirror(self, obs: Observation, counters: Mapping[str, float], now: float) -> None:
        """Take ``counters`` as they are elsewhere; add ``obs``'s ids and sketches to the rings, take its cost."""
        self.mirror_parts(counters, obs.buckets, obs.sketches, obs.cost, obs.client_bucket, now)

    def mirror_parts(
        self,
        counters: Mapping[str, float],
        buckets: Sequence[str],
        sketches: Sequence[bytes],
        cost: float,
        client_bucket: TokenBucket | None,
        now: float,
    ) -> None:
        """:meth:`mirror` from the observation's parts (the one-row path has no observation record)."""
        self.counters = dict(counters)
        self._dups(buckets)
        if sketches:
            self.sketches.extend(sketches)
            del self.sketches[:-RECENT_SKETCHES]
            self._ring = None  # rebuilt from the list if this store ever answers
        if client_bucket is not None:
            _, self.tokens, self.stamp = take(self.tokens, self.stamp, client_bucket, cost, now)
        self.seen = now

    def _dups(self, new: Sequence[str]) -> int:
        """How many of ``new`` are in the ring as it was before this request; then appends them."""
        ring = self.buckets
        if not new:
            return 0
        if not self.cached:
            # a request usually carries one bucket: scanning the 256-id ring beats building a set of it
            recent = ring if len(new) <= 4 else set(ring)
            dups = sum(1 for b in new if b in recent)
            ring.extend(new)
            del ring[:-RECENT_BUCKETS]
            return dups
        index = self._index
        if index is None:
            index = self._index = {}
            for b in ring:
                index[b] = index.get(b, 0) + 1
        dups = sum(1 for b in new if b in index)
        for b in new:
            index[b] = index.get(b, 0) + 1
        ring.extend(new)
        excess = len(ring) - RECENT_BUCKETS
        if excess > 0:
            for old in ring[:excess]:
                left = index[old] - 1
                if left:
                    index[old] = left
                else:
                    del index[old]
            del ring[:excess]
        return dups

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


# squares of the signed value of each byte (a sketch's squared norm without decoding it)
_SQUARES = tuple((b - 256 if b > 127 else b) ** 2 for b in range(256))
_SIGNED8 = struct.Struct("8b")


class _SketchRing:
    """The sketch ring as one matrix, so a one-sketch request costs one product (memory backend).

    Row ``i`` holds ``[r, −|r|²/2]`` for ring entry ``r``; for a new sketch ``v``, ``[v, 1]`` times it is
    ``(|v|² − d²(v, r)) / 2``, so the smallest squared distance is ``|v|² − 2·max``: integers and halves,
    exact in float64, hence the same count as :func:`count_close`. Empty slots and entries of another width
    hold ``−inf`` (never close), as :func:`count_close` ignores them.
    """

    __slots__ = ("_np", "matrix", "pos", "width")

    def __init__(self, width: int, ring: Sequence[bytes]) -> None:
        import numpy as np

        self._np = np  # held: an import statement per request costs more than the product
        self.width = width
        self.matrix = np.zeros((RECENT_SKETCHES, width + 1))
        self.matrix[:, width] = -np.inf
        self.pos = 0
        for sketch in ring[-RECENT_SKETCHES:]:
            self.push(sketch)

    def push(self, sketch: bytes) -> None:
        if len(sketch) == self.width:
            np = self._np
            row = np.frombuffer(sketch + b"\x01", np.int8).astype(np.float64)
            row[self.width] = -0.5 * sum(map(_SQUARES.__getitem__, sketch))
            self.matrix[self.pos] = row
        else:
            self.matrix[self.pos] = [*([0.0] * self.width), -math.inf]
        self.pos = (self.pos + 1) % RECENT_SKETCHES

    def close_then_push(self, sketch: bytes, within: float) -> int:
        """1 when ``sketch`` is within squared distance ``within`` of a ring entry; then it joins the ring."""
        np = self._np
        width = self.width
        row = np.frombuffer(sketch + b"\x01", np.int8).astype(np.float64)  # [v, 1]
        products = self.matrix.dot(row)
        if width == 8:  # the detectors' sketches: |v|² from the eight values, without numpy
            a, b, c, d, e, f, g, h = _SIGNED8.unpack(sketch)
            norm = a * a + b * b + c * c + d * d + e * e + f * f + g * g + h * h
        else:
            norm = sum(map(_SQUARES.__getitem__, sketch))
        # some d² = |v|² − 2·product ≤ within, i.e. the largest product reaches (|v|² − within)/2 (argmax: a C
        # method, where count_nonzero of the comparison is two numpy calls and a Python wrapper; the products
        # are finite or −inf, never NaN)
        close = 1 if products[products.argmax()] >= 0.5 * (norm - within) else 0
        row[width] = -0.5 * norm
        self.matrix[self.pos] = row
        self.pos = (self.pos + 1) % RECENT_SKETCHES
        return close


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
