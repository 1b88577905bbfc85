"""NumPy .npy and .npz: numeric arrays are inert and never read; object arrays are pickles and are analysed."""

from __future__ import annotations

import contextlib
import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sas.scan.engine import scan
from sas.scan.models.numpy_scan import NpyHeaderError, read_header
from sas.taxonomy import Severity


class Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, ("echo pwned",)


def test_numeric_npy_is_clean_and_not_read(tmp_path: Path) -> None:
    path = tmp_path / "weights.npy"
    np.save(path, np.arange(100_000, dtype=np.float32).reshape(100, 1000))
    result = scan(path)
    assert result.findings == ()
    (component,) = result.components
    assert component.format == "numpy"
    assert component.sha256 == ""  # the data was not read


def test_every_numeric_dtype_is_clean(tmp_path: Path) -> None:
    for i, array in enumerate(
        [
            np.array(["ab", "c"]),
            np.zeros(3, dtype=[("a", "<f4"), ("b", "<i8")]),
            np.array([True]),
            np.arange(4, dtype=">u2"),
        ]
    ):
        np.save(tmp_path / f"a{i}.npy", array)
    assert scan(tmp_path).findings == ()


def test_object_npy_with_payload(tmp_path: Path) -> None:
    path = tmp_path / "features.npy"
    np.save(path, np.array([1, Payload()], dtype=object), allow_pickle=True)
    result = scan(path)
    assert result.worst() == Severity.CRITICAL
    assert "SAS-NPY-001" in {f.rule_id for f in result.findings}
    assert len(result.components[0].sha256) == 64


def test_benign_object_npy_is_medium(tmp_path: Path) -> None:
    path = tmp_path / "labels.npy"
    np.save(path, np.array(["a", 1, None], dtype=object), allow_pickle=True)
    result = scan(path)
    assert {f.rule_id for f in result.findings} == {"SAS-NPY-001"}
    assert result.worst() == Severity.MEDIUM


def test_structured_dtype_with_object_field(tmp_path: Path) -> None:
    arr = np.zeros(2, dtype=[("a", "<f4"), ("b", "O")])
    arr[1]["b"] = Payload()
    path = tmp_path / "s.npy"
    np.save(path, arr, allow_pickle=True)
    assert scan(path).worst() == Severity.CRITICAL


def test_npz_with_malicious_member_is_consumed_whole(tmp_path: Path) -> None:
    path = tmp_path / "bundle.npz"
    np.savez(path, w=np.arange(10.0), obj=np.array([Payload()], dtype=object))
    result = scan(path)
    assert result.worst() == Severity.CRITICAL
    critical = [f for f in result.findings if f.severity == Severity.CRITICAL]
    assert all(f.location.path == "bundle.npz!obj.npy" for f in critical)
    assert [c.format for c in result.components] == ["numpy"]


def test_compressed_npz_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "bundle.npz"
    np.savez_compressed(path, a=np.arange(10.0), b=np.ones((3, 3)))
    result = scan(path)
    assert result.findings == ()


def test_truncated_and_malformed_npy(tmp_path: Path) -> None:
    buf = io.BytesIO()
    np.save(buf, np.arange(1000.0))
    (tmp_path / "cut.npy").write_bytes(buf.getvalue()[:500])
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': os.sys}\n")
    result = scan(tmp_path)
    by_path = {f.location.path: f.rule_id for f in result.findings}
    assert by_path == {"cut.npy": "SAS-SCAN-002", "bad.npy": "SAS-SCAN-002"}
    assert not result.errors


def test_npy_inside_a_zip_package(tmp_path: Path) -> None:
    buf = io.BytesIO()
    np.save(buf, np.array([Payload()], dtype=object), allow_pickle=True)
    pkg = tmp_path / "function.zip"
    with zipfile.ZipFile(pkg, "w") as zf:
        zf.writestr("app.py", "x = 1\n")
        zf.writestr("data/feat.npy", buf.getvalue())
    result = scan(pkg)
    assert result.worst() == Severity.CRITICAL


@settings(max_examples=200, deadline=None)
@given(header=st.binary(max_size=200), major=st.sampled_from([1, 2, 3, 9]))
def test_random_headers_give_a_finding_never_a_traceback(header: bytes, major: int) -> None:
    size = len(header).to_bytes(2 if major == 1 else 4, "little")
    data = b"\x93NUMPY" + bytes([major, 0]) + size + header
    with contextlib.suppress(NpyHeaderError):
        read_header(io.BytesIO(data))


def test_unhashable_header_literal() -> None:
    data = b"\x93NUMPY\x01\x00\x0c\x00{[1]: 2}    "
    with pytest.raises(NpyHeaderError):
        read_header(io.BytesIO(data))


def test_python2_header_with_long_literals(tmp_path: Path) -> None:
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (2L, 1L), }"
    header = header.ljust(118) + b"\n"
    (tmp_path / "old.npy").write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\0" * 16)
    assert scan(tmp_path / "old.npy").findings == ()
