from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sas.runtime.baseline import BaselineError, fit_baseline, load_baseline


def test_save_load_round_trip_keeps_every_threshold(digits, tmp_path: Path) -> None:
    loaded = load_baseline(digits.path)
    b = digits.baseline
    assert np.array_equal(loaded.whiten, b.whiten) and np.array_equal(loaded.class_prior, b.class_prior)
    assert loaded.ood_threshold == b.ood_threshold and loaded.close_threshold == b.close_threshold
    assert loaded.signals == b.signals and loaded.key == b.key
    assert loaded.extraction_alarm == b.extraction_alarm and loaded.adversarial_alarm == b.adversarial_alarm
    assert digits.path.stat().st_size < 100_000


def test_calibration_measures_benign_rates_and_sets_alarms_above_benign_peaks(digits) -> None:
    b = digits.baseline
    assert 0.005 < b.signals["ood"].p0 < 0.15  # ~1% Mahalanobis plus range violations on held-out rows
    assert 0.005 < b.signals["low"].p0 < 0.1
    assert all(s.p1 > s.p0 for s in b.signals.values())
    assert b.extraction_alarm >= b.notes["benign_peak_extraction_p99"]
    assert b.extraction_alarm >= 2 * np.log(1 / b.target_fpr)


def test_a_pickled_object_inside_the_file_is_refused_not_loaded(tmp_path: Path) -> None:
    evil = tmp_path / "evil.npz"
    buf = io.BytesIO()
    np.save(buf, np.array([object()], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(evil, "w") as zf:
        for name in ("mean", "whiten", "lo", "hi", "class_prior", "meta"):
            zf.writestr(f"{name}.npy", buf.getvalue())
    with pytest.raises(BaselineError):
        load_baseline(evil)


@pytest.mark.parametrize("content", [b"", b"not a zip", b"PK\x03\x04garbage"])
def test_malformed_files_give_one_line_errors(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(content)
    with pytest.raises(BaselineError):
        load_baseline(bad)


def test_missing_file_and_too_little_data_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="not found"):
        load_baseline(tmp_path / "none.npz")
    with pytest.raises(BaselineError):
        fit_baseline(np.zeros((10, 3)))
    with pytest.raises(BaselineError, match="NaN"):
        fit_baseline(np.full((50, 3), np.nan))


def _rewrite(src: Path, dest: Path, change) -> Path:  # type: ignore[no-untyped-def]
    """Copy a baseline file, passing each member's bytes through ``change(name, data)``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, change(name, zin.read(name)))
    return dest


def test_garbled_npy_headers_and_unknown_compression_give_baseline_errors(digits, tmp_path: Path) -> None:
    """Found by fuzzing: numpy's header parser raised TokenError/TypeError and zipfile NotImplementedError."""
    garbled = _rewrite(
        digits.path, tmp_path / "g.npz", lambda n, d: d.replace(b"), }", b"), (", 1) if n == "lo.npy" else d
    )
    with pytest.raises(BaselineError, match="cannot read"):
        load_baseline(garbled)
    raw = bytearray(digits.path.read_bytes())
    at = raw.index(b"PK\x01\x02")  # the first member's central directory record
    raw[at + 10 : at + 12] = (99).to_bytes(2, "little")  # its compression method: unknown
    unknown = tmp_path / "u.npz"
    unknown.write_bytes(bytes(raw))
    with pytest.raises(BaselineError, match="cannot read"):
        load_baseline(unknown)


def test_a_baseline_holding_nan_is_refused_not_loaded(digits, tmp_path: Path) -> None:
    """A NaN threshold or mean disables every comparison made with it: such a file is an error, not a baseline."""

    def nan_mean(name: str, data: bytes) -> bytes:
        if name != "mean.npy":
            return data
        buf = io.BytesIO()
        mean = np.load(io.BytesIO(data))
        mean[0] = np.nan
        np.save(buf, mean)
        return buf.getvalue()

    with pytest.raises(BaselineError, match="NaN"):
        load_baseline(_rewrite(digits.path, tmp_path / "m.npz", nan_mean))

    def nan_threshold(name: str, data: bytes) -> bytes:
        if name != "meta.npy":
            return data
        meta = str(np.load(io.BytesIO(data)))
        buf = io.BytesIO()
        np.save(buf, np.array(meta.replace('"ood_threshold": ', '"ood_threshold": NaN, "_was": ')))
        return buf.getvalue()

    with pytest.raises(BaselineError, match="NaN"):
        load_baseline(_rewrite(digits.path, tmp_path / "t.npz", nan_threshold))
