"""Runtime protection inside the function: ``Shield``, request detectors, process monitors, platform adapters.

Loaded in every cold start, so it imports only the stdlib and the floor (``sas.config``, ``sas.events``,
``sas.taxonomy``); platform adapters, Powertools and the integrity manifest are imported on first use.
"""

from sas.runtime.context import RequestContext, current_request
from sas.runtime.detectors.base import Detection, Detector
from sas.runtime.monitors.audit import PolicyViolation
from sas.runtime.shield import ColdStartIntegrityError, RequestBlocked, Shield

__all__ = [
    "ColdStartIntegrityError",
    "Detection",
    "Detector",
    "PolicyViolation",
    "RequestBlocked",
    "RequestContext",
    "Shield",
    "current_request",
]
