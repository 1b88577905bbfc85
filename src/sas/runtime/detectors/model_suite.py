"""Build the ML detectors for ``shield.guard_model(predict, baseline=...)`` from the ``[runtime.model]`` table.

::

    [runtime.model]
    state = "memory"            # or "sqlite:/tmp/sas.db", "redis://host:6379/0" (env SAS_STATE overrides)
    prefix = "sas"              # key prefix in the shared store (one per model/function)
    client_ttl = 86400          # idle clients are forgotten after this many seconds
    client_rate = 20.0          # token bucket per client: cost units per second, burst
    client_burst = 400.0
    global_rate = 5000.0
    global_burst = 50000.0
    row_cost = 1.0              # estimated cost of one input row
    expected_queries = 20000    # rows per client per TTL that benign use stays under

The secret for keyed projections/hashes comes from ``SAS_DETECTOR_KEY`` (hex or text) or else from the
baseline file; every instance must share it, or near-duplicates would not match across instances.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

from sas.config import ENV
from sas.runtime.baseline import as_baseline
from sas.runtime.detectors.abuse import AbuseDetector
from sas.runtime.detectors.adversarial import AdversarialDetector
from sas.runtime.detectors.base import Detector
from sas.runtime.detectors.extraction import ExtractionDetector
from sas.runtime.detectors.model_guard import GuardSettings, ModelGuard
from sas.runtime.state import StateBackend, open_state


def settings_from(table: Mapping[str, Any]) -> GuardSettings:
    known = {f.name for f in fields(GuardSettings)}
    values = {k: float(v) for k, v in table.items() if k in known and isinstance(v, (int, float))}
    return GuardSettings(**values)


def detector_key(env: Mapping[str, str]) -> bytes | None:
    raw = env.get(ENV["detector_key"], "")
    if not raw:
        return None
    try:
        return bytes.fromhex(raw)
    except ValueError:
        return raw.encode()


def model_detectors(
    config: Mapping[str, Any],
    baseline: Any,
    *,
    env: Mapping[str, str] | None = None,
    state: StateBackend | None = None,
    on_degrade: Callable[[str], None] | None = None,
) -> tuple[ModelGuard, list[Detector]]:
    """One shared :class:`ModelGuard` and the three detectors reading it (extraction, probing, abuse)."""
    env = os.environ if env is None else env
    runtime = config.get("runtime", {})
    table: Mapping[str, Any] = runtime.get("model", {}) if isinstance(runtime, Mapping) else {}
    if not isinstance(table, Mapping):
        table = {}
    if state is None:
        spec = env.get(ENV["state"]) or str(table.get("state", "memory"))
        state = open_state(
            spec,
            prefix=str(table.get("prefix", "sas")),
            client_ttl=float(table.get("client_ttl", 86_400.0)),
            on_degrade=on_degrade,
        )
    guard = ModelGuard(as_baseline(baseline), state, settings_from(table), key=detector_key(env))
    return guard, [ExtractionDetector(guard), AdversarialDetector(guard), AbuseDetector(guard)]
