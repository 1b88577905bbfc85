"""Abuse / denial of wallet: token buckets per client and across all clients, by requests and estimated cost.

The buckets live in the shared state and are taken in the same atomic update as the other counters (no
extra round trip): a request costs ``rows × row_cost`` tokens, so one request carrying a 10 000-row batch
counts as what it costs. A client the extraction or probing tests find suspicious is moved to a slow bucket
(the throttle step of the escalation). Exceeding either bucket answers 429.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sas.events.record import Verdict
from sas.runtime.context import RequestContext
from sas.runtime.detectors.base import Detection
from sas.runtime.detectors.extraction import GuardedDetector
from sas.taxonomy import Severity, Threat

_BLOCK = Verdict.BLOCK


class AbuseDetector(GuardedDetector):
    name: ClassVar[str] = "abuse"
    threat: ClassVar[Threat] = Threat.DENIAL_OF_WALLET
    severity: ClassVar[Severity] = Severity.MEDIUM

    def degrade(self, outputs: Any) -> Any:
        return outputs

    def on_model_output(self, ctx: RequestContext | None, inputs: Any, outputs: Any) -> Detection | None:
        memo = self.guard.memo  # assessed already by the extraction detector (guard.assess, written out)
        if memo is not None and memo[1] is inputs and memo[0] == (ctx.request_id if ctx is not None else ""):
            a = memo[2]
        else:
            a = self.guard.assess(ctx, inputs, outputs)
        if a is None or (a.client_allowed and a.global_allowed):
            return None
        scope = "client" if not a.client_allowed else "global"
        # suspect: on the slow bucket because of this assessment's level (what known_level now says)
        details = {"scope": scope, "rows": a.rows, "suspect": a.extraction_level > 0 or a.adversarial_level > 0}
        return Detection(self.name, self.threat, self.severity, _BLOCK, 1.0, 429, "", "rate-limited", details)
