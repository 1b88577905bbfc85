"""The guard's per-request shortcuts agree with the plain computations they replace."""

from __future__ import annotations

import math

import numpy as np

from sas.runtime.detectors.model_guard import GuardSettings, ModelGuard, round3
from sas.runtime.state.memory import MemoryState


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
