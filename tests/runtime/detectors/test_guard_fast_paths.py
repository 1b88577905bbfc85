"""The guard's per-request shortcuts agree with the plain computations they replace."""

from __future__ import annotations

import dataclasses
import math
import pickle

import numpy as np
import pytest

from sas.events.record import Verdict
from sas.runtime.detectors.base import Detection
from sas.runtime.detectors.model_guard import COUNT_NAMES, GuardSettings, ModelGuard, _ledger, round3
from sas.runtime.state.memory import MemoryState
from sas.taxonomy import Severity, Threat


def _g_statistic(guard: ModelGuard, counters: dict[str, float]) -> float:
    """Half the BIC-penalised G statistic, straight from its definition."""
    counts = [counters.get(name, 0.0) for name in guard.label_names]
    total = sum(counts)
    if total < 2:
        return 0.0
    g = sum(k * math.log(k / (total * p)) for k, p in zip(counts, guard.prior_list, strict=True) if k > 0)
    penalty = (len(counts) - 1) / 2.0 * math.log(total)
    return guard.settings.label_weight * max(0.0, g - penalty)


def test_the_label_term_kept_up_to_date_equals_the_definition(digits) -> None:
    # two guards on one store: each sees the other's rows in the counters (the memo must notice), and a
    # reset of the store in the middle (counts go down) must not leave a stale sum behind
    state = MemoryState()
    settings = GuardSettings(client_burst=1e9, global_burst=1e9)
    here, there = ModelGuard(digits.baseline, state, settings), ModelGuard(digits.baseline, state, settings)
    rows = digits.split.x_benign
    probs = digits.victim.predict_proba(rows)
    rng = np.random.default_rng(4)
    for t in range(600):
        i = int(rng.integers(0, rows.shape[0]))
        guard = there if rng.random() < 0.2 else here
        client = f"c{int(rng.integers(0, 3))}"
        if t == 300:
            state.reset()
        if rng.random() < 0.05:
            j = slice(i, i + 3)  # a batch: several labels at once
            a = guard.observe(client, rows[j], probs[j], 1000.0 + t)
        else:
            a = guard.observe(client, rows[i : i + 1], probs[i : i + 1], 1000.0 + t)
        expected = _g_statistic(guard, dict(state.client_counters(client)))
        assert math.isclose(a.counts["llr_labels"], expected, rel_tol=1e-9, abs_tol=1e-9), t
    assert max(len(g._label_memo) for g in (here, there)) == 3


def test_round3_is_round_to_three_decimals() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0, 50, 2000), rng.normal(0, 1e9, 200), [0.0, 1.0, -9.210340371976184]])
    assert all(round3(float(v)) == round(float(v), 3) for v in values)
    assert math.isnan(round3(math.nan)) and round3(math.inf) == math.inf


def test_the_ledger_copy_made_by_the_tests_is_the_rounded_assessment(digits) -> None:
    # the guard rounds inline when a level is raised; the plain path (round3 over the named values) must agree
    guard = ModelGuard(digits.baseline, MemoryState(), GuardSettings(client_burst=1e9, global_burst=1e9))
    rows = digits.split.x_benign[:40]
    probs = digits.victim.predict_proba(rows)
    flagged = 0
    for t in range(400):  # each client repeats rows: near-duplicates raise the probing level
        i = t % rows.shape[0]
        out = None if t % 7 == 0 else probs[i : i + 1]  # some without probabilities (no min_margin)
        a = guard.observe(f"c{t % 3}", rows[i : i + 1], out, 1000.0 + t)
        if a.extraction_level or a.adversarial_level:
            flagged += 1
            assert a.ledger is not None
            counts, request = a.ledger
            plain_counts, plain_request = _ledger(a.statistics, a.figures)
            assert list(counts.items()) == list(plain_counts.items()), t
            assert list(request.items()) == list(plain_request.items()), t
            assert list(counts) == list(COUNT_NAMES)
            assert guard.ledger_counts(a) == {"counts": counts, "request": request}
        else:
            assert a.ledger is None
    assert flagged > 100


def test_detection_built_positionally_equals_the_keyword_one() -> None:
    """The ML detectors build their records positionally (no keyword dictionary per flagged request)."""
    args = ("adversarial-probing", Threat.ADVERSARIAL_INPUT, Severity.HIGH, Verdict.BLOCK, 0.25, 403, "", "e", {"a": 1})
    made = Detection(*args)
    built = Detection(
        detector=args[0], threat=args[1], severity=args[2], verdict=args[3], score=0.25, status=403, event="e",
        details={"a": 1},
    )  # fmt: skip
    assert type(made) is Detection and made == built and repr(made) == repr(built)
    assert made.public_reason == built.public_reason == "request refused"
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.score = 1.0  # type: ignore[misc]
    assert dataclasses.replace(made, score=1.0) == dataclasses.replace(built, score=1.0)
    assert pickle.loads(pickle.dumps(made)) == built
