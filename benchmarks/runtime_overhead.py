"""Runtime overhead of the Shield: the same inference handler bare and shielded, interleaved in one process.

    .venv/bin/python benchmarks/runtime_overhead.py [--requests 5000] [--manifest-mb 256]

Prints p50/p99 latency of each and their ratio, per model (a 100-tree random forest, a typical tabular
model; and a logistic regression, a deliberately tiny one whose inference is a few dozen microseconds) and
per ledger sink; then the import time of ``sas.runtime`` (in a fresh interpreter, bare and after the usual
heavy imports of an inference function) and the ``Shield`` set-up time; then the cold-start manifest
verification cost per GB.

The shielded handler runs in enforce mode with every monitor on (audit hook, botocore, contamination,
invocation summary events). The audit hook cannot be removed from a process, so during the bare runs the
policy is deactivated (the hook returns at once) rather than absent; the inference path raises no audit
events, so the difference is the Shield's own work.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from sas.runtime import Shield
from sas.runtime.monitors import audit, cloud_sdk


class Context:
    aws_request_id = "bench"
    function_name = "bench"


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0  # ns -> µs


def make_handler(predict: Callable[[Any], Any]) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        features = json.loads(event["body"])["features"]
        label = int(predict(np.asarray([features], dtype=float))[0])
        return {"statusCode": 200, "body": json.dumps({"label": label})}

    return handler


def run(model: Any, sink: str, requests: int, events: list[dict[str, Any]], scratch: str) -> dict[str, float]:
    config = {
        "runtime": {
            "mode": "enforce",
            "tmp_dir": scratch,
            "input": {"schema": {"field": "features", "shape": [64], "min": 0, "max": 16}},
        },
        "forensics": {"ledger": sink},
    }
    shield = Shield(config)
    bare = make_handler(model.predict)
    shielded = shield.aws_lambda(make_handler(shield.guard_model(model.predict)))
    bare_ns: list[int] = []
    shield_ns: list[int] = []
    clock = time.perf_counter_ns
    for i in range(requests):
        event = events[i % len(events)]
        order = (0, 1) if i % 2 else (1, 0)
        for which in order:
            if which == 0:
                audit.deactivate()
                cloud_sdk.deactivate()
                start = clock()
                bare(event, Context())
                bare_ns.append(clock() - start)
            else:
                assert shield._audit is not None and shield._sdk is not None
                audit.install(shield._audit)
                cloud_sdk.install(shield._sdk)
                start = clock()
                response = shielded(event, Context())
                shield_ns.append(clock() - start)
                assert response["statusCode"] == 200, response
    alerts = shield.counts["alerts"] + shield.counts["blocks"]
    shield.close()
    b50, s50 = percentile(bare_ns, 0.5), percentile(shield_ns, 0.5)
    return {
        "bare_p50": b50,
        "bare_p99": percentile(bare_ns, 0.99),
        "shield_p50": s50,
        "shield_p99": percentile(shield_ns, 0.99),
        "ratio_p50": s50 / b50,
        "overhead_p50_us": s50 - b50,
        "overhead_mean_us": (statistics.fmean(shield_ns) - statistics.fmean(bare_ns)) / 1000.0,
        "alerts": alerts,
    }


IMPORT_PROBE = """
import sys, time, json
heavy = sys.argv[1] == "heavy"
if heavy:
    import numpy, sklearn.linear_model, boto3, joblib  # what an inference function imports first
