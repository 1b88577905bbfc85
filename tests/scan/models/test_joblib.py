"""joblib files, plain and compressed with every compressor joblib offers, through the whole engine."""

from __future__ import annotations

import os
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sas.scan.engine import scan
from sas.taxonomy import Severity

COMPRESSORS = ["zlib", "gzip", "bz2", "lzma", "xz", "lz4"]
X, Y = make_classification(n_samples=60, n_features=5, random_state=1)
PIPELINE = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, Y)


class Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, ("echo pwned",)


@pytest.mark.parametrize("compressor", COMPRESSORS)
def test_compressed_benign_pipeline(tmp_path: Path, compressor: str) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump(
        {"model": PIPELINE, "features": np.arange(5.0), "names": np.array(["a", 1], dtype=object)},
        path,
        compress=(compressor, 3),
    )
    result = scan(path)
    assert not [f for f in result.findings if f.severity >= Severity.HIGH], result.findings
    assert result.findings == ()
    assert [c.format for c in result.components] == ["joblib"]
    assert "![" in result.components[0].path  # the decompressed stream, e.g. model.joblib![zlib]


@pytest.mark.parametrize("compressor", COMPRESSORS)
def test_compressed_malicious_object(tmp_path: Path, compressor: str) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump({"model": PIPELINE, "weights": np.ones(1000), "x": Payload()}, path, compress=(compressor, 3))
    result = scan(path)
    assert result.worst() == Severity.CRITICAL, result.findings


@pytest.mark.parametrize("compressor", ["zlib", "lz4"])
def test_compressed_file_with_any_name(tmp_path: Path, compressor: str) -> None:
    path = tmp_path / "weights.dat"
    joblib.dump(Payload(), path, compress=(compressor, 3))
    assert scan(path).worst() == Severity.CRITICAL


def test_payload_after_inline_arrays_is_found(tmp_path: Path) -> None:
    # Raw array bytes sit inline in the stream; the analyzer must skip them exactly to reach what follows.
    path = tmp_path / "m.joblib"
    arrays = [np.arange(n, dtype=dt) for n, dt in ((1000, "f8"), (77, "i2"), (5, "u1"), (3, "c16"))]
    joblib.dump([*arrays, np.array(["abc", "de"]), np.zeros((4, 3), order="F"), Payload()], path)
    assert scan(path).worst() == Severity.CRITICAL


def test_payload_inside_object_array(tmp_path: Path) -> None:
    # Object arrays are written by joblib as a nested pickle inside the outer stream.
    path = tmp_path / "m.joblib"
    obj = np.empty(2, dtype=object)
    obj[0] = "fine"
    obj[1] = Payload()
    joblib.dump({"a": np.arange(10.0), "obj": obj, "b": np.arange(3)}, path)
    assert scan(path).worst() == Severity.CRITICAL


def test_uncompressed_pipeline_has_no_finding(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump(PIPELINE, path)
    result = scan(path)
    assert result.findings == ()
    assert result.components[0].format == "joblib"


def _patched_joblib(array: np.ndarray, old: bytes, new: bytes) -> bytes:
    import io

    buf = io.BytesIO()
    joblib.dump({"a": array, "x": Payload()}, buf)
    data = buf.getvalue()
    assert data.count(old) == 1
    return data.replace(old, new)


def test_numeric_dtype_state_size_cannot_desync_array_skip() -> None:
    # NumPy ignores the state's element size for numeric kinds; a scanner that trusts it skips too far.
    from sas.scan.models.pickle_policy import PicklePolicy
    from sas.scan.models.pickle_scan import scan_bytes

    data = _patched_joblib(np.arange(4.0), b"NNNJ\xff\xff\xff\xff", b"NNNJ\x10\x00\x00\x00")
    assert scan_bytes(data, PicklePolicy()).worst == Severity.CRITICAL


def test_flexible_dtype_state_size_is_honoured() -> None:
    # For str/bytes/void NumPy takes the element size from the state: U2 with elsize 16 reads 16 bytes each.
    from sas.scan.models.pickle_policy import PicklePolicy
    from sas.scan.models.pickle_scan import scan_bytes

    raw = "abcd".encode("utf-32-le")
    data = _patched_joblib(np.array(["ab", "cd"]), b"NNNK\x08", b"NNNK\x10")
    data = data.replace(raw, raw + b"\0" * 16)  # the loader now reads 2 x 16 bytes of array data
    report = scan_bytes(data, PicklePolicy())
    assert report.error is None
    assert report.worst == Severity.CRITICAL


def test_wrapper_built_through_copyreg_is_recognised() -> None:
    # joblib checks the built object's type, so a wrapper made by copyreg._reconstructor still has inline bytes.
    import io
    import pickletools

    from sas.scan.models.pickle_policy import PicklePolicy
    from sas.scan.models.pickle_scan import scan_bytes

    buf = io.BytesIO()
    joblib.dump({"a": np.arange(3.0), "x": Payload()}, buf, protocol=4)
    data = buf.getvalue()
    newobj = b"\x8c\x11NumpyArrayWrapper\x94\x93\x94)\x81"
    assert data.count(newobj) == 1
    # the memo key of the wrapper class: MEMOIZE opcodes before the one that stores it
    at = data.index(newobj) + len(newobj) - 3
    key = sum(1 for op, _, pos in pickletools.genops(data[: at + 1] + b".") if op.name == "MEMOIZE" and pos < at)
    via_copyreg = (
        b"\x8c\x11NumpyArrayWrapper\x94\x93\x940"  # the class, memoized, then popped
        b"\x8c\x07copyreg\x8c\x0e_reconstructor\x93"
        b"h" + bytes([key]) + b"\x8c\x08builtins\x8c\x06object\x93N\x87R"
    )
    data = data.replace(newobj, via_copyreg)
    report = scan_bytes(data, PicklePolicy())
    assert report.error is None
    assert report.worst == Severity.CRITICAL


def test_old_zfile_format(tmp_path: Path) -> None:
    # joblib < 0.9.3 wrote "ZF" + hex length + zlib; joblib.load still reads it through its compat module.
    import pickle

    from joblib.numpy_pickle_compat import write_zfile

    for name, obj, expected in (("bad.z", Payload(), Severity.CRITICAL), ("good.z", {"w": [1.0, 2.0]}, None)):
        with (tmp_path / name).open("wb") as fh:
            write_zfile(fh, pickle.dumps(obj, protocol=2))
        result = scan(tmp_path / name)
        assert result.worst() == expected, result.findings
        assert result.components[0].format == "joblib"
