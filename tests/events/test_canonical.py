"""Canonical entries: deterministic sorted JSON whose first bytes name the sub-log and position."""

from __future__ import annotations

import itertools
import json
import math

from sas.events import RuntimeEvent, Verdict
from sas.events.canonical import (
    MAX_ENTRY_BYTES,
    _stdlib_dumps,
    decode_entry,
    dumps,
    encode_entry,
    entry_event,
    entry_origin_seq,
    safe_origin,
)


def event(**over: object) -> RuntimeEvent:
    base: dict[str, object] = dict(
        time=1_790_000_000.125,
        event="detection",
        detector="extraction",
        category="model",
        threat="model-extraction",
        severity="high",
        verdict=Verdict.BLOCK,
        request_id="r-1",
        client_id="203.0.113.9",
        instance_id="i-1",
        function="f",
        platform="aws",
        details={"z": 1, "a": {"y": 2, "b": [1, 2]}, "text": "línea\nnueva \u2028"},
    )
    base.update(over)
    return RuntimeEvent(**base)  # type: ignore[arg-type]


def test_entry_is_sorted_compact_json_with_ledger_fields_first() -> None:
    data = encode_entry(event(), "sas-ledger/f/i-1", 12)
    assert data.startswith(b'{"_sas_log":"sas-ledger/f/i-1","_sas_seq":12,"category":"model"')
    assert b"\n" not in data  # one line, always
    obj = json.loads(data)
    assert json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() == data
    assert entry_origin_seq(data) == ("sas-ledger/f/i-1", 12)
    restored = entry_event(obj)
    assert restored is not None and restored.verdict is Verdict.BLOCK and restored.details["a"] == {"y": 2, "b": [1, 2]}


def test_same_event_same_bytes_regardless_of_dict_order() -> None:
    a = event(details={"x": 1, "y": {"q": 1, "p": 2}})
    b = event(details={"y": {"p": 2, "q": 1}, "x": 1})
    assert encode_entry(a, "o", 1) == encode_entry(b, "o", 1)


def test_stdlib_fallback_agrees_on_ordinary_events() -> None:
    record = json.loads(encode_entry(event(), "o", 3))
    assert _stdlib_dumps(record) == dumps(record)


def test_hostile_details_stay_valid_json() -> None:
    nasty = {1: "int key", "nan": math.nan, "inf": math.inf, "obj": object(), "big": 2**70, "deep": [[[[]]]]}
    data = encode_entry(event(details=nasty), "o", 0)
    obj = decode_entry(data)
    assert obj is not None and obj["details"]["nan"] is None and obj["details"]["1"] == "int key"


def test_oversized_details_are_replaced_by_their_digest() -> None:
    data = encode_entry(event(details={"blob": "x" * (MAX_ENTRY_BYTES * 2)}), "o", 0)
    assert len(data) < MAX_ENTRY_BYTES
    details = json.loads(data)["details"]
    assert details["_truncated"] is True and len(details["_sha256"]) == 64


def test_origin_is_sanitised_so_lines_can_be_sliced() -> None:
    origin = safe_origin("sas-ledger", 'fn "quoted"', "2026/11/20/[$LATEST]abc\\def")
    assert '"' not in origin and "\\" not in origin and " " not in origin and "\n" not in origin
    data = encode_entry(event(), origin, 5)
    assert entry_origin_seq(data) == (origin, 5)


def test_non_entries_are_not_mistaken_for_entries() -> None:
    assert entry_origin_seq(b'{"_sas_checkpoint":"o"}') is None
    assert entry_origin_seq(b'{"_sas_log":"o","_sas_seq":x}') is None
    assert decode_entry(b"not json") is None


def test_fast_encoding_is_byte_identical_to_sorting_the_whole_record() -> None:
    """encode_fields writes the top level in order and sorts only details: it must equal a full sort."""
    import orjson

    from sas.events.canonical import encode_fields, encode_summary, summary_runs

    shapes: list[dict[object, object]] = [
        {},
        {"z": 1, "a": {"y": 2, "b": [1, {"d": 1, "c": 2}]}, "text": "línea\nnueva \u2028"},
        {3: "int key", "2": "str key", "nan": float("nan"), "inf": float("-inf")},
        {"big": 2**70, "tuple": (1, 2), "set_like": frozenset({1})},  # beyond orjson: the stdlib path
        {"detections": ["model-extraction"], "duration_ms": 1.5, "sdk_calls": ["sts:AssumeRole"], "size": 3},
        # the invocation summary's usual two details (encoded in one orjson call), in either order
        {"duration_ms": 1.5, "size": 3},
        {"size": 3, "duration_ms": 0.001},
        {"duration_ms": float("nan"), "size": 0},
        {"duration_ms": 2, "size": 3.0},  # not the usual types: the general path
    ]
    summary_fields = dict(event="invocation", detector="shield", category="", threat="", severity="info")
    # the summary's own fields too: a function, client and request id that need escaping
    summary_fields |= dict(verdict=Verdict.ALLOW, function='fn "q" \u2028é', client_id="ip:::1", request_id="r\\1")
    for details, kind in itertools.product(shapes, ("detection", "summary")):
        e = event(details=details, **(summary_fields if kind == "summary" else {}))
        fields = (e.time, e.event, e.detector, e.category, e.threat, e.severity, e.verdict, e.request_id)
        line = encode_fields("o/f/i", 7, *fields, e.client_id, e.instance_id, e.function, e.platform, details)
        record = {"_sas_log": "o/f/i", "_sas_seq": 7, **e.to_dict(), "verdict": e.verdict}
        try:
            expected = orjson.dumps(
                record, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE, default=str
            )
        except TypeError:
            expected = _stdlib_dumps(record) + b"\n"
        assert line == expected, details
        if kind == "summary":  # the invocation summary's own path (constant runs as fragments) gives the same bytes
            runs = summary_runs(e.function, e.instance_id, e.platform)
            args = (e.time, e.verdict, e.request_id, e.client_id, e.instance_id, details)
            assert encode_summary("o/f/i", 7, runs, *args) == expected, details
