"""safetensors analyzer: real files from the safetensors package, and hand-made broken ones."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from sas.scan.artifact import file_from_bytes
from sas.scan.context import ScanContext
from sas.scan.engine import scan
from sas.scan.models.safetensors_scan import SafetensorsAnalyzer
from sas.taxonomy import Severity


def build(header: dict[str, object] | bytes, data: bytes = b"") -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + data


def findings(tmp_path: Path, data: bytes, name: str = "model.safetensors") -> list[tuple[str, Severity, str]]:
    path = tmp_path / name
    path.write_bytes(data)
    return [(f.rule_id, f.severity, f.message) for f in scan(path).findings]


def rules(tmp_path: Path, data: bytes, name: str = "model.safetensors") -> set[str]:
    return {r for r, _, _ in findings(tmp_path, data, name)}


def test_real_safetensors_file_is_clean_and_inventoried(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file(
        {"w": np.ones((4, 3), np.float32), "b": np.zeros(3, np.float16), "i": np.arange(5, dtype=np.int64)},
        str(path),
        metadata={"format": "np", "note": "ok"},
    )
    result = scan(path)
    assert result.findings == ()
    (component,) = result.components
    assert (component.kind, component.format, component.size) == ("model", "safetensors", path.stat().st_size)
    assert len(component.sha256) == 64


def test_recognised_by_content_without_extension(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    save_file({"w": np.ones(2, np.float32)}, str(path))
    assert [c.format for c in scan(path).components] == ["safetensors"]


def test_header_length_past_end(tmp_path: Path) -> None:
    data = (10_000).to_bytes(8, "little") + b'{"a": 1}'
    assert "SAS-ST-001" in rules(tmp_path, data)


def test_header_length_over_cap(tmp_path: Path) -> None:
    data = (200_000_000).to_bytes(8, "little") + b"{" + b" " * 100
    assert rules(tmp_path, data) >= {"SAS-ST-001"}


def test_invalid_json(tmp_path: Path) -> None:
    assert "SAS-ST-001" in rules(tmp_path, build(b'{"w": {"dtype": "F32",'))


def test_duplicate_keys_are_ambiguous(tmp_path: Path) -> None:
    entry = b'{"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}'
    raw = b'{"w": ' + entry + b', "w": ' + entry + b"}"
    found = findings(tmp_path, build(raw, b"\0" * 4))
    assert any(r == "SAS-ST-001" and "repeats" in m for r, _, m in found)


def test_unknown_dtype(tmp_path: Path) -> None:
    data = build({"w": {"dtype": "PICKLE", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4)
    assert "SAS-ST-001" in rules(tmp_path, data)


def test_overlapping_offsets(tmp_path: Path) -> None:
    header = {
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
    }
    found = findings(tmp_path, build(header, b"\0" * 12))
    assert any(r == "SAS-ST-002" and "overlap" in m for r, _, m in found)


def test_offsets_past_end(tmp_path: Path) -> None:
    data = build({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8)
    assert "SAS-ST-002" in rules(tmp_path, data)


def test_shape_dtype_size_mismatch(tmp_path: Path) -> None:
    data = build({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8)
    found = findings(tmp_path, data)
    assert any(r == "SAS-ST-002" and "needs 12 bytes" in m for r, _, m in found)


def test_sub_byte_dtype_sizes_are_accepted(tmp_path: Path) -> None:
    data = build({"a": {"dtype": "F4", "shape": [8], "data_offsets": [0, 4]}}, b"\0" * 4)
    assert rules(tmp_path, data) == set()


def test_gap_between_tensors(tmp_path: Path) -> None:
    header = {
        "a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
        "b": {"dtype": "U8", "shape": [4], "data_offsets": [8, 12]},
    }
    found = findings(tmp_path, build(header, b"\1" * 12))
    assert any(r == "SAS-ST-002" and s is Severity.MEDIUM for r, s, _ in found)


def test_pickle_hidden_after_last_tensor_is_high(tmp_path: Path) -> None:
    payload = pickle.dumps({"harmless": 1}, protocol=4)
    data = build({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}, b"\0" * 4 + payload)
    found = findings(tmp_path, data)
    assert any(r == "SAS-ST-003" and s is Severity.HIGH for r, s, _ in found)


def test_metadata_must_be_strings(tmp_path: Path) -> None:
    data = build(
        {"__metadata__": {"n": 3, "nested": {"x": "y"}}, "a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}},
        b"\0",
    )
    assert "SAS-ST-004" in rules(tmp_path, data)


@pytest.mark.parametrize("size", [0, 3, 8, 20])
def test_truncated_real_file_is_a_finding(tmp_path: Path, size: int) -> None:
    src = tmp_path / "src.safetensors"
    save_file({"w": np.ones((8, 8), np.float32)}, str(src))
    found = findings(tmp_path, src.read_bytes()[:size])
    assert found and all(r.startswith(("SAS-ST-", "SAS-SCAN-")) for r, _, _ in found)


def test_truncated_tensor_data_is_a_finding(tmp_path: Path) -> None:
    src = tmp_path / "src.safetensors"
    save_file({"w": np.ones((8, 8), np.float32)}, str(src))
    assert "SAS-ST-002" in rules(tmp_path, src.read_bytes()[:-10])


def test_named_safetensors_but_is_a_pickle(tmp_path: Path) -> None:
    found = findings(tmp_path, pickle.dumps([1, 2, 3]))
    assert "SAS-SCAN-003" in {r for r, _, _ in found}


def test_analyzer_direct_unit() -> None:
    data = build({"a": {"dtype": "I32", "shape": [2, 2], "data_offsets": [0, 16]}}, b"\0" * 16)
    analyzer = SafetensorsAnalyzer()
    file = file_from_bytes(data, "x.safetensors")
    ctx = ScanContext()
    assert analyzer.claims(file) and analyzer.analyze(file, ctx)
    assert ctx.findings == [] and ctx.components[0].format == "safetensors"


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_files_never_raise(data: st.DataObject) -> None:
    header = {
        "__metadata__": {"a": "b"},
        "x": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
        "y": {"dtype": "BF16", "shape": [4], "data_offsets": [16, 24]},
    }
    base = bytearray(build(header, bytes(24)))
    for _ in range(data.draw(st.integers(1, 6))):
        base[data.draw(st.integers(0, len(base) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(base)))
    ctx = ScanContext()
    analyzer = SafetensorsAnalyzer()
    file = file_from_bytes(bytes(base[:cut]), "m.safetensors")
    analyzer.analyze(file, ctx)
    assert all(f.rule_id.startswith("SAS-") for f in ctx.findings)
