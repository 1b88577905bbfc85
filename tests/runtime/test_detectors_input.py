"""Input validation: size, JSON, and the feature schema."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sas.runtime.detectors.input_validation import SchemaError, _non_finite, validate_features
from sas.runtime.policy import InputSchema

SCHEMA = InputSchema(field="features", shape=(-1, 3), dtype="number", min=(0.0,), max=(10.0, 10.0, 1.0))


@pytest.mark.parametrize(
    "data",
    [
        {"features": [[1, 2, 0.5]]},
        {"features": [[1, 2, 0.5], [0, 0, 0]]},
    ],
)
def test_valid_features(data: object) -> None:
    validate_features(data, SCHEMA)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"features": [[1, 2]]}, "shape"),
        ({"features": [1, 2, 3]}, "nested"),
        ({"features": [[1, 2, 0.5], [1, 2]]}, "ragged"),
        ({"features": [[1, 2, math.nan]]}, "NaN"),
        ({"features": [[1, 2, math.inf]]}, "NaN"),
        ({"features": [[1, 2, True]]}, "not a number"),
        ({"features": [[1, "2", 0.5]]}, "not a number"),
        ({"features": [[1, 2, 0.9], [1, 2, 5]]}, "above"),
        ({"features": [[-1, 2, 0.5]]}, "below"),
        ({"other": []}, "missing"),
        ([1, 2, 3], "missing"),
    ],
)
def test_invalid_features(data: object, problem: str) -> None:
    with pytest.raises(SchemaError, match=problem):
        validate_features(data, SCHEMA)


def test_integer_dtype_and_fixed_shape() -> None:
    schema = InputSchema(field="", shape=(2,), dtype="int")
    validate_features([1, 2], schema)
    with pytest.raises(SchemaError):
        validate_features([1, 2.5], schema)
    with pytest.raises(SchemaError):
        validate_features([1, 2, 3], schema)


def test_deeply_nested_input_is_refused_not_a_crash() -> None:
    deep: object = 1.0
    for _ in range(5000):
        deep = [deep]
    with pytest.raises((SchemaError, RecursionError)):
        validate_features({"features": deep}, SCHEMA)


def test_finite_features_whose_sum_overflows_are_accepted() -> None:
    # the NaN/Inf check first looks at the row's sum; an overflowing sum must fall back to each value
    validate_features({"x": [1e308, 1e308, 5.0]}, InputSchema(field="x", shape=(3,)))
    with pytest.raises(SchemaError, match="feature 2 is NaN"):
        validate_features({"x": [1e308, 1e308, math.nan]}, InputSchema(field="x", shape=(3,)))


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((1, 4)),
        np.array([[1.0, np.nan]]),
        np.array([[1e308, 1e308]]),  # finite values whose sum overflows
        np.array([[1e308, np.inf]]),
        np.array([[1.0], [np.nan]]),
        np.zeros(3, dtype=np.float32),
        np.array([np.nan], dtype=np.float16),
        np.array([-np.inf], dtype=np.float32),
        np.zeros((2, 2, 2)),
        np.array([[[np.inf]]]),
        np.zeros((0, 3)),
        np.array([[1.0, np.nan]], dtype=np.longdouble),  # wider than a double: the ufunc path
        np.full((80, 80), 1.0),  # beyond the small-array path
        np.arange(6).reshape(2, 3),  # integers: never NaN
        np.array([[1 + 1j, complex(np.nan, 0)]]),
    ],
)
def test_model_input_nan_check_agrees_with_numpy(array: np.ndarray) -> None:
    expected = array.dtype.kind in "fc" and not bool(np.isfinite(array).all())
    assert _non_finite(array) == expected
