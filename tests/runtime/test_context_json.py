"""The request body parser takes orjson's fast path only where it gives exactly what ``json.loads`` gives."""

from __future__ import annotations

import json
import math

import pytest

from sas.runtime.context import INVALID_JSON, RequestContext


def parse(body: bytes) -> object:
    return RequestContext("r", "c", "aws", "f", "i", body=body).json()


@pytest.mark.parametrize(
    "body",
    [
        b'{"features": [1.5, 2, -3e5]}',
        b"12345678901234567890123",  # beyond 64 bits: orjson would make it a float
        b"-9223372036854775809",
        b"18446744073709551615",
        b'{"a": 1, "a": 2}',
        b'"\\ud800"',  # a lone surrogate: orjson refuses it, json accepts it
        b"\xef\xbb\xbf{}",
        b"  [0.1]  ",
    ],
)
def test_body_parses_like_the_stdlib(body: bytes) -> None:
    got = parse(body)
    want = json.loads(body)
    assert repr(got) == repr(want) and type(got) is type(want)


def test_nan_and_infinity_tokens_still_reach_the_schema_check() -> None:
    got = parse(b'{"features": [NaN, Infinity]}')
    assert isinstance(got, dict) and all(not math.isfinite(v) for v in got["features"])


@pytest.mark.parametrize("body", [b'{"a": 1}x', b"[" * 5000, b"{", b"\xff"])
def test_invalid_json_is_flagged(body: bytes) -> None:
    assert parse(body) is INVALID_JSON
