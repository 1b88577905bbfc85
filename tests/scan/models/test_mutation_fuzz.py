"""Damaged and hostile model files found by mutation fuzzing: each is reported, never raised, hung or passed."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

from sas.scan.artifact import file_from_bytes
from sas.scan.context import ScanContext
from sas.scan.engine import scan
from sas.scan.models.numpy_scan import NumpyAnalyzer


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, body in members.items():
            archive.writestr(zipfile.ZipInfo(name), body)
    return buf.getvalue()


def _central_version(data: bytes, version: int) -> bytes:
    """Set "version needed to extract" of every central directory entry."""
    out = bytearray(data)
    at = out.find(b"PK\x01\x02")
    while at >= 0:
        out[at + 6] = version
        at = out.find(b"PK\x01\x02", at + 4)
    return bytes(out)


def test_zip_with_unknown_extract_version_is_reported_not_raised(tmp_path: Path) -> None:
    checkpoint = _zip({"archive/data.pkl": pickle.dumps({"w": 1}, protocol=2), "archive/version": b"3\n"})
    path = tmp_path / "model.pt"
    path.write_bytes(_central_version(checkpoint, 255))  # zipfile: NotImplementedError("zip file version 25.5")
    result = scan(path)
    assert {f.rule_id for f in result.findings} & {"SAS-ARC-004", "SAS-SCAN-001", "SAS-SCAN-002"}


def test_zip_member_with_empty_name_does_not_raise_in_npz_check() -> None:
    data = _zip({"x.npy": b"\x93NUMPY", "": b"\x80\x02}q\x00."})
    ctx = ScanContext()
    # not a plain .npz (a member is not .npy): left to the walker, not an IndexError from ZipInfo.is_dir
    assert NumpyAnalyzer().analyze(file_from_bytes(data, "weights.npz"), ctx) is False
