"""Request checks: payload size (413), malformed JSON (400), and the model's feature schema (400).

The schema check is plain Python over nested lists (shape, dtype, ranges, NaN/Inf), because a request's
feature vector is small and parsing it with numpy would cost more than the check; no jsonschema, which is
slow to import and cannot express "a finite float in [min, max]" per feature. Inside ``guard_model`` the
same NaN/Inf rule is applied to the array the model actually gets, using numpy only if the caller already
loaded it. Python's ``json`` accepts the non-standard ``NaN``/``Infinity`` tokens, so those reach the schema
check and are refused there.
"""

from __future__ import annotations

import math
import sys
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


def _leaves(value: Any, depth: int) -> list[Any]:
    if depth == 0:
        return [value]
    if not isinstance(value, list):
        raise SchemaError("ragged or non-list value")
    out: list[Any] = []
    for item in value:
        out.extend(_leaves(item, depth - 1))
    return out


def validate_features(data: Any, schema: InputSchema) -> None:
    """Raise :class:`SchemaError` when ``data`` (the parsed JSON body) does not fit ``schema``."""
    value = _field(data, schema.field)
    depth = len(schema.shape) if schema.shape else 1
    dims = _shape(value, depth)
    mismatch = len(dims) != len(schema.shape) or any(
        want not in (-1, got) for want, got in zip(schema.shape, dims, strict=False)
    )
    if schema.shape and mismatch:
        raise SchemaError(f"shape {dims} does not match {list(schema.shape)}")
    # every row must have the same width as the first: _leaves raises on ragged input below
    leaves = _leaves(value, depth)
    width = dims[-1] if dims else 0
    if width and len(leaves) % width:
        raise SchemaError("ragged input")
    lows, highs = schema.min, schema.max
    for index, x in enumerate(leaves):
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise SchemaError(f"feature {index % max(width, 1)} is not a number")
        if schema.dtype == "int" and not isinstance(x, int):
            raise SchemaError(f"feature {index % max(width, 1)} is not an integer")
        if isinstance(x, float) and not math.isfinite(x):
            if schema.allow_nan:
                continue
            raise SchemaError(f"feature {index % max(width, 1)} is NaN or infinite")
        column = index % width if width else 0
        if lows and x < (lows[column] if len(lows) > 1 and column < len(lows) else lows[0]):
            raise SchemaError(f"feature {column} below its minimum")
        if highs and x > (highs[column] if len(highs) > 1 and column < len(highs) else highs[0]):
            raise SchemaError(f"feature {column} above its maximum")


def _non_finite(inputs: Any) -> bool:
    """Whether a model input holds NaN/Inf: numpy arrays (if numpy is loaded) or nested lists of floats."""
    np = sys.modules.get("numpy")
    if np is not None and isinstance(inputs, np.ndarray):
        if inputs.dtype.kind not in "fc":
            return False
        return not bool(np.isfinite(inputs).all())
    if isinstance(inputs, float):
        return not math.isfinite(inputs)
    if isinstance(inputs, (list, tuple)):
        return any(_non_finite(x) for x in inputs[:10_000])
    return False


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
        if not (self.require_json or self.schema):
            return None
        if ctx.is_http and not ctx.body and (self.schema is None or ctx.method in {"GET", "HEAD", "OPTIONS"}):
            return None
        data = ctx.json()
        if data is INVALID_JSON:
            return self.block(400, check="json")
        if self.schema is not None and (data is not None or ctx.is_http):
            try:
                validate_features(data, self.schema)
            except (SchemaError, RecursionError) as exc:
                return self.block(400, check="schema", problem=str(exc)[:200])
        return None

    def on_model_input(self, ctx: RequestContext | None, inputs: Any) -> Detection | None:
        if not self.allow_nan and _non_finite(inputs):
            return self.block(400, check="model-input", problem="NaN or infinite feature")
        return None
