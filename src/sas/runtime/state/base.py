"""The state interface behind the ML detectors: per-client and global summaries, one atomic update a request.

A FaaS platform spreads one client's queries over many short-lived instances, and an attacker can burst
concurrency to get fresh, empty ones. So detector state lives in a backend that instances share (Redis), and
every per-client record is a fixed-size summary: a bounded set of counters, a ring of recent bucket ids and
a ring of recent sketches. Whatever the traffic, a client costs at most a few kilobytes, and summaries from
different instances merge by addition.

Each request makes exactly one :meth:`StateBackend.update` call, so that a networked backend costs one
round trip per request.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

# Bounds that make a client's summary fixed-size.
RECENT_BUCKETS = 256  # ring of recent near-duplicate bucket ids per client
RECENT_SKETCHES = 32  # ring of recent compact query sketches per client
MAX_COUNTERS = 128  # distinct counter names per client (detectors use far fewer)


@dataclass(frozen=True, slots=True)
class TokenBucket:
    """``rate`` tokens per second refill up to ``burst``; a request takes ``cost`` tokens."""

    rate: float
    burst: float


@dataclass(frozen=True, slots=True)
class Observation:
    """What one request adds to the shared state."""

    client: str
    counters: Mapping[str, float] = field(default_factory=dict)  # per-client increments
    global_counters: Mapping[str, float] = field(default_factory=dict)  # increments across all clients
    buckets: Sequence[str] = ()  # near-duplicate (LSH) bucket ids of this request's rows
    sketches: Sequence[bytes] = ()  # compact sketches appended to the client's ring
    cost: float = 1.0  # tokens this request takes
    client_bucket: TokenBucket | None = None
    global_bucket: TokenBucket | None = None
    # Counted inside the atomic update, so that they are exact however many instances a client hits:
    # close_within >= 0 adds to counters "close" the sketches whose squared distance (int8 units) to the
    # client's ring (and to earlier sketches of this request) is at most close_within, and to "nc" their
    # number; count_dups adds client_dups to "dup" and the number of buckets to "nd".
    close_within: float = -1.0
    count_dups: bool = False


@dataclass(frozen=True, slots=True)
class StateView:
    """The state as this request's update left it (sketches: the ring *before* this request)."""

    counters: Mapping[str, float]
    global_counters: Mapping[str, float]
    client_dups: int  # how many of the request's buckets were already in the client's ring
    global_bucket_counts: Sequence[int]  # per bucket: hits across all clients in the current window, this one included
    sketches: Sequence[bytes]
    client_allowed: bool = True  # token buckets: False when the request exceeded the rate
    global_allowed: bool = True
    degraded: bool = False  # True when the shared store failed and local state answered


class RowView(NamedTuple):
    """What :meth:`StateBackend.update_row` returns: the parts of a :class:`StateView` the detectors read.

    A named tuple, not a frozen dataclass: it is built once per request on the hot path, where a frozen
    dataclass costs ~1 us to construct and a tuple a quarter of that.
    """

    counters: Mapping[str, float]
    global_counters: Mapping[str, float]
    client_dups: int
    client_allowed: bool
    global_allowed: bool
    degraded: bool


class StateError(Exception):
    """The backend could not complete an update (network, lock, corruption)."""


class StateBackend(ABC):
    """Shared detector state. Implementations must make :meth:`update` atomic per request."""

    name: str = "state"

    def __init__(self, *, client_ttl: float = 86_400.0, window: float = 3_600.0) -> None:
        self.client_ttl = client_ttl  # idle clients are forgotten after this many seconds
        self.window = window  # global near-duplicate bucket counts are per window of this many seconds

    @abstractmethod
    def update(self, obs: Observation, now: float) -> StateView: ...

    def update_row(
        self,
        client: str,
        counters: Mapping[str, float],
        global_counters: Mapping[str, float],
        bucket: str,
        sketch: bytes,
        cost: float,
        client_bucket: TokenBucket | None,
        global_bucket: TokenBucket | None,
        close_within: float,
        now: float,
    ) -> RowView:
        """:meth:`update` for a one-row request (one bucket id, one sketch, duplicates counted), plain arguments.

        Counter increments and ``cost`` are floats (the generic update converts; this one need not).

        The same update as ``update(Observation(client, counters, global_counters, (bucket,), (sketch,), cost,
        client_bucket, global_bucket, close_within, True), now)``; the in-process backend overrides it to skip
        building the records (its whole update costs a few microseconds, so they would be a third of it).
        """
        obs = Observation(
            client,
            counters,
            global_counters,
            (bucket,),
            (sketch,),
            cost,
            client_bucket,
            global_bucket,
            close_within,
            True,
        )
        view = self.update(obs, now)
        return RowView(
            view.counters,
            view.global_counters,
            view.client_dups,
            view.client_allowed,
            view.global_allowed,
            view.degraded,
        )

    @abstractmethod
    def client_counters(self, client: str) -> Mapping[str, float]: ...

    def reset(self) -> None:  # noqa: B027 - optional; tests and "cold-start reset" scenarios use it
        """Forget everything (a real deployment never calls this)."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release connections."""
