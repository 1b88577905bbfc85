"""Request checks: payload size (413), malformed JSON (400), and the model's feature schema (400).

The schema check is plain Python over nested lists (shape, dtype, ranges, NaN/Inf), because a request's
feature vector is small and parsing it with numpy would cost more than the check; no jsonschema, which is
slow to import and cannot express "a finite float in [min, max]" per feature. Inside ``guard_model`` the
same NaN/Inf rule is applied to the array the model actually gets, using numpy only if the caller already
loaded it. Python's ``json`` accepts the non-standard ``NaN``/``Infinity`` tokens, so those reach the schema
check and are refused there.
"""

from __future__ import annotations

import itertools
import math
import operator
import sys
from collections.abc import Callable
from typing import Any, ClassVar

from sas.runtime.context import INVALID_JSON, RequestContext
from sas.runtime.detectors.base import Detection, Detector
from sas.runtime.policy import InputSchema, RuntimePolicy
from sas.taxonomy import Severity, Threat


class SchemaError(ValueError):
    """Why a feature payload does not fit the schema (goes to the ledger, never to the caller)."""


def _field(data: Any, path: str) -> Any:
    if not path:
        return data
    if "." not in path:
        if isinstance(data, dict) and path in data:
            return data[path]
        raise SchemaError(f"missing field {path!r}")
    node = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise SchemaError(f"missing field {path!r}")
        node = node[part]
    return node


def _shape(value: Any, depth: int) -> list[int]:
    dims = []
    node = value
    for _ in range(depth):
        if not isinstance(node, list):
            raise SchemaError(f"expected {depth} nested lists")
        dims.append(len(node))
        if not node:
            break
        node = node[0]
    return dims


def _rows(value: Any, depth: int) -> list[list[Any]]:
    """The innermost lists (feature rows) of a ``depth``-deep nesting; raises on ragged nesting."""
    rows = [value]
    for _ in range(depth - 1):
        nxt: list[Any] = []
        for item in rows:
            if not isinstance(item, list):
                raise SchemaError("ragged or non-list value")
            nxt.extend(item)
        rows = nxt
    if not all(isinstance(r, list) for r in rows):
        raise SchemaError("ragged or non-list value")
    return rows


_NUMBER_TYPES = frozenset({int, float})


def _check_row(row: list[Any], schema: InputSchema, width: int) -> None:
    # map/min/max over the row run in C: a 64-feature row costs a couple of microseconds, not a Python loop
    if width and len(row) != width:
        raise SchemaError("ragged input")
    types = set(map(type, row))
    if float in types:
        if not types <= _NUMBER_TYPES:
            _not_a_number(row)
        if schema.dtype == "int":
            column = next(i for i, x in enumerate(row) if type(x) is float)
            raise SchemaError(f"feature {column} is not an integer")
        # a finite sum proves every value finite (a NaN or an infinity makes it NaN or infinite): one C loop;
        # when it is not (a NaN, or finite values whose sum overflows), each value is looked at
        try:
            finite = math.isfinite(sum(row))
        except OverflowError:
            finite = False
        if not finite and not all(map(math.isfinite, row)):
            if not schema.allow_nan:
                column = next(i for i, x in enumerate(row) if not math.isfinite(x))
                raise SchemaError(f"feature {column} is NaN or infinite")
            row = [x for x in row if math.isfinite(x)]
            if len(schema.min) > 1 or len(schema.max) > 1:
                return  # per-feature bounds cannot be lined up once NaNs are dropped
    elif types != _INT_ONLY:
        if not row:
            return
        _not_a_number(row)
    if not row:
        return
    low, high = schema.min, schema.max
    if low:
        if len(low) == 1:
            if not min(row) >= low[0]:
                _out_of_bounds(row, low, operator.ge, "below its minimum")
        elif not all(map(operator.ge, row, low)):
            _out_of_bounds(row, low, operator.ge, "below its minimum")
    if high:
        if len(high) == 1:
            if not max(row) <= high[0]:
                _out_of_bounds(row, high, operator.le, "above its maximum")
        elif not all(map(operator.le, row, high)):
            _out_of_bounds(row, high, operator.le, "above its maximum")


_INT_ONLY = frozenset({int})


def _not_a_number(row: list[Any]) -> None:
    column = next(i for i, x in enumerate(row) if type(x) not in _NUMBER_TYPES)
    raise SchemaError(f"feature {column} is not a number")


