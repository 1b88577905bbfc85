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


def run(outdir: Path, invocations: int = 1200, checkpoint_every: int = 200) -> dict[str, Path]:
    """Write the ledger of the scripted attack into ``outdir``; returns the paths."""
    from sas import Shield
    from sas.integrity import generate_private_key, write_keypair

    outdir.mkdir(parents=True, exist_ok=True)
    for name in ("ledger.db", "ledger.db-wal", "ledger.db-shm", "anchor.db", "ledger.key", "ledger.pub"):
        (outdir / name).unlink(missing_ok=True)
    key, pub = write_keypair(generate_private_key(), outdir / "ledger")
    ledger, anchor = outdir / "ledger.db", outdir / "anchor.db"
    saved = {k: os.environ.get(k) for k in ("SAS_SIGNING_KEY", "SAS_ANCHOR", "SAS_CHECKPOINT_EVERY")}
    os.environ["SAS_CHECKPOINT_EVERY"] = str(checkpoint_every)  # the Shield opens its sink from the spec alone
    os.environ["SAS_SIGNING_KEY"] = str(key)
    os.environ["SAS_ANCHOR"] = f"sqlite:{anchor}"
    config = {
        "runtime": {
            "mode": "enforce",
            "function": "digits-classifier",
            "monitors": {"audit": False, "sdk": False, "cold_start": False, "contamination": False},
            "input": {
                "max_body_bytes": 4096,
                "schema": {"field": "features", "shape": [-1, 4], "dtype": "float", "min": -10, "max": 10},
            },
        },
        "forensics": {"ledger": f"sqlite:{ledger}"},
    }
    try:
        shields = [
            Shield(config, install=False, env={"AWS_LAMBDA_FUNCTION_NAME": "digits-classifier"}) for _ in range(2)
        ]
        handlers = []
        for shield in shields:

            @shield.aws_lambda
            def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
                json.loads(event["body"])
                return {"statusCode": 200, "body": json.dumps({"label": 3})}

            handlers.append(handler)
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
        for shield in shields:
            shield.close()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return {"ledger": ledger, "pub": pub, "key": key, "anchor": anchor}


if __name__ == "__main__":
    paths = run(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-ledger"))
    print(" ".join(f"{k}={v}" for k, v in paths.items()))
