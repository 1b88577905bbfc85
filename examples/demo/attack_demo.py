"""The runtime and forensics demo: the digits function, shielded, under benign traffic and real attacks.

The function is ``examples/aws-digits`` (its model built by ``build_examples.py`` and scanned clean by
``sas scan`` earlier in ``make demo``), wrapped with ``@shield.aws_lambda`` in enforce mode, its model call
guarded with a baseline fitted on benign digits. It is invoked in-process with API Gateway (HTTP API v2)
events from:

- 40 benign clients sending held-out digits;
- a model-extraction attacker sending uniform random queries;
- a KnockoffNets-style attacker labelling look-alike "natural" images (synthetic strokes);
- a decision-based evasion attacker walking the decision boundary towards a digit;
- a prober sending out-of-range and NaN features (the input schema answers 400).

Every invocation and detection goes to a signed ledger (``OUT/ledger.db``, checkpoints anchored in
``OUT/anchor.db``), which ``make demo`` then verifies and turns into incidents and an HTML report::

    python examples/demo/attack_demo.py OUT
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np

HERE = Path(__file__).resolve().parent
MODEL = HERE.parent / "aws-digits" / "model" / "model.joblib"
BENIGN_CLIENTS = 40
BENIGN_REQUESTS = 15
ATTACK_BUDGET = 300


class _Context:
    function_name = "digits-classifier"

    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id


def _event(ip: str, body: Any, i: int) -> dict[str, Any]:
    return {
        "version": "2.0",
        "rawPath": "/predict",
        "requestContext": {"requestId": f"req-{i}", "http": {"method": "POST", "path": "/predict", "sourceIp": ip}},
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def main(out: Path) -> int:
    from sas import Shield
    from sas.bench.attacks import Blocked, BoundaryWalk, NaturalData, UniformQueries
    from sas.bench.datasets import load_task
    from sas.integrity import generate_private_key, write_keypair
    from sas.runtime.baseline import fit_baseline

    if not MODEL.is_file():
        print(f"{MODEL} is missing: run `python examples/build_examples.py` first", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    for name in ("ledger.db", "ledger.db-wal", "ledger.db-shm", "anchor.db", "ledger.key", "ledger.pub"):
        (out / name).unlink(missing_ok=True)
    write_keypair(generate_private_key(), out / "ledger")
    os.environ["SAS_SIGNING_KEY"] = str(out / "ledger.key")
    os.environ["SAS_ANCHOR"] = f"sqlite:{out / 'anchor.db'}"
    os.environ["SAS_CHECKPOINT_EVERY"] = "200"

    model = joblib.load(MODEL)  # our own artifact, built and scanned by the demo
    split = load_task("digits")
    baseline = fit_baseline(split.x_baseline, model.predict_proba(split.x_baseline), target_fpr=0.01)
    baseline.save(out / "baseline.npz")

    shield = Shield(
        {
            "runtime": {
                "mode": "enforce",
                "input": {"max_body_bytes": 16384, "schema": {"field": "features", "shape": [64], "min": 0, "max": 16}},
            },
            "forensics": {"ledger": f"sqlite:{out / 'ledger.db'}"},
        }
    )
    predict_proba = shield.guard_model(model.predict_proba, baseline=out / "baseline.npz")

    @shield.aws_lambda
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        features = np.asarray(json.loads(event["body"])["features"], dtype=np.float64).reshape(1, -1)
        probs = np.asarray(predict_proba(features))[0]
        return {"statusCode": 200, "body": json.dumps({"label": int(np.argmax(probs)), "probs": probs.tolist()})}

    counter = iter(range(10**9))
    outcomes: dict[str, dict[int, int]] = {}

    def invoke(ip: str, body: Any) -> dict[str, Any]:
        i = next(counter)
        response = handler(_event(ip, body, i), _Context(f"req-{i}"))
        status = int(response.get("statusCode", 200))
        outcomes.setdefault(ip, {}).setdefault(status, 0)
        outcomes[ip][status] += 1
        return response

    def oracle_for(ip: str) -> Any:
        def oracle(x: np.ndarray) -> np.ndarray:
            response = invoke(ip, {"features": [round(float(v), 3) for v in x.reshape(-1)]})
            if response["statusCode"] != 200:
                raise Blocked
            answer = json.loads(response["body"])
            probs = np.zeros(10)
            if answer.get("probs"):
                probs[: len(answer["probs"])] = answer["probs"]
            else:
                probs[answer["label"]] = 1.0
            return probs

        return oracle

    rng = np.random.default_rng(7)
    benign_ips = [f"10.0.{i // 200}.{i % 200 + 1}" for i in range(BENIGN_CLIENTS)]
    attackers = {
        "198.51.100.7": UniformQueries(split, model, seed=1),
        "198.51.100.23": NaturalData(split, model, seed=2),
        "203.0.113.66": BoundaryWalk(split, model, seed=3),
    }
    # benign traffic first and between the attacks, so the ledger interleaves them
    for round_ in range(BENIGN_REQUESTS):
        for ip in benign_ips:
            row = split.x_benign[int(rng.integers(0, split.x_benign.shape[0]))]
            invoke(ip, {"features": row.tolist()})
        if round_ == 2:
            for ip, attack in attackers.items():
                result = attack.execute(oracle_for(ip), ATTACK_BUDGET)
                print(f"  {attack.name:<18} from {ip}: {result.queries} queries, stopped={result.stopped}")
        if round_ == 5:
            for bad in ([float("nan")] * 64, [99.0] * 64, [1.0] * 3):
                invoke("192.0.2.99", {"features": bad})
    shield.close()

    flagged = [ip for ip in benign_ips if any(s != 200 for s in outcomes.get(ip, {}))]
    sent = len(benign_ips) * BENIGN_REQUESTS
    print(f"  benign clients: {len(benign_ips)}, requests {sent}, clients refused any request: {len(flagged)}")
    for ip in (*attackers, "192.0.2.99"):
        print(f"  {ip:<15} responses by status: {dict(sorted(outcomes.get(ip, {}).items()))}")
    print(f"ledger: {out / 'ledger.db'} (public key {out / 'ledger.pub'}, anchor {out / 'anchor.db'})")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("build/demo")))
