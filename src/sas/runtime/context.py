"""The one request record every platform adapter produces and every detector reads.

A platform adapter (``platforms/aws.py``, ``azure.py``, ``gcp.py``) turns its own event into a
:class:`RequestContext`; detectors never see platform objects, so a detector written once works on all
three clouds. The request in flight is also kept in a :mod:`contextvars` variable so that code far from the
adapter (``Shield.guard_model``, the audit hook, the cloud-SDK monitor) can attribute what it sees to the
request that caused it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

_fast_loads: Callable[[bytes], Any] | None
try:  # a core dependency (the ledger uses it); ~5x faster than json.loads on a feature vector
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover
    _fast_loads = None
# orjson reads an integer beyond 64 bits as a float; json.loads keeps it an int. Bodies with a run of 19 digits
# take the stdlib (found by mapping every digit to "0" and searching: ~10x faster than a regular expression).
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19
# Sentinel for "the body is not valid JSON", distinct from a JSON ``null``.
INVALID_JSON: Any = object()
_UNPARSED: Any = object()


@dataclass(frozen=True, slots=True, init=False)
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
    # The parsed JSON body, filled on first use (through the slot's own descriptor: the record is frozen).
    _json: Any = field(default=_UNPARSED, repr=False, compare=False)

    def __init__(
        self,
        request_id: str,
        client_id: str,
        platform: str,
        function: str,
        instance_id: str,
        body: bytes | None = None,
        payload: Any = None,
        size: int = 0,
        client_source: str = "",
        source_ip: str = "",
        method: str = "",
        path: str = "",
        kind: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        # What the dataclass would generate, minus its cost: a frozen class's generated __init__ sets each
        # field through object.__setattr__, ~2 µs per request here; the slots' own descriptors set them
        # directly (one record is made per request, before the handler runs).
        _set_request_id(self, request_id)
        _set_client_id(self, client_id)
        _set_platform(self, platform)
        _set_function(self, function)
        _set_instance_id(self, instance_id)
        _set_body(self, body)
        _set_payload(self, payload)
        _set_size(self, size)
        _set_client_source(self, client_source)
        _set_source_ip(self, source_ip)
        _set_method(self, method)
        _set_path(self, path)
        _set_kind(self, kind)
        _set_headers(self, {} if headers is None else headers)
        _set_json(self, _UNPARSED)

    @property
    def is_http(self) -> bool:
        return self.body is not None

    def json(self) -> Any:
        """The body parsed as JSON (once per request); :data:`INVALID_JSON` when it does not parse.

        A direct invocation's payload is returned as is. An empty HTTP body is ``None``.
        """
        value = self._json
        if value is not _UNPARSED:
            return value
        body = self.body
        if body is None:
            value = self.payload
        elif not body:
            value = None
        # json.loads semantics, through orjson when it can. orjson accepts a strict subset of what the stdlib
        # accepts (no NaN/Infinity tokens, no lone surrogates) and returns the same types for it, so whatever it
        # refuses goes to the stdlib: the schema check still sees (and refuses) a NaN feature. Long integers
        # take the stdlib too (_LONG_RUN above; find(), not ``in``: bytes.__contains__ first tries its operand
        # as an integer, raising and formatting a TypeError inside).
        elif _fast_loads is not None and type(body) is bytes and body.translate(_DIGITS_TO_ZERO).find(_LONG_RUN) < 0:
            try:
                value = _fast_loads(body)
            except ValueError:
                value = _stdlib_loads(body)
        else:
            value = _stdlib_loads(body)
        if value is INVALID_JSON and body is not None and not body.strip():  # only whitespace: an empty body
            value = None
        _set_json(self, value)
        return value


(
    _set_request_id,
    _set_client_id,
    _set_platform,
    _set_function,
    _set_instance_id,
    _set_body,
    _set_payload,
    _set_size,
    _set_client_source,
    _set_source_ip,
    _set_method,
    _set_path,
    _set_kind,
    _set_headers,
    _set_json,
) = (RequestContext.__dict__[f.name].__set__ for f in fields(RequestContext))


def _stdlib_loads(body: bytes) -> Any:
    """``json.loads``, with :data:`INVALID_JSON` for what does not parse: what :meth:`RequestContext.json`
    falls back to when orjson cannot give the same answer."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return INVALID_JSON


class Headers(Mapping[str, str]):
    """A request's headers with lower-case names and string values, converted on first use.

    Adapters hand the platform's own header mapping over as it is; most requests are never asked for a
    header, so the copy is made only when one is. ``None`` values are dropped; a non-mapping (other than a
    platform header class, see :func:`folds_case`) reads as empty.
    """

    __slots__ = ("_folded", "_lowered", "_raw")

    def __init__(self, raw: Any = None, *, folded: bool = False) -> None:
        """``folded``: ``raw`` itself looks names up regardless of case (Azure's and Werkzeug's header classes,
        see :func:`folds_case`), so :meth:`get` of one header asks it directly instead of copying them all."""
        self._raw = raw
        self._folded = folded
        self._lowered: dict[str, str] | None = None

    def _dict(self) -> dict[str, str]:
        lowered = self._lowered
        if lowered is None:
            raw = self._raw
            lowered = {}
            # Werkzeug's header classes have items() but are not registered as Mappings
            if isinstance(raw, Mapping) or (self._folded and callable(getattr(raw, "items", None))):
                lowered = {str(k).lower(): str(v) for k, v in raw.items() if v is not None}
            self._lowered = lowered
            self._raw = None
        return lowered

    def __getitem__(self, key: str) -> str:
        return self._dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        if self._folded and self._lowered is None:
            value = self._raw.get(key)
            return default if value is None else str(value)
        return self._dict().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._dict()

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())

    def __repr__(self) -> str:
        return f"Headers({self._dict()!r})"


# Header classes that find a name whatever its case, by the module that defines them; decided once per class.
_FOLDING_MODULES = ("azure.functions", "werkzeug.")
_FOLDS: dict[type, bool] = {}


def folds_case(raw: Any) -> bool:
    """Whether ``raw`` is a platform header mapping known to look names up regardless of case."""
    kind = type(raw)
    folds = _FOLDS.get(kind)
    if folds is None:
        folds = _FOLDS[kind] = kind.__module__.startswith(_FOLDING_MODULES) and hasattr(raw, "get")
    return folds


class InFlight(Protocol):
    """What the Shield keeps in :data:`IN_FLIGHT` for the request being handled: at least its context."""

    ctx: RequestContext


# One variable for the request in flight: the Shield's own record of it (verdict, detections), which holds
# the context detectors see; one set and one reset per request rather than two.
IN_FLIGHT: ContextVar[InFlight | None] = ContextVar("sas_request", default=None)


def current_request() -> RequestContext | None:
    """The request being handled in this thread/task, or ``None`` outside a shielded invocation."""
    inflight = IN_FLIGHT.get()
    return None if inflight is None else inflight.ctx
