"""Eight worker processes, each its own Shield, sharing a real (private) Redis: the FaaS deployment shape."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sas.bench.runner import run_attack
from sas.bench.targets import LocalTarget, MultiTarget


@pytest.mark.parametrize("attack", ["uniform-random", "knockoff-natural", "jbda", "boundary-walk"])
def test_an_attack_spread_round_robin_is_caught_within_10_percent(digits_task, private_redis, attack: str) -> None:
    t = digits_task
    single = LocalTarget(t.baseline, t.victim, private_redis.url, prefix=f"one-{attack}")
    try:
        one = run_attack(single, t.split, t.victim, attack, deployment="single-redis", budget=300)
    finally:
        single.close()
    multi = MultiTarget(t.baseline, t.victim, private_redis.url, n=8, prefix=f"eight-{attack}")
    try:
        eight = run_attack(multi, t.split, t.victim, attack, deployment="8-process-redis", budget=300)
    finally:
        multi.close()
    assert one.detected and eight.detected
    assert one.queries_to_detection is not None and eight.queries_to_detection is not None
    # per-instance memory would need 8x the queries; shared counters make the spread invisible
    assert eight.queries_to_detection <= math.ceil(1.1 * one.queries_to_detection)
    assert eight.queries_to_block is not None


def test_killing_redis_mid_run_loses_no_request(digits_task, private_redis) -> None:
    t = digits_task
    multi = MultiTarget(t.baseline, t.victim, private_redis.url, n=8, prefix="kill")
    rows = t.split.x_benign
    replies = []
    try:
        for i in range(120):
            if i == 60:
                private_redis.proc.kill()
                private_redis.proc.wait(timeout=5)
            replies.append(multi.query(f"client-{i % 12}", rows[i : i + 1], 1_000.0 + i))
    finally:
        multi.close()
    assert len(replies) == 120
    assert all(r.status == 200 and r.output is not None for r in replies)
    assert all(np.isclose(np.asarray(r.output).sum(), 1.0) for r in replies)
    assert not any(r.degraded_state for r in replies[:60])
    assert all(r.degraded_state for r in replies[68:])  # every worker noticed and answered from local state
