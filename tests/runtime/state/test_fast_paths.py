"""The memory backend's caches (bucket index, sketch-ring matrix), its one-row update and its mirror of a
shared store agree with the plain rules they speed up."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sas.runtime.state.base import MAX_COUNTERS, RECENT_SKETCHES, Observation, RowView, StateView, TokenBucket
from sas.runtime.state.memory import MemoryState
from sas.runtime.state.sqlite_state import SqliteState
from sas.runtime.state.summary import ClientSummary


def test_cached_rings_count_like_the_plain_summary() -> None:
    rng = np.random.default_rng(3)
    cached, plain = ClientSummary(cached=True), ClientSummary()
    base = rng.integers(-120, 120, 8)
    for t in range(600):
        n = 1 if rng.random() < 0.8 else int(rng.integers(2, 4))
        width = 8 if rng.random() < 0.97 else 5  # a foreign width now and then: ignored by both
        sketches = [
            (base[:width] + rng.integers(-4, 5, width) if rng.random() < 0.5 else rng.integers(-127, 128, width))
            .astype(np.int8)
            .tobytes()
            for _ in range(n)
        ]
        buckets = [f"b{int(rng.integers(0, 300))}" for _ in range(n)]
        within = float(rng.integers(0, 400))
        obs = Observation("c", {"n": float(n)}, {}, buckets, sketches, close_within=within, count_dups=True)
        assert cached.apply(obs, float(t)) == plain.apply(obs, float(t)), t
    assert cached.counters == plain.counters
    assert 0 < cached.counters["close"] < cached.counters["nc"] and cached.counters["dup"] > 0
    assert len(cached.sketches) == RECENT_SKETCHES


def test_a_mirrored_memory_store_continues_from_the_shared_counters() -> None:
    local = MemoryState()
    sketch = bytes(8)
    obs = Observation("c", {"n": 1.0}, {"n@0": 1.0}, ["b1"], [sketch], close_within=0.0, count_dups=True)
    shared = StateView({"n": 40.0, "close": 30.0, "nc": 40.0}, {"n@0": 900.0}, 0, [1], [])
    local.mirror(obs, shared, 10.0)
    assert local.client_counters("c") == {"n": 40.0, "close": 30.0, "nc": 40.0}
    # the shared store is gone: the next request is counted on top, with the mirrored rings
    view = local.update(obs, 11.0)
    assert view.counters["n"] == 41.0 and view.counters["close"] == 31.0 and view.counters["dup"] == 1.0
    assert view.global_counters["n@0"] == 901.0


def _row_stream(seed: int, steps: int) -> list[tuple[str, dict[str, float], dict[str, float], str, bytes, float]]:
    rng = np.random.default_rng(seed)
    base = rng.integers(-120, 120, 8)
    stream = []
    for t in range(steps):
        client = f"c{int(rng.integers(0, 3))}"
        label = f"y{int(rng.integers(0, 40))}" if rng.random() < 0.6 else f"extra{t}"  # fills MAX_COUNTERS
        counters = {"n": 1.0, "ood": float(rng.random() < 0.2), label: 1.0}
        sketch = (base + rng.integers(-4, 5, 8) if rng.random() < 0.5 else rng.integers(-127, 128, 8)).astype(np.int8)
        bucket = f"b{int(rng.integers(0, 300))}"
        stream.append((client, counters, {"n@0": 1.0}, bucket, sketch.tobytes(), float(rng.integers(0, 400))))
    return stream


def test_memory_update_row_matches_the_generic_update() -> None:
    fast, generic = MemoryState(window=60), MemoryState(window=60)
    client_bucket, global_bucket = TokenBucket(2.0, 20.0), TokenBucket(5.0, 50.0)
    for t, (client, counters, totals, bucket, sketch, within) in enumerate(_row_stream(5, 900)):
        now = 1000.0 + t * 0.25
        within = within if t % 7 else -1.0  # now and then a request that counts no closeness
        row = fast.update_row(client, counters, totals, bucket, sketch, 1.0, client_bucket, global_bucket, within, now)
        obs = Observation(client, counters, totals, [bucket], [sketch], 1.0, client_bucket, global_bucket, within, True)
        view = generic.update(obs, now)
        assert row == RowView(
            view.counters, view.global_counters, view.client_dups, view.client_allowed, view.global_allowed, False
        ), t
    for client in ("c0", "c1", "c2"):
        a, b = fast._clients[client], generic._clients[client]
        assert (a.counters, a.buckets, a.sketches, a.tokens) == (b.counters, b.buckets, b.sketches, b.tokens)
    assert len(fast._clients["c0"].counters) == MAX_COUNTERS
    assert fast._global_buckets == generic._global_buckets


def test_the_default_update_row_is_the_generic_update(tmp_path: Path) -> None:
    # SQLite keeps the base class's update_row: one Observation through update()
    state, memory = SqliteState(str(tmp_path / "s.db")), MemoryState()
    for t, (client, counters, totals, bucket, sketch, within) in enumerate(_row_stream(6, 60)):
        args = (client, counters, totals, bucket, sketch, 1.0, TokenBucket(1.0, 5.0), None, within, 100.0 + t)
        assert state.update_row(*args) == memory.update_row(*args), t
    state.close()
