"""A real model and a real baseline for the ML detector tests, built once per session (a few seconds)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sas.bench.datasets import Split, load_task
from sas.bench.models import train_victim
from sas.runtime.baseline import Baseline, fit_baseline


@dataclass
class Trained:
    split: Split
    victim: Any
    baseline: Baseline
    path: Path


@pytest.fixture(scope="session")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    split = load_task("digits")
    victim = train_victim(split)
    baseline = fit_baseline(
        split.x_baseline, victim.predict_proba(split.x_baseline), sessions=80, max_session=80, key=b"t" * 32
    )
    path = tmp_path_factory.mktemp("baseline") / "digits.npz"
    baseline.save(path)
    return Trained(split, victim, baseline, path)
