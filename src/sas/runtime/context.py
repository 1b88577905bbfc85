"""The one request record every platform adapter produces and every detector reads.

A platform adapter (``platforms/aws.py``, ``azure.py``, ``gcp.py``) turns its own event into a
:class:`RequestContext`; detectors never see platform objects, so a detector written once works on all
three clouds. The request in flight is also kept in a :mod:`contextvars` variable so that code far from the
adapter (``Shield.guard_model``, the audit hook, the cloud-SDK monitor) can attribute what it sees to the
request that caused it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

# Sentinel for "the body is not valid JSON", distinct from a JSON ``null``.
INVALID_JSON: Any = object()
_UNPARSED: Any = object()


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What a detector knows about one request.

    ``body`` is the raw request body (``None`` for a direct, non-HTTP invocation whose payload is already a
    Python object, held in ``payload``). ``size`` is the body length in bytes (for direct invocations, the
    length of the payload's JSON encoding). ``client_id`` is the strongest identity the adapter found,
    prefixed by its source (``principal:``, ``api_key:``, ``ip:``); ``client_source`` names that source.
    ``headers`` keys are lower-case.
    """

    request_id: str
    client_id: str
    platform: str
    function: str
    instance_id: str
    body: bytes | None = None
    payload: Any = None
    size: int = 0
    client_source: str = ""
    source_ip: str = ""
    method: str = ""
    path: str = ""
    kind: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    # Parsed JSON, filled on first use; a one-slot list because the record itself is frozen.
    _parsed: list[Any] = field(default_factory=lambda: [_UNPARSED], repr=False, compare=False)

    @property
    def is_http(self) -> bool:
        return self.body is not None

    def json(self) -> Any:
        """The body parsed as JSON (once per request); :data:`INVALID_JSON` when it does not parse.

        A direct invocation's payload is returned as is. An empty HTTP body is ``None``.
        """
        cached = self._parsed[0]
        if cached is not _UNPARSED:
            return cached
        if self.body is None:
            value = self.payload
        elif not self.body.strip():
            value = None
        else:
            try:
                value = json.loads(self.body)
            except (ValueError, RecursionError):
                value = INVALID_JSON
        self._parsed[0] = value
        return value


_CURRENT: ContextVar[RequestContext | None] = ContextVar("sas_request", default=None)


def current_request() -> RequestContext | None:
    """The request being handled in this thread/task, or ``None`` outside a shielded invocation."""
    return _CURRENT.get()


def set_current(ctx: RequestContext | None) -> Any:
    return _CURRENT.set(ctx)


def reset_current(token: Any) -> None:
    _CURRENT.reset(token)
