"""A floor for the Shield's per-request cost in Python: the same random-forest handler bare and wrapped in a
deliberately minimal request path, interleaved as in ``benchmarks/runtime_overhead.py``.

The minimal path does what every shielded request needs at least: request id, client id and size from the
event, an orjson parse and a 64-feature schema check, the identity check of 21 security-relevant functions,
and one summary line encoded with orjson and written with ``os.write``. It is not the Shield (no detectors,
no signed ledger, no audit hook); it shows how much of the Shield's cost after a cache-sweeping model is the
work itself and how much is the way it is structured.

    .venv/bin/python benchmarks/minimal_request_path.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import builtins
import json
import operator
import os
import pickle
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
OWNERS: tuple[Any, ...] = (builtins,) * 7 + (os,) * 5 + (subprocess,) * 2 + (socket,) * 3 + (json,) * 2 + (pickle,) * 2
ATTRS: tuple[str, ...] = ("open", "exec", "eval", "compile", "__import__", "getattr", "print", "system", "popen")
ATTRS += ("execv", "open", "fork", "Popen", "run", "socket", "create_connection", "getaddrinfo", "loads", "dumps")
ATTRS += ("loads", "load")
ORIGINALS = tuple(map(getattr, OWNERS, ATTRS))
NONES = (None,) * len(ATTRS)
NUMBERS = {int, float}


def minimal(handler: Handler, fd: int) -> Handler:
    seq = [0]

    def wrapped(event: dict[str, Any], context: Any) -> dict[str, Any]:
        t0 = time.perf_counter()
        rc = event["requestContext"]
        request_id, client = rc["requestId"], "ip:" + rc["http"]["sourceIp"]
        body = event["body"].encode()
        row = orjson.loads(body)["features"]
        if len(row) != 64 or not set(map(type, row)) <= NUMBERS or not (min(row) >= 0 and max(row) <= 16):
            return {"statusCode": 400}
        out = handler(event, context)
        if not all(map(operator.is_, map(getattr, OWNERS, ATTRS, NONES), ORIGINALS)):
            print("patched", file=sys.stderr)
        seq[0] += 1
        summary = {
            "_sas_log": "minimal",
            "_sas_seq": seq[0],
            "client_id": client,
            "details": {"duration_ms": (time.perf_counter() - t0) * 1000, "size": len(body)},
            "event": "invocation",
            "request_id": request_id,
            "time": time.time(),
            "verdict": "allow",
        }
        os.write(fd, orjson.dumps(summary, option=orjson.OPT_APPEND_NEWLINE))
        return out

    return wrapped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    from http_events import http_api_v2_events
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier

    x, y = load_digits(return_X_y=True)
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(x, y)
    events = http_api_v2_events(x)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        features = json.loads(event["body"])["features"]
        label = int(model.predict(np.asarray([features], dtype=float))[0])
        return {"statusCode": 200, "body": json.dumps({"label": label})}

    fd = os.open(os.devnull, os.O_WRONLY)
    wrapped = minimal(handler, fd)
    bare_ns: list[int] = []
    wrapped_ns: list[int] = []
    clock = time.perf_counter_ns
    for i in range(args.requests):
        for which in (0, 1) if i % 2 else (1, 0):
            event = json.loads(events[i % len(events)])
            start = clock()
            (handler if which == 0 else wrapped)(event, None)
            (bare_ns if which == 0 else wrapped_ns).append(clock() - start)
    bare, minimal_p50 = statistics.median(bare_ns) / 1000, statistics.median(wrapped_ns) / 1000
    paired = statistics.median(w - b for w, b in zip(wrapped_ns, bare_ns, strict=True)) / 1000
    load = os.getloadavg()[0]
    print(
        f"load average {load:.1f}; 100-tree random forest bare p50 {bare:.1f} µs, minimal request path p50 "
        f"{minimal_p50:.1f} µs: +{minimal_p50 - bare:.1f} µs (paired {paired:.1f} µs)"
    )


if __name__ == "__main__":
    main()
