"""The Redis backend's own hot path (pre-packed EVALSHA on a held connection): scripts lost by the server,
threads sharing one backend, unusual bucket ids. Runs on a private redis-server (SCRIPT FLUSH there)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from private_redis import private_redis_server
from sas.runtime.state.base import RECENT_BUCKETS, Observation, RowView, StateError, TokenBucket
from sas.runtime.state.fallback import FallbackState
from sas.runtime.state.memory import MemoryState
from sas.runtime.state.redis_state import IDLE_CHECK, RedisState
from sas.runtime.state.sqlite_state import SqliteState


@pytest.fixture(scope="module")
def private_url() -> Iterator[str]:
    with private_redis_server() as (port, _):
        yield f"redis://127.0.0.1:{port}/0"


def test_a_server_that_lost_the_script_is_sent_it_again(private_url: str) -> None:
    state = RedisState(private_url, prefix="flush")
    state.update(Observation("a", {"n": 1.0}), 1000.0)
    state._redis.script_flush()
    view = state.update(Observation("a", {"n": 1.0}), 1001.0)
    assert view.counters == {"n": 2.0}
    state.reset()
    state.close()


def test_threads_sharing_one_backend_lose_no_update(private_url: str) -> None:
    state = RedisState(private_url, prefix="threads")

    def hammer() -> None:
        for i in range(50):
            state.update(Observation("shared", {"n": 1.0}, {"n": 1.0}, buckets=[f"k{i % 5}"]), 1000.0 + i)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert state.client_counters("shared") == {"n": 200.0}
    state.reset()
    state.close()


def test_bucket_ids_with_newlines_still_match_their_repeats(private_url: str) -> None:
    state = RedisState(private_url, prefix="ids")
    odd = "a\nb"
    first = state.update(Observation("c", {"n": 1.0}, buckets=[odd, "a"], count_dups=True), 1000.0)
    again = state.update(Observation("c", {"n": 1.0}, buckets=[odd, "b"], count_dups=True), 1001.0)
    assert first.client_dups == 0 and again.client_dups == 1
    state.reset()
    state.close()


def test_an_unreachable_server_is_a_state_error() -> None:
    state = RedisState("redis://127.0.0.1:1/0", prefix="down")
    for _ in range(2):  # the held connection is dropped after a failure and retried on the next request
        with pytest.raises(StateError):
            state.update(Observation("c", {"n": 1.0}), 1000.0)
    state.close()


def test_a_connection_the_server_closed_while_idle_is_reopened(private_url: str) -> None:
    import redis

    state = RedisState(private_url, prefix="idle")
    state.update(Observation("a", {"n": 1.0}), 1000.0)
    redis.Redis.from_url(private_url).client_kill_filter(_type="normal", skipme=True)  # e.g. the server's timeout
    time.sleep(IDLE_CHECK + 0.1)
    assert state.update(Observation("a", {"n": 1.0}), 1001.0).counters == {"n": 2.0}
    state.reset()
    state.close()


def test_the_bucket_ring_keeps_the_newest_ids_once_full(private_url: str, tmp_path: Path) -> None:
    backends = [MemoryState(), SqliteState(str(tmp_path / "s.db")), RedisState(private_url, prefix="ring")]
    extra = 40
    for i in range(RECENT_BUCKETS + extra):
        for b in backends:
            b.update(Observation("c", {"n": 1.0}, buckets=[f"id{i}"], count_dups=True), 1000.0 + i)
    t = 2000.0
    for probe, expected in ((f"id{RECENT_BUCKETS + extra - 5}", 1), ("id3", 0), (f"id{extra + 3}", 1)):
        views = [b.update(Observation("c", {"n": 1.0}, buckets=[probe], count_dups=True), t) for b in backends]
        assert [v.client_dups for v in views] == [expected] * 3, probe
        t += 1.0
    for b in backends:
        b.reset()
        b.close()


def _rows(seed: int, steps: int) -> list[tuple[str, dict[str, float], dict[str, float], str, bytes, float]]:
    rng = np.random.default_rng(seed)
    base = rng.integers(-120, 120, 8)
    out = []
    for t in range(steps):
        client = f"c{int(rng.integers(0, 3))}"
        counters = {"n": 1.0, "ood": float(rng.random() < 0.2), f"y{int(rng.integers(0, 10))}": 1.0}
        totals = {"n@0": 1.0 + t * 0.5, "ood@0": counters["ood"] * 0.25}
        sketch = (base + rng.integers(-4, 5, 8) if rng.random() < 0.5 else rng.integers(-127, 128, 8)).astype(np.int8)
        bucket = f"{int(rng.integers(0, 60)):016x}" if rng.random() < 0.95 else "odd\nid"
        out.append((client, counters, totals, bucket, sketch.tobytes(), 1000.0 + t * 0.3))
    return out


def test_redis_update_row_answers_as_the_generic_update(private_url: str) -> None:
    row_state, generic = RedisState(private_url, prefix="row-a"), RedisState(private_url, prefix="row-b")
    cb, gb = TokenBucket(2.0, 15.0), TokenBucket(8.0, 40.0)
    for t, (client, counters, totals, bucket, sketch, now) in enumerate(_rows(7, 300)):
        within = 60.0 if t % 5 else -1.0
        row = row_state.update_row(client, counters, totals, bucket, sketch, 1.0, cb, gb, within, now)
        obs = Observation(client, counters, totals, [bucket], [sketch], 1.0, cb, gb, within, True)
        view = generic.update(obs, now)
        assert row == RowView(
            view.counters, view.global_counters, view.client_dups, view.client_allowed, view.global_allowed, False
        ), t
    for state in (row_state, generic):
        state.reset()
        state.close()


def test_fallback_update_row_mirrors_and_degrades_as_the_generic_update(private_url: str) -> None:
    # the one-row path keeps the local store exactly as the generic path's mirror does, and answers from it alike
    # once the shared store is gone
    row_state = FallbackState(RedisState(private_url, prefix="fb-a"))
    generic = FallbackState(RedisState(private_url, prefix="fb-b"))
    cb, gb = TokenBucket(2.0, 15.0), TokenBucket(8.0, 40.0)
    stream = _rows(8, 240)
    for t, (client, counters, totals, bucket, sketch, now) in enumerate(stream):
        if t == 160:  # the shared store goes away: both continue on their (mirrored) local state
            for state in (row_state, generic):
                state.primary.reset()
                state.primary = RedisState("redis://127.0.0.1:1/0", prefix="gone")
        row = row_state.update_row(client, counters, totals, bucket, sketch, 1.0, cb, gb, 60.0, now)
        view = generic.update(Observation(client, counters, totals, [bucket], [sketch], 1.0, cb, gb, 60.0, True), now)
        assert row == RowView(
            view.counters,
            view.global_counters,
            view.client_dups,
            view.client_allowed,
            view.global_allowed,
            view.degraded,
        ), t
        assert row.degraded == (t >= 160)
    a, b = row_state.local, generic.local
    assert isinstance(a, MemoryState) and isinstance(b, MemoryState)
    for client in ("c0", "c1", "c2"):
        x, y = a._clients[client], b._clients[client]
        assert (x.counters, x.buckets, x.sketches, x.tokens) == (y.counters, y.buckets, y.sketches, y.tokens)
