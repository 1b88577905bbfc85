"""The Shield imports parts of itself on first use (platform adapters, the ML detectors). Regression: from a
checkout under a writable folder (a clone in /tmp), `@shield.aws_lambda` and `guard_model(baseline=...)` were
refused as "dynamic code". The Shield's own files load; anyone else's code from a writable folder still does not."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from inprocess import active, attempt, events, make_shield

import sas

SAS_DIR = str(Path(sas.__file__).resolve().parent)


def test_shield_modules_load_even_when_their_folder_is_writable(tmp_path: Path) -> None:
    shield = make_shield(tmp_path, extra={"runtime": {"files": {"allow_write": [SAS_DIR]}}})
    sys.modules.pop("sas.runtime.platforms.gcp", None)
    with active(shield):
        outcome = attempt(importlib.import_module, "sas.runtime.platforms.gcp")
    assert outcome == "ok" and events(shield, "dynamic-code") == []


def test_other_code_from_a_writable_folder_is_still_refused(tmp_path: Path) -> None:
    dropped = tmp_path / "dropped"
    dropped.mkdir()
    (dropped / "dropped_mod_q7.py").write_text("VALUE = 1\n")
    shield = make_shield(tmp_path, extra={"runtime": {"files": {"allow_write": [SAS_DIR, str(dropped)]}}})
    sys.path.insert(0, str(dropped))
    try:
        with active(shield):
            outcome = attempt(importlib.import_module, "dropped_mod_q7")
    finally:
        sys.path.remove(str(dropped))
        sys.modules.pop("dropped_mod_q7", None)
    assert outcome == "PolicyViolation"
    assert events(shield, "dynamic-code")