t0 = time.perf_counter()
import sas.runtime
t1 = time.perf_counter()
shield = sas.runtime.Shield({"forensics": {"ledger": "memory"}, "runtime": {"tmp_dir": sys.argv[2]}})
t2 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1000, "setup_ms": (t2 - t1) * 1000}))
"""


def import_and_setup(scratch: str, heavy: bool, repeats: int = 5) -> dict[str, float]:
    runs = []
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # a deployed package has .pyc
    for _ in range(repeats + 1):
        out = subprocess.run(
            [sys.executable, "-c", IMPORT_PROBE, "heavy" if heavy else "bare", scratch],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout
        runs.append(json.loads(out))
    runs = runs[1:]  # the first run writes the .pyc files
    return {k: statistics.median(r[k] for r in runs) for k in ("import_ms", "setup_ms")}


def manifest_cost(megabytes: int) -> dict[str, float] | None:
    try:
        from sas import integrity
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as root:
        fn = Path(root) / "fn"
        fn.mkdir()
        chunk = os.urandom(1 << 20)
        with open(fn / "model.bin", "wb") as fh:
            for _ in range(megabytes):
                fh.write(chunk)
        (fn / "handler.py").write_text("def handler(event, context):\n    return 1\n")
        key = integrity.generate_private_key()
        manifest = integrity.build_manifest(fn, key)
        manifest.write(Path(root) / "manifest.json")
        report = integrity.verify_tree(fn, Path(root) / "manifest.json", key.public_key())
        assert report.ok
        gb = report.bytes_checked / (1 << 30)
        return {"seconds": report.seconds, "gb": gb, "seconds_per_gb": report.seconds / gb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="requests per handler (logistic regression)")
    parser.add_argument("--forest-requests", type=int, default=1000, help="requests per handler (random forest)")
    parser.add_argument("--manifest-mb", type=int, default=256)
    args = parser.parse_args()

    x, y = load_digits(return_X_y=True)
    models = {
        "random forest (100 trees)": RandomForestClassifier(n_estimators=100, random_state=0).fit(x, y),
        "logistic regression": LogisticRegression(max_iter=2000).fit(x, y),
    }
    events = [
        {
            "version": "2.0",
            "rawPath": "/predict",
            "headers": {"content-type": "application/json"},
            "requestContext": {"http": {"method": "POST", "sourceIp": f"198.51.100.{i % 250}"}, "requestId": str(i)},
            "body": json.dumps({"features": [float(v) for v in row]}),
            "isBase64Encoded": False,
        }
        for i, row in enumerate(x[:500])
    ]
    calibration = min(timeit.repeat("sum(range(100))", number=100_000, repeat=5)) * 10
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {load:.1f}; "
        f"calibration: sum(range(100)) = {calibration:.2f} µs (an idle modern core: ~0.8 µs)"
    )
    header = f"{'model':<27} {'sink':<7} {'n':>5} {'bare p50':>10} {'p99':>10} {'shield p50':>11} {'p99':>10}"
    print(header + f" {'ratio':>6} {'+p50 µs':>8}")
    with tempfile.TemporaryDirectory() as scratch, tempfile.TemporaryDirectory() as logs:
        for name, model in models.items():
            for sink in ("memory", "jsonl"):
                spec = "memory" if sink == "memory" else f"jsonl:{Path(logs) / 'ledger.jsonl'}"
                n = args.forest_requests if "forest" in name else args.requests
                r = run(model, spec, n, events, scratch)
                print(
                    f"{name:<27} {sink:<7} {n:>5} {r['bare_p50']:>8.1f}µs {r['bare_p99']:>8.1f}µs "
                    f"{r['shield_p50']:>9.1f}µs {r['shield_p99']:>8.1f}µs "
                    f"{r['ratio_p50']:>6.3f} {r['overhead_p50_us']:>8.1f}"
                    + (f"   ALERTS: {r['alerts']}" if r["alerts"] else "")
                )
        bare = import_and_setup(scratch, heavy=False)
        heavy = import_and_setup(scratch, heavy=True)
    print(
        f"import sas.runtime: {bare['import_ms']:.1f} ms in a bare interpreter, "
        f"{heavy['import_ms']:.1f} ms after numpy/scikit-learn/boto3/joblib (median of 5, with .pyc)"
    )
    print(
        f"Shield set-up (all monitors, no manifest): {bare['setup_ms']:.1f} ms bare, {heavy['setup_ms']:.1f} ms after"
    )
    cost = manifest_cost(args.manifest_mb)
    if cost is None:
        print("manifest verification: sas.integrity not available")
    else:
        print(
            f"manifest verification: {cost['seconds']:.3f} s for {cost['gb']:.2f} GB "
            f"= {cost['seconds_per_gb']:.2f} s per GB (page cache warm)"
        )


if __name__ == "__main__":
    main()
