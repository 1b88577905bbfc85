"""State backends: the same semantics in memory, SQLite and a real Redis server; bounded; degrade on loss."""

from __future__ import annotations

import multiprocessing as mp
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sas.runtime.state import Observation, StateBackend, StateError, TokenBucket, open_state
from sas.runtime.state.base import RECENT_BUCKETS, RECENT_SKETCHES
from sas.runtime.state.fallback import FallbackState
from sas.runtime.state.memory import MemoryState
from sas.runtime.state.redis_state import RedisState
from sas.runtime.state.sqlite_state import SqliteState

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=0.5).ping())
    except Exception:
        return False


@pytest.fixture(params=["memory", "sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateBackend]:
    if request.param == "memory":
        state: StateBackend = MemoryState(window=60)
    elif request.param == "sqlite":
        state = SqliteState(str(tmp_path / "state.db"), window=60)
    else:
        if not _redis_up():
            pytest.fail("the local Redis server at 127.0.0.1:6379 is not running (see the env skill to start it)")
        state = RedisState(REDIS_URL, prefix=f"sas-test-{uuid.uuid4().hex}", window=60)
    yield state
    state.reset()
    state.close()


def test_counters_accumulate_per_client_and_globally(backend: StateBackend) -> None:
    backend.update(Observation("a", {"n": 1, "ood": 1}, {"n": 1}), 1000.0)
    backend.update(Observation("b", {"n": 1}, {"n": 1}), 1000.5)
    view = backend.update(Observation("a", {"n": 1}, {"n": 1}), 1001.0)
    assert view.counters == {"n": 2.0, "ood": 1.0}
    assert view.global_counters["n"] == 3.0
    assert backend.client_counters("b") == {"n": 1.0}
    assert backend.client_counters("nobody") == {}


def test_near_duplicates_per_client_and_across_clients(backend: StateBackend) -> None:
    first = backend.update(Observation("a", buckets=["x", "y"]), 10.0)
    assert first.client_dups == 0 and list(first.global_bucket_counts) == [1, 1]
    again = backend.update(Observation("a", buckets=["x", "z"]), 11.0)
    assert again.client_dups == 1
    other = backend.update(Observation("sybil", buckets=["x"]), 12.0)
    assert other.client_dups == 0 and list(other.global_bucket_counts) == [3]


def test_global_bucket_counts_reset_each_window(backend: StateBackend) -> None:
    backend.update(Observation("a", buckets=["x"]), 10.0)
    later = backend.update(Observation("a", buckets=["x"]), 10.0 + 61.0)
    assert list(later.global_bucket_counts) == [1]


def test_sketch_ring_returns_previous_sketches_oldest_first(backend: StateBackend) -> None:
    backend.update(Observation("a", sketches=[b"\x01\x02"]), 1.0)
    backend.update(Observation("a", sketches=[b"\x03"]), 2.0)
    view = backend.update(Observation("a", sketches=[b"\x04"]), 3.0)
    assert list(view.sketches) == [b"\x01\x02", b"\x03"]


def test_client_summary_is_fixed_size_whatever_the_traffic(backend: StateBackend) -> None:
    for i in range(RECENT_BUCKETS + 50):
        backend.update(Observation("a", buckets=[f"b{i}"], sketches=[bytes([i % 256])]), float(i))
    view = backend.update(Observation("a", buckets=["b0"]), 10_000.0 + 1)
    assert view.client_dups == 0  # b0 fell out of the ring
    assert len(view.sketches) == RECENT_SKETCHES


def test_token_bucket_limits_then_refills(backend: StateBackend) -> None:
    bucket = TokenBucket(rate=1.0, burst=3.0)
    allowed = [backend.update(Observation("a", client_bucket=bucket), 100.0).client_allowed for _ in range(5)]
    assert allowed == [True, True, True, False, False]
    assert backend.update(Observation("a", client_bucket=bucket), 102.0).client_allowed
    # another client has its own bucket; the global bucket is shared
    g = TokenBucket(rate=0.0, burst=2.0)
    results = [backend.update(Observation(c, global_bucket=g), 200.0).global_allowed for c in "xyz"]
    assert results == [True, True, False]


def test_idle_clients_are_forgotten_after_ttl(tmp_path: Path) -> None:
    state = MemoryState(client_ttl=10.0)
    state.update(Observation("a", {"n": 5}), 0.0)
    assert state.update(Observation("a", {"n": 1}), 100.0).counters == {"n": 1.0}


def _hammer(spec: str, prefix: str, n: int) -> None:
    state = RedisState(spec, prefix=prefix) if spec.startswith("redis") else SqliteState(spec[7:])
    for i in range(n):
        state.update(Observation("shared", {"n": 1}, {"n": 1}, buckets=[f"k{i % 7}"]), 1000.0 + i)
    state.close()


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_updates_from_many_processes_are_atomic(kind: str, tmp_path: Path) -> None:
    prefix = f"sas-test-{uuid.uuid4().hex}"
    spec = REDIS_URL if kind == "redis" else f"sqlite:{tmp_path / 's.db'}"
    if kind == "sqlite":
        SqliteState(spec[7:]).close()  # create the schema once
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(spec, prefix, 100)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    state = RedisState(spec, prefix=prefix) if kind == "redis" else SqliteState(spec[7:])
    assert state.client_counters("shared") == {"n": 400.0}
    state.reset()
    state.close()


def test_losing_redis_degrades_to_local_state_without_failing() -> None:
    notices: list[str] = []
    # nothing listens on port 1: every call fails fast, like a store that went away
    state = open_state("redis://127.0.0.1:1/0", on_degrade=notices.append)
    assert isinstance(state, FallbackState)
    views = [state.update(Observation("a", {"n": 1}), float(i)) for i in range(3)]
    assert all(v.degraded for v in views)
    assert views[-1].counters == {"n": 3.0}
    assert len(notices) == 1  # one notice per outage, not per request


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(StateError, match="unknown state backend"):
        open_state("mongodb://x")


@pytest.mark.parametrize(
    "damage", ['{"c": 5}', "not json", '{"c": {}, "b": [], "s": ["é"], "t": null, "ts": 0, "seen": 0}']
)
def test_a_damaged_sqlite_state_row_is_a_state_error_not_a_crash(tmp_path: Path, damage: str) -> None:
    """Found by fuzzing: a row that does not parse raised KeyError/ValueError through the detectors into the
    request; a StateError makes the detectors degrade as for an unreachable store."""
    import sqlite3

    from sas.runtime.state.base import StateError

    path = tmp_path / "state.db"
    state = SqliteState(str(path), window=60)
    state.update(Observation("a", {"n": 1}, {"n": 1}), 1000.0)
    db = sqlite3.connect(path)
    db.execute("UPDATE clients SET summary = ?", (damage,))
    db.commit()
    db.close()
    with pytest.raises(StateError, match="not understood"):
        state.update(Observation("a", {"n": 1}, {"n": 1}), 1001.0)
    with pytest.raises(StateError, match="not understood"):
        state.client_counters("a")
    assert state.update(Observation("b", {"n": 1}, {"n": 1}), 1002.0).counters == {"n": 1.0}  # other rows still work
    state.close()
