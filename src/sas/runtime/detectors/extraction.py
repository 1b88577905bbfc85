"""Model extraction: a per-client sequential test over the shared counters (see :mod:`.model_guard`).

Fuses out-of-distribution share, boundary-probing share (low margin), PRADA-style closeness to the
client's recent queries, label-histogram drift from the benign class prior and query volume into one
calibrated log-likelihood ratio. Above the alarm a client is *suspicious*: the request is allowed but its
output is degraded to the top-1 label (enforce mode) and its token bucket refills slowly (429s follow);
above ``block_factor`` times the alarm, requests are refused (403). A client this instance already saw at
block level is refused before the model runs, without a state round trip.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any, ClassVar

from sas.events.record import Verdict
from sas.runtime.context import RequestContext
from sas.runtime.detectors.base import Detection, Detector
from sas.runtime.detectors.model_guard import Assessment, ModelGuard, degrade_outputs, round3
from sas.taxonomy import Severity, Threat

_Alarm = tuple[float, float, float]  # (alarm, block level, alarm rounded for the ledger)
_HIGH, _MEDIUM, _BLOCK, _ALERT = Severity.HIGH, Severity.MEDIUM, Verdict.BLOCK, Verdict.ALERT
_floor = math.floor


class GuardedDetector(Detector):
    """Shared plumbing of the detectors that read one :class:`ModelGuard` assessment."""

    uses_baseline: ClassVar[bool] = True

    def __init__(self, guard: ModelGuard) -> None:
        self.guard = guard

    def _alarms(self, alarm: float) -> tuple[_Alarm, _Alarm]:
        """``alarm`` as it stands, and lowered by the Sybil factor: (alarm, block level, alarm for the ledger)."""
        lowered = alarm * self.guard.settings.sybil_factor
        bf = self.guard.baseline.block_factor
        return (alarm, alarm * bf, round3(alarm)), (lowered, lowered * bf, round3(lowered))

    def bind_model(self, predict: Any, baseline: Any = None) -> None:
        return None  # built with its baseline already; the Shield calls this for every detector

    def degrade(self, outputs: Any) -> Any:
        """What a suspicious client gets instead of the model's full output (enforce mode)."""
        return degrade_outputs(outputs)

    def _detection(self, event: str, level: int, risk: float, threshold: _Alarm, a: Assessment) -> Detection:
        alarm, block, rounded = threshold
        x = risk / block if alarm > 0 else 1.0
        score = x if 0.0 <= x <= 1.0 else 0.0 if x < 0.0 else 1.0  # NaN: 1.0
        ledger = a.ledger
        if ledger is None:  # not judged by the guard's tests (they attach it whenever a level is raised)
            c = self.guard.ledger_counts(a)
            ledger = (c["counts"], c["request"])
        details: dict[str, Any] = {
            "risk": _floor(risk * 1000.0 + 0.5) / 1000.0 if -1e15 < risk < 1e15 else risk,  # round3, written out
            "alarm": rounded,
            "level": "block" if level == 2 else "suspicious",
            "counts": ledger[0],
            "request": ledger[1],
        }
        if a.sybil:
            details["sybil"] = list(a.sybil)
        if a.degraded:
            details["state_degraded"] = True
        if level == 2:
            return Detection(self.name, self.threat, _HIGH, _BLOCK, score, 403, "", event, details)
        return Detection(self.name, self.threat, _MEDIUM, _ALERT, score, 403, "", event, details)


class ExtractionDetector(GuardedDetector):
    name: ClassVar[str] = "model-extraction"
    threat: ClassVar[Threat] = Threat.MODEL_EXTRACTION
    severity: ClassVar[Severity] = Severity.HIGH

    def __init__(self, guard: ModelGuard) -> None:
        super().__init__(guard)
        self._alarm, self._sybil_alarm = self._alarms(guard.baseline.extraction_alarm)
        # the same answer for every request of a client this instance already blocked (immutable: shared)
        self._cached_block = Detection(
            self.name,
            self.threat,
            Severity.HIGH,
            Verdict.BLOCK,
            status=403,
            event="model-extraction",
            details=MappingProxyType({"level": "block", "cached": True}),
        )
        self._refused: tuple[str, Any] | None = None  # (request id, inputs) answered with the cached block

    def on_model_input(self, ctx: RequestContext | None, inputs: Any) -> Detection | None:
        client = ctx.client_id if ctx is not None and ctx.client_id else "anonymous"
        guard = self.guard
        found = guard.levels.get(client)  # most clients: not there
        # a level-2 client still remembered: known_level() written out; anything else asks it (it forgets)
        if found is not None and ((found[0] >= 2 and guard.clock() <= found[1]) or guard.known_level(client) >= 2):
            # remembered so that the same request, let through in monitor mode, is not reported twice
            self._refused = (ctx.request_id if ctx is not None else "", inputs)
            return self._cached_block
        return None

    def on_model_output(self, ctx: RequestContext | None, inputs: Any, outputs: Any) -> Detection | None:
        a = self.guard.assess(ctx, inputs, outputs)
        refused = self._refused
        if refused is not None:
            self._refused = None
            if refused[1] is inputs and refused[0] == (ctx.request_id if ctx is not None else ""):
                return None  # this request's block is on record already (on_model_input)
        if a is None or a.extraction_level == 0:
            return None
        alarm = self._sybil_alarm if a.sybil else self._alarm
        return self._detection("model-extraction", a.extraction_level, a.extraction_risk, alarm, a)
