"""The ML detectors through the real Shield: guard_model(predict, baseline=...), verdicts, escalation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sas.events.sink import MemorySink
from sas.runtime.context import RequestContext
from sas.runtime.shield import Shield

CONFIG = {
    "runtime": {
        "invocation_events": False,
        "monitors": {"audit": False, "sdk": False, "cold_start": False, "contamination": False},
        "model": {"state": "memory", "client_rate": 5.0, "client_burst": 50.0},
    },
    "forensics": {"ledger": "memory"},
}


def _shield(mode: str, **model: Any) -> tuple[Shield, MemorySink]:
    runtime = {**CONFIG["runtime"], "mode": mode, "model": {**CONFIG["runtime"]["model"], **model}}  # type: ignore[dict-item]
    sink = MemorySink()
    return Shield({**CONFIG, "runtime": runtime}, sink=sink, install=False, env={}), sink


def uniform_rows(split: Any, n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(split.lo, split.hi, (n, split.lo.shape[0]))


def _call(shield: Shield, predict: Any, client: str, row: np.ndarray, n: int) -> tuple[int, Any]:
    ctx = RequestContext(request_id=f"r{n}", client_id=client, platform="test", function="f", instance_id="i")
    result: tuple[int, Any] = shield.run(ctx, lambda: (200, predict(row[None])), lambda status, body: (status, body))
    return result


def test_guard_model_with_a_baseline_file_adds_the_ml_detectors(digits) -> None:
    shield, _ = _shield("monitor")
    shield.guard_model(digits.victim.predict_proba, baseline=str(digits.path))
    names = {d.name for d in shield.detectors}
    assert {"model-extraction", "adversarial-probing", "abuse"} <= names
    shield.guard_model(digits.victim.predict_proba, baseline=str(digits.path))  # a second model: no duplicates
    assert len([d for d in shield.detectors if d.name == "abuse"]) == 1


def test_enforce_escalates_alert_and_degrade_then_block(digits) -> None:
    shield, sink = _shield("enforce")
    predict = shield.guard_model(digits.victim.predict_proba, baseline=digits.baseline)
    statuses, outputs = [], []
    for n, row in enumerate(uniform_rows(digits.split, 60)):
        status, out = _call(shield, predict, "ip:203.0.113.9", row, n)
        statuses.append(status)
        outputs.append(out)
        if status == 403:
            break
    assert statuses[-1] == 403, "a uniform-query extractor must end blocked"
    assert len(statuses) <= 20
    alerts = [e for e in sink.events if e.detector == "model-extraction" and e.verdict == "alert"]
    assert alerts, "the suspicious stage comes before the block"
    degraded = [o for s, o in zip(statuses, outputs, strict=True) if s == 200 and np.count_nonzero(o) == 1]
    assert degraded, "a suspicious client gets top-1 only"
    blocked = [e for e in sink.events if e.verdict == "block"]
    assert blocked[0].threat == "model-extraction" and blocked[0].client_id == "ip:203.0.113.9"
    assert "score" in blocked[0].details and "counts" in blocked[0].details
    # the block is remembered by this instance: the model is not even called again
    calls = []

    def counting(x: Any) -> Any:
        calls.append(1)
        return digits.victim.predict_proba(x)

    guarded = shield.guard_model(counting)
    status, _ = _call(shield, guarded, "ip:203.0.113.9", digits.split.x_benign[0], 999)
    assert status == 403 and not calls


def test_monitor_mode_records_but_never_blocks_or_degrades(digits) -> None:
    shield, sink = _shield("monitor")
    predict = shield.guard_model(digits.victim.predict_proba, baseline=digits.baseline)
    for n, row in enumerate(uniform_rows(digits.split, 30)):
        status, out = _call(shield, predict, "api_key:k1", row, n)
        assert status == 200 and np.count_nonzero(out) > 1
    would = [e for e in sink.events if e.details.get("would_block") == 403]
    assert would and all(e.verdict == "alert" for e in would)


def test_benign_clients_are_left_alone(digits) -> None:
    shield, sink = _shield("enforce")
    predict = shield.guard_model(digits.victim.predict_proba, baseline=digits.baseline)
    rows = digits.split.x_benign
    rng = np.random.default_rng(3)
    n = 0
    for c in range(30):
        for i in rng.permutation(rows.shape[0])[:30]:
            n += 1
            status, out = _call(shield, predict, f"ip:198.51.100.{c}", rows[i], n)
            assert status == 200 and np.count_nonzero(out) > 1
    assert not [e for e in sink.events if e.verdict != "allow"]


def test_batch_requests_pay_by_rows_and_floods_get_429(digits) -> None:
    shield, sink = _shield("enforce", client_rate=1.0, client_burst=100.0)
    predict = shield.guard_model(digits.victim.predict_proba, baseline=digits.baseline)
    rows = digits.split.x_benign
    statuses = []
    for n in range(4):
        ctx = RequestContext(request_id=f"b{n}", client_id="ip:192.0.2.1", platform="t", function="f", instance_id="i")
        batch = rows[n * 40 : (n + 1) * 40]
        statuses.append(shield.run(ctx, lambda b=batch: (200, predict(b)), lambda s, b: (s, b))[0])
    assert statuses[:2] == [200, 200] and 429 in statuses[2:]
    assert any(e.detector == "abuse" and e.threat == "denial-of-wallet" for e in sink.events)


def test_losing_the_shared_store_is_recorded_and_no_request_fails(digits) -> None:
    shield, sink = _shield("enforce", state="redis://127.0.0.1:1/0")
    predict = shield.guard_model(digits.victim.predict_proba, baseline=digits.baseline)
    for n, row in enumerate(digits.split.x_benign[:5]):
        assert _call(shield, predict, "ip:192.0.2.7", row, n)[0] == 200
    degraded = [e for e in sink.events if e.event == "state-degraded"]
    assert len(degraded) == 1 and degraded[0].detector == "model-state"


@pytest.mark.parametrize("bad", [np.zeros((1, 5)), "not numbers", None])
def test_inputs_that_are_not_model_rows_are_not_judged(digits, bad: Any) -> None:
    shield, sink = _shield("enforce")
    guarded = shield.guard_model(lambda x: np.array([[1.0, 0.0]]), baseline=digits.baseline)
    ctx = RequestContext(request_id="x", client_id="c", platform="t", function="f", instance_id="i")
    status, _ = shield.run(ctx, lambda: (200, guarded(bad)), lambda s, b: (s, b))
    assert status == 200 and not [e for e in sink.events if e.verdict != "allow"]


def test_an_instance_forgets_a_block_after_level_memory_and_asks_the_store_again(digits) -> None:
    from sas.runtime.detectors.model_guard import GuardSettings, ModelGuard
    from sas.runtime.state.memory import MemoryState

    clock = [1000.0]
    guard = ModelGuard(digits.baseline, MemoryState(), GuardSettings(level_memory=60.0), clock=lambda: clock[0])
    probs = digits.victim.predict_proba
    for row in uniform_rows(digits.split, 40):
        clock[0] += 1.0
        a = guard.observe("c", row, probs(row[None]))
        if a.extraction_level == 2:
            break
    assert guard.known_level("c") == 2
    clock[0] += 61.0
    assert guard.known_level("c") == 0  # the shared counters decide again on the next request
    row = uniform_rows(digits.split, 1, seed=9)[0]
    assert guard.observe("c", row, probs(row[None])).extraction_level == 2  # ...and they still say block


def test_monitor_mode_blocked_client_gets_one_extraction_record_per_request(digits) -> None:
    """Regression: a client this instance already blocked got the cached block before the model ran and,
    being let through in monitor mode, a second extraction block after it: two records for one request."""
    shield, sink = _shield("monitor")
    predict = shield.guard_model(digits.victim.predict_proba, baseline=digits.baseline)
    for n, row in enumerate(uniform_rows(digits.split, 80)):
        _call(shield, predict, "ip:203.0.113.9", row, n)
    per_request: dict[str, int] = {}
    for e in sink.events:
        if e.detector == "model-extraction":
            per_request[e.request_id] = per_request.get(e.request_id, 0) + 1
    cached = [e for e in sink.events if e.detector == "model-extraction" and e.details.get("cached")]
    assert cached, "the client must reach block level and be answered from the cache"
    assert max(per_request.values()) == 1
