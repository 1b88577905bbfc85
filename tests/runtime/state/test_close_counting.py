"""Near-duplicate and too-close counts computed inside the atomic update agree on every backend."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from sas.runtime.state.base import Observation
from sas.runtime.state.memory import MemoryState
from sas.runtime.state.redis_state import RedisState
from sas.runtime.state.sqlite_state import SqliteState
from sas.runtime.state.summary import count_close

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=0.5).ping())
    except Exception:
        return False


def test_count_close_compares_with_the_ring_and_earlier_rows_of_the_request() -> None:
    a = np.array([10, 0, 0, 0, 0, 0, 0, -10], dtype=np.int8)
    near = (a + np.array([1, -1, 0, 0, 0, 0, 0, 1], dtype=np.int8)).tobytes()
    far = np.full(8, -100, dtype=np.int8).tobytes()
    assert count_close([a.tobytes()], [near], within=3.0) == 1
    assert count_close([a.tobytes()], [near], within=2.0) == 0
    assert count_close([], [far, far], within=0.0) == 1  # the second is an exact repeat of the first
    assert count_close([b"short"], [far], within=1e9) == 0  # malformed ring entries are ignored


def test_backends_agree_on_close_and_dup_counters(tmp_path: Path) -> None:
    backends = [MemoryState(), SqliteState(str(tmp_path / "s.db"))]
    if _redis_up():
        backends.append(RedisState(REDIS_URL, prefix=f"test-close-{uuid.uuid4().hex[:8]}"))
    else:
        pytest.skip("redis not reachable on 127.0.0.1:6379")
    rng = np.random.default_rng(0)
    base = rng.integers(-100, 100, 8)
    for t in range(80):
        n = int(rng.integers(1, 4))
        sketches = [
            (base + rng.integers(-3, 4, 8) if rng.random() < 0.5 else rng.integers(-120, 120, 8))
            .astype(np.int8)
            .tobytes()
            for _ in range(n)
        ]
        buckets = [str(int(rng.integers(0, 20))) for _ in range(n)]
        obs = Observation("c1", {"n": float(n)}, {}, buckets, sketches, close_within=60.0, count_dups=True)
        views = [b.update(obs, 1000.0 + t) for b in backends]
        counts = [{k: v.counters.get(k) for k in ("close", "nc", "dup", "nd", "n")} for v in views]
        assert all(c == counts[0] for c in counts), (t, counts)
    assert 0 < counts[0]["close"] < counts[0]["nc"] and counts[0]["nd"] == counts[0]["n"]
    backends[-1].reset()


def test_counting_is_off_unless_asked() -> None:
    state = MemoryState()
    sketch = np.zeros(8, dtype=np.int8).tobytes()
    for t in range(3):
        view = state.update(Observation("c", {"n": 1.0}, {}, ["b"], [sketch]), float(t))
    assert set(view.counters) == {"n"} and view.client_dups == 1