def _out_of_bounds(row: list[Any], bounds: tuple[float, ...], compare: Callable[[Any, Any], bool], word: str) -> None:
    limits = itertools.repeat(bounds[0]) if len(bounds) == 1 else bounds
    column = next(i for i, (x, b) in enumerate(zip(row, limits, strict=False)) if not compare(x, b))
    raise SchemaError(f"feature {column} {word}")


def validate_features(data: Any, schema: InputSchema) -> None:
    """Raise :class:`SchemaError` when ``data`` (the parsed JSON body) does not fit ``schema``."""
    name = schema.field
    # a top-level field, the common case, without a call
    value = data[name] if type(data) is dict and name in data else _field(data, name)
    shape = schema.shape
    if len(shape) <= 1:  # one row, the common case: no generic walk
        if type(value) is not list:
            raise SchemaError("expected 1 nested lists")
        if shape and shape[0] != -1 and shape[0] != len(value):
            raise SchemaError(f"shape {[len(value)]} does not match {list(shape)}")
        _check_row(value, schema, len(value))
        return
    depth = len(shape)
    dims = _shape(value, depth)
    mismatch = len(dims) != depth or any(want not in (-1, got) for want, got in zip(shape, dims, strict=False))
    if mismatch:
        raise SchemaError(f"shape {dims} does not match {list(shape)}")
    width = dims[-1] if len(dims) == depth else 0
    for row in _rows(value, depth):
        _check_row(row, schema, width)


# Up to this many values, a float array is checked as a Python list (tolist, then the sum's one C loop): a
# numpy ufunc call runs through a lot of machinery, which is all cache misses after a model has run.
_SMALL_ARRAY = 4096
_DOUBLE_OR_NARROWER = frozenset("efd")  # float16, float32, float64


def _non_finite(inputs: Any) -> bool:
    """Whether a model input holds NaN/Inf: numpy arrays (if numpy is loaded) or nested lists of floats."""
    np = sys.modules.get("numpy")
    if np is not None and isinstance(inputs, np.ndarray):
        dtype = inputs.dtype
        if dtype.char in _DOUBLE_OR_NARROWER and inputs.size <= _SMALL_ARRAY:  # tolist() makes Python floats
            ndim = inputs.ndim
            if ndim == 2:  # a batch of rows, the usual model input: no flattened copy (ravel) to make
                rows = inputs.tolist()
                if math.isfinite(sum(map(sum, rows))):
                    return False
                return not all(map(math.isfinite, itertools.chain.from_iterable(rows)))
            values = inputs.ravel().tolist() if ndim != 1 else inputs.tolist()
            return not (math.isfinite(sum(values)) or all(map(math.isfinite, values)))
        if dtype.kind not in "fc":
            return False
        # the ufunc's own reduce, not ndarray.all(), which goes through a Python wrapper in numpy
        return not bool(np.logical_and.reduce(np.isfinite(inputs), axis=None))
    if isinstance(inputs, float):
        return not math.isfinite(inputs)
    if isinstance(inputs, (list, tuple)):
        return any(_non_finite(x) for x in inputs[:10_000])
    return False


_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class InputValidationDetector(Detector):
    """Size limit, JSON well-formedness and the optional feature schema, from ``[runtime.input]``."""

    name: ClassVar[str] = "input-validation"
    threat: ClassVar[Threat] = Threat.ADVERSARIAL_INPUT
    severity: ClassVar[Severity] = Severity.LOW

    def __init__(self, policy: RuntimePolicy) -> None:
        self.max_body_bytes = policy.max_body_bytes
        self.require_json = policy.require_json
        self.schema = policy.schema
        self.allow_nan = policy.schema.allow_nan if policy.schema else False

    def on_request(self, ctx: RequestContext) -> Detection | None:
        if ctx.size > self.max_body_bytes:
            return self.block(413, severity=Severity.MEDIUM, check="size", size=ctx.size, limit=self.max_body_bytes)
        schema = self.schema
        if schema is None and not self.require_json:
            return None
        body = ctx.body  # None: a direct invocation, whose payload is already parsed
        if body is not None and not body and (schema is None or ctx.method in _NO_BODY_METHODS):
            return None
        data = ctx.json()
        if data is INVALID_JSON:
            return self.block(400, check="json")
        if schema is not None and (data is not None or body is not None):
            try:
                validate_features(data, schema)
            except (SchemaError, RecursionError) as exc:
                return self.block(400, check="schema", problem=str(exc)[:200])
        return None

    def on_model_input(self, ctx: RequestContext | None, inputs: Any) -> Detection | None:
        if not self.allow_nan and _non_finite(inputs):
            return self.block(400, check="model-input", problem="NaN or infinite feature")
        return None
