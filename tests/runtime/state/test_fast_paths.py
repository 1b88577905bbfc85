"""The memory backend's caches (bucket index, sketch-ring matrix) and its mirror of a shared store agree with
the plain rules they speed up."""

from __future__ import annotations

import numpy as np

from sas.runtime.state.base import RECENT_SKETCHES, Observation, StateView
from sas.runtime.state.memory import MemoryState
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
