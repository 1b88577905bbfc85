"""Per-request cost of the ML detectors (extraction, adversarial probing, abuse) and per-client state size.

Times the detector hooks exactly as ``guard_model`` calls them (one feature pass and one state update per
request, shared by the three detectors), excluding the model itself, on the digits task (64 features, 10
classes), one row per request, 200 clients interleaved. Two traffic shapes:

* ``benign``: every client sends rows it has not sent before (the common case: no detection written);
* ``repeats``: 450 rows cycled over the clients, so each sends every row about three times; most clients
  end up flagged and the detections (ledger details) are built too. This is the figure the first version
  of this script printed.

Memory state, then Redis on loopback if reachable. Prints p50/p90/p99 in microseconds and the machine's
load average: on a loaded 2-core VM the figures are high (a core shared with Redis and other processes).

    .venv/bin/python benchmarks/detector_overhead.py [--requests 5000] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import os
import time
import uuid

import numpy as np

from sas.bench.datasets import load_task
from sas.bench.models import train_victim
from sas.runtime.baseline import fit_baseline
from sas.runtime.context import RequestContext
from sas.runtime.detectors.model_suite import model_detectors
from sas.runtime.state import open_state
from sas.runtime.state.memory import MemoryState


def measure(baseline, rows, probs, spec: str, n: int) -> tuple[list[float], object, int]:
    prefix = f"overhead-{uuid.uuid4().hex[:8]}"
    state = open_state(spec, prefix=prefix)
    _, detectors = model_detectors({}, baseline, env={}, state=state)
    extraction, adversarial, abuse = detectors
    times = []
    flagged = 0
    for i in range(n):
        j = i % rows.shape[0]
        x, p = rows[j : j + 1], probs[j : j + 1]
        ctx = RequestContext(
            request_id=str(i), client_id=f"client-{i % 200}", platform="b", function="f", instance_id="i"
        )
        t0 = time.perf_counter_ns()
        extraction.on_model_input(ctx, x)
        found = extraction.on_model_output(ctx, x, p)
        found = adversarial.on_model_output(ctx, x, p) or found
        abuse.on_model_output(ctx, x, p)
        times.append((time.perf_counter_ns() - t0) / 1000.0)
        flagged += found is not None
    return times[n // 10 :], state, flagged  # the first tenth warms caches and connections


def report(name: str, times: list[float]) -> None:
    p50, p90, p99 = np.percentile(np.asarray(times), [50, 90, 99])
    print(f"{name:38} p50 {p50:8.1f} us   p90 {p90:8.1f} us   p99 {p99:8.1f} us")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = ap.parse_args()
    split = load_task("digits")
    victim = train_victim(split)
    baseline = fit_baseline(split.x_baseline, victim.predict_proba(split.x_baseline), sessions=60)
    rows = split.x_benign
    probs = victim.predict_proba(rows)
    t0 = time.perf_counter_ns()
    for j in range(200):
        victim.predict_proba(rows[j : j + 1])
    model_us = (time.perf_counter_ns() - t0) / 200 / 1000
    print(
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; the model itself: {model_us:.0f} us per row"
    )
    # benign: baseline and held-out rows (899); 899 and 200 are coprime, so no client repeats a row
    fresh = np.ascontiguousarray(np.vstack([split.x_baseline, rows]))
    shapes = {"benign": (fresh, victim.predict_proba(fresh)), "repeats": (rows, probs)}
    last_state = None
    for shape, (x, p) in shapes.items():
        times, last_state, flagged = measure(baseline, x, p, "memory", args.requests)
        report(f"memory, {shape} ({flagged} flagged)", times)
    state = last_state
    assert isinstance(state, MemoryState)
    summaries = list(state._clients.values())
    size = max(len(s.to_json()) for s in summaries)
    print(
        f"per-client state (memory, JSON form): {size} bytes after {args.requests // 200} requests per client "
        f"(bounded: 256 bucket ids, 32 sketches, <=128 counters)"
    )
    try:
        import redis

        redis.Redis.from_url(args.redis, socket_timeout=0.5).ping()
    except Exception as exc:
        print(f"redis at {args.redis} unreachable ({exc}); skipped")
        return
    for shape, (x, p) in shapes.items():
        times, state, flagged = measure(baseline, x, p, args.redis, args.requests)
        report(f"redis loopback, {shape} ({flagged} flagged)", times)
        primary = state.primary  # FallbackState around RedisState
        if shape == "benign":
            client = redis.Redis.from_url(args.redis)
            total = sum(
                int(client.memory_usage(key, samples=0) or 0)
                for key in client.scan_iter(match=f"{primary.prefix}:u:client-0")
            )
            print(f"per-client state (redis MEMORY USAGE of its hash): {total} bytes")
        primary.reset()


if __name__ == "__main__":
    main()
