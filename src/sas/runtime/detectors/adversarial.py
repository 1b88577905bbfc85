"""Adversarial probing: the query pattern of decision-based evasion (HopSkipJump, Boundary, sign attacks).

Those attacks need thousands of queries that sit close to each other and to the decision boundary. Per
client, the keyed near-duplicate buckets (ring of recent bucket ids in the shared state), closeness to the
recent sketches and the low-margin share feed one sequential test (see :mod:`.model_guard`); the keyed
projection and hash make collisions unpredictable to the attacker and cost microseconds. The per-input
out-of-distribution score (Mahalanobis distance², range) is in every detection's details and feeds the
extraction test; on its own a single odd input is not a verdict (its false-positive rate per request would
flag every busy benign client sooner or later).
"""

from __future__ import annotations

from typing import Any, ClassVar

from sas.runtime.context import RequestContext
from sas.runtime.detectors.base import Detection
from sas.runtime.detectors.extraction import GuardedDetector
from sas.runtime.detectors.model_guard import ModelGuard
from sas.taxonomy import Severity, Threat


class AdversarialDetector(GuardedDetector):
    name: ClassVar[str] = "adversarial-probing"
    threat: ClassVar[Threat] = Threat.ADVERSARIAL_INPUT
    severity: ClassVar[Severity] = Severity.HIGH

    def __init__(self, guard: ModelGuard) -> None:
        super().__init__(guard)
        self._alarm, self._sybil_alarm = self._alarms(guard.baseline.adversarial_alarm)

    def on_model_output(self, ctx: RequestContext | None, inputs: Any, outputs: Any) -> Detection | None:
        memo = self.guard.memo  # assessed already by the extraction detector (guard.assess, written out)
        if memo is not None and memo[1] is inputs and memo[0] == (ctx.request_id if ctx is not None else ""):
            a = memo[2]
        else:
            a = self.guard.assess(ctx, inputs, outputs)
        if a is None or a.adversarial_level == 0:
            return None
        alarm = self._sybil_alarm if a.sybil else self._alarm
        return self._detection("adversarial-probing", a.adversarial_level, a.adversarial_risk, alarm, a)
