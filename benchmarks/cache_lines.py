"""Cache lines and instructions per request, counted rather than timed: the Shield's path under cachegrind.

After a model that sweeps the caches (a 100-tree random forest walks megabytes of nodes), every cache line
the Shield's per-request path touches is a miss, and the misses, not the instructions, are most of the
Shield's cost there (~40 ns each on this VM). Timings of that case swing by a factor of two between
processes; these counts do not. Each path runs a no-op model in a loop with a 2.4 MB array summed between
requests (it evicts the simulated 1 MB last-level cache), under ``valgrind --tool=cachegrind``, for two
request counts, both below the ledger's hashing batch (256), so that both runs write lines and hash none.
The difference, minus the bare handler's, divided by the extra requests, is the per-request cost of the
wrapper: instructions and last-level misses ("lines": distinct cache lines it had to fetch). Batch work
(hashing, checkpoints, the contamination monitor's deep sweep every 100 requests) is left out: it is not on
the typical request's path, and ``benchmarks/ledger.py`` measures the ledger's.

Paths: ``bare`` (the handler alone, the reference), ``shield`` (enforce mode, every monitor on, the input
schema, ``guard_model``: what ``runtime_overhead.py`` measures), ``minimal`` (the floor of
``minimal_request_path.py``).

    .venv/bin/python benchmarks/cache_lines.py [--paths shield,minimal] [--sink stdout] [--requests 100]

Needs valgrind (``apt-get install valgrind``). Run with ``PYTHONHASHSEED=0`` set by the script and one BLAS
thread, so two runs of the same code give the same counts to within a few lines.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SWEEP_FLOATS = 300_000  # 2.4 MB: more than the simulated last-level cache


def child(path: str, requests: int, sink: str, scratch: str, overrides: str) -> None:
    import numpy as np
    from http_events import http_api_v2_events
    from minimal_request_path import minimal
    from runtime_overhead import Context, NoopModel, make_handler

    from sas.runtime import Shield
    from sas.runtime.monitors import audit, cloud_sdk

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # the stdout ledger
    rng = np.random.default_rng(0)
    events = http_api_v2_events(rng.integers(0, 17, size=(500, 64)))
    model = NoopModel()
    config = {
        "runtime": {
            "mode": "enforce",
            "tmp_dir": scratch,
            "input": {"schema": {"field": "features", "shape": [64], "min": 0, "max": 16}},
            # the typical (p50) request: the full sweep of every module function runs on 1 in 100
            "contamination": {"deep_every": 1_000_000},
        },
        # no time-based checkpoint under valgrind's slow clock: the counts are the per-request path's
        "forensics": {"ledger": sink, "checkpoint_seconds": 1e9},
    }
    config["runtime"].update(json.loads(overrides))
    shield = Shield(config)  # made on every path, so that the process state is the same
    handler: Any
    if path == "shield":
        handler = shield.aws_lambda(make_handler(shield.guard_model(model.predict)))
    else:
        audit.deactivate()
        cloud_sdk.deactivate()
        handler = make_handler(model.predict)
        if path == "minimal":
            handler = minimal(handler, devnull)
    big = np.ones(SWEEP_FLOATS)
    # where a collection lands depends on each path's allocations; frozen, the loaded heap is not rescanned
    gc.freeze()
    context = Context()
    for i in range(requests):
        big.sum()
        response = handler(json.loads(events[i % len(events)]), context)
        assert response["statusCode"] == 200, response
    # no close(): its final checkpoint hashes every line written, a batch cost (benchmarks/ledger.py has it)
    # that would land in the difference between the two runs
    sys.stdout.flush()
    os._exit(0)


def counts(path: str, requests: int, sink: str, scratch: str, overrides: str) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as out:
        target = Path(out) / "cachegrind.out"
        # no .pyc writes: a module compiled in one run and loaded in the next would count in the difference
        env = dict(os.environ, PYTHONHASHSEED="0", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        command = ["valgrind", "--tool=cachegrind", "--cache-sim=yes", "--LL=1048576,16,64"]
        command += [f"--cachegrind-out-file={target}", sys.executable, __file__]
        command += [
            "--child",
            path,
            "--requests",
            str(requests),
            "--sink",
            sink,
            "--scratch",
            scratch,
            "--runtime",
            overrides,
        ]
        subprocess.run(command, check=True, env=env, capture_output=True)
        names: list[str] = []
        for line in target.read_text().splitlines():
            if line.startswith("events:"):
                names = line.split()[1:]
            elif line.startswith("summary:"):
                values = dict(zip(names, map(int, line.split()[1:]), strict=True))
                return {
                    "instructions": values["Ir"],
                    "lines": values["ILmr"] + values["DLmr"] + values["DLmw"],
                    "code_lines": values["ILmr"],
                }
    raise RuntimeError("cachegrind wrote no summary")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", default="shield,minimal", help="comma-separated: shield, minimal")
    parser.add_argument("--sink", default="stdout", help="the Shield's ledger: stdout (default), memory")
    parser.add_argument("--requests", type=int, default=100, help="extra requests between the two runs")
    parser.add_argument("--runtime", default="{}", help="JSON merged into [runtime], e.g. '{\"contamination\": false}'")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.requests, args.sink, args.scratch, args.runtime)
        return
    if shutil.which("valgrind") is None:
        sys.exit("cache_lines.py needs valgrind (apt-get install valgrind)")
    low, high = 10, 10 + args.requests
    with tempfile.TemporaryDirectory() as scratch:

        def per_request(path: str) -> dict[str, float]:
            a, b = (counts(path, n, args.sink, scratch, args.runtime) for n in (low, high))
            return {k: (b[k] - a[k]) / args.requests for k in a}

        bare = per_request("bare")
        print(f"per request, under cachegrind (1 MB last-level cache swept between requests), sink {args.sink}")
        print(f"  {'path':<10} {'instructions':>13} {'lines':>7} {'of which code':>14}")
        for path in [p.strip() for p in args.paths.split(",") if p.strip()]:
            cost = per_request(path)
            extra = {k: cost[k] - bare[k] for k in cost}
            print(f"  {path:<10} {extra['instructions']:>13,.0f} {extra['lines']:>7,.0f} {extra['code_lines']:>14,.0f}")
        print(
            f"  (the bare handler and the sweep: {bare['instructions']:,.0f} instructions, {bare['lines']:,.0f} lines)"
        )


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
