"""A scripted attack on a shielded inference function, recorded in a signed, anchored ledger.

Runs a real ``sas.Shield`` (AWS adapter, enforce mode, input validation) in-process on two instances and
replays: steady benign traffic from many clients; an evasion probe from one client (out-of-range and NaN
features, blocked); then an oversized-payload flood from another (413s). Used by the forensics tests and by
``make demo``::

    python tests/forensics/scripted_attack.py OUTDIR   # writes ledger.db, ledger.key/.pub, anchor.db
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PROBER = "203.0.113.66"
FLOODER = "198.18.7.200"


class LambdaContext:
    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id
        self.function_name = "digits-classifier"


def api_event(ip: str, body: str, i: int) -> dict[str, Any]:
    return {
        "version": "2.0",
        "rawPath": "/predict",
        "requestContext": {"requestId": f"api-{i}", "http": {"method": "POST", "path": "/predict", "sourceIp": ip}},
        "headers": {"content-type": "application/json"},
        "body": body,
        "isBase64Encoded": False,
    }


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """``values`` set in ``os.environ`` for the block, the previous values back afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def shielded_handlers(
    function: str, ledger: str, *, max_body_bytes: int, label: int, instances: int = 2
) -> Iterator[list[Handler]]:
    """``instances`` warm instances of one shielded function (AWS adapter, enforce mode, input validation of
    rows of 4 features in [-10, 10]) writing to the ledger ``ledger`` (a sink spec); closed after the block.

    The monitors that watch the process stay off: they would watch the test process itself."""
    from sas import Shield

    config = {
        "runtime": {
            "mode": "enforce",
            "function": function,
            "monitors": {"audit": False, "sdk": False, "cold_start": False, "contamination": False},
            "input": {
                "max_body_bytes": max_body_bytes,
                "schema": {"field": "features", "shape": [-1, 4], "dtype": "float", "min": -10, "max": 10},
            },
        },
        "forensics": {"ledger": ledger},
    }
    shields = [Shield(config, install=False, env={"AWS_LAMBDA_FUNCTION_NAME": function}) for _ in range(instances)]
    handlers: list[Handler] = []
    for shield in shields:

        @shield.aws_lambda
        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            json.loads(event["body"])
            return {"statusCode": 200, "body": json.dumps({"label": label})}

        handlers.append(handler)
    try:
        yield handlers
    finally:
        for shield in shields:
            shield.close()


def run(outdir: Path, invocations: int = 1200, checkpoint_every: int = 200) -> dict[str, Path]:
    """Write the ledger of the scripted attack into ``outdir``; returns the paths."""
    from sas.integrity import generate_private_key, write_keypair

    outdir.mkdir(parents=True, exist_ok=True)
    for name in ("ledger.db", "ledger.db-wal", "ledger.db-shm", "anchor.db", "ledger.key", "ledger.pub"):
        (outdir / name).unlink(missing_ok=True)
    key, pub = write_keypair(generate_private_key(), outdir / "ledger")
    ledger, anchor = outdir / "ledger.db", outdir / "anchor.db"
    # the Shield opens its sink from the spec alone: signing, anchoring and checkpoints come from the environment
    with (
        environment(
            SAS_CHECKPOINT_EVERY=str(checkpoint_every), SAS_SIGNING_KEY=str(key), SAS_ANCHOR=f"sqlite:{anchor}"
        ),
        shielded_handlers("digits-classifier", f"sqlite:{ledger}", max_body_bytes=4096, label=3) as handlers,
    ):
        third = invocations // 3
        for i in range(invocations):
            if third <= i < 2 * third and i % 3 == 0:  # evasion probe: values outside the trained range
                ip, features = PROBER, [[float(i), 0.5, -0.5, 99.0]]
                body = json.dumps({"features": features})
            elif i >= 2 * third and i % 4 == 0:  # wallet flood: oversized bodies
                ip, body = FLOODER, json.dumps({"features": [[0.1, 0.2, 0.3, 0.4]] * 400})
            else:
                ip, body = f"192.0.2.{i % 23 + 1}", json.dumps({"features": [[0.1, 0.2, 0.3, 0.4]]})
            handlers[i % 2](api_event(ip, body, i), LambdaContext(f"req-{i:05d}"))
    return {"ledger": ledger, "pub": pub, "key": key, "anchor": anchor}


if __name__ == "__main__":
    paths = run(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-ledger"))
    print(" ".join(f"{k}={v}" for k, v in paths.items()))
