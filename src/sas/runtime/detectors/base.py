"""The detector interface: what every request-level detector implements.

A detector is a small object with up to four hooks, all optional, all called on the hot path:

``on_request(ctx)``
    before the handler runs, with the :class:`~sas.runtime.context.RequestContext` (payload, size, client
    identity...). Input validation, rate limits and per-client history live here.
``on_model_input(ctx, inputs)``
    inside ``shield.guard_model(predict)``, just before the model is called, with the exact inputs.
``on_model_output(ctx, inputs, outputs)``
    inside ``guard_model`` just after the model answered and before the handler sees the answer
    (extraction and adversarial/OOD detectors look at both).
``bind_model(predict, baseline)``
    once, when ``guard_model`` wraps a model; ``baseline`` is whatever the caller handed over (reference
    inputs, training statistics) for detectors that need one.

Each hook returns ``None`` (nothing to say) or a :class:`Detection`: a score in ``[0, 1]``, a verdict
(``allow``, ``alert`` or ``block``) and, for a block, the HTTP status the caller gets (400 invalid input,
403 policy, 413 too large, 429 rate). The :class:`~sas.runtime.shield.Shield` turns a ``block`` into an
``alert`` in monitor mode, records every non-``allow`` detection as a runtime event, and in enforce mode
answers with the platform's own error response. The ``reason`` is shown to the caller, so it must reveal
nothing internal ("invalid input", never the schema or the score); ``details`` go only to the ledger.

Hooks the detector does not override cost nothing: the Shield only calls the ones a class defines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from sas.events.record import Verdict
from sas.runtime.context import RequestContext
from sas.taxonomy import Severity, Threat

# The public reason for each status; detectors may pass their own, but it is shown to the caller.
PUBLIC_REASONS: Mapping[int, str] = {
    400: "invalid request",
    403: "request refused",
    413: "request too large",
    429: "too many requests",
}


@dataclass(frozen=True, slots=True, init=False)
class Detection:
    """One detector's opinion about one request."""

    detector: str
    threat: Threat
    severity: Severity
    verdict: Verdict
    score: float = 1.0
    status: int = 403
    reason: str = ""
    event: str = "detection"
    details: Mapping[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        detector: str,
        threat: Threat,
        severity: Severity,
        verdict: Verdict,
        score: float = 1.0,
        status: int = 403,
        reason: str = "",
        event: str = "detection",
        details: Mapping[str, Any] | None = None,
    ) -> None:
        # What the dataclass would generate, minus its cost: a frozen class's generated __init__ sets every
        # field through object.__setattr__ (~2 us for nine fields, paid by every detection of a flagged
        # request); the slots' own descriptors set them directly.
        _set_detector(self, detector)
        _set_threat(self, threat)
        _set_severity(self, severity)
        _set_verdict(self, verdict)
        _set_score(self, score)
        _set_status(self, status)
        _set_reason(self, reason)
        _set_event(self, event)
        _set_details(self, {} if details is None else details)

    @property
    def public_reason(self) -> str:
        return self.reason or PUBLIC_REASONS.get(self.status, "request refused")


(
    _set_detector,
    _set_threat,
    _set_severity,
    _set_verdict,
    _set_score,
    _set_status,
    _set_reason,
    _set_event,
    _set_details,
) = (Detection.__dict__[f.name].__set__ for f in fields(Detection))


class Detector:
    """Base class for request-level detectors; subclass and override the hooks you need.

    ``name`` identifies the detector in events; ``threat`` and ``severity`` are its defaults, used by
    :meth:`block` and :meth:`alert`.
    """

    name: ClassVar[str] = "detector"
    threat: ClassVar[Threat] = Threat.ADVERSARIAL_INPUT
    severity: ClassVar[Severity] = Severity.MEDIUM

    def on_request(self, ctx: RequestContext) -> Detection | None:
        return None

    def on_model_input(self, ctx: RequestContext | None, inputs: Any) -> Detection | None:
        return None

    def on_model_output(self, ctx: RequestContext | None, inputs: Any, outputs: Any) -> Detection | None:
        return None

    def bind_model(self, predict: Callable[..., Any], baseline: Any = None) -> None:
        return None

    # helpers for subclasses
    def block(
        self, status: int, *, score: float = 1.0, reason: str = "", severity: Severity | None = None, **details: Any
    ) -> Detection:
        return Detection(
            self.name,
            self.threat,
            severity or self.severity,
            Verdict.BLOCK,
            score=score,
            status=status,
            reason=reason,
            details=details,
        )

    def alert(self, *, score: float = 1.0, severity: Severity | None = None, **details: Any) -> Detection:
        return Detection(self.name, self.threat, severity or self.severity, Verdict.ALERT, score=score, details=details)


def overrides(detector: Detector, hook: str) -> bool:
    """Whether ``detector`` defines ``hook`` itself (so the Shield can skip hooks that would return None)."""
    return getattr(type(detector), hook) is not getattr(Detector, hook)
