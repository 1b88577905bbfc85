"""Trained victims, baselines and a private redis-server for the bench tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from private_redis import private_redis_server
from sas.bench.datasets import Split, load_task
from sas.bench.models import train_victim
from sas.runtime.baseline import Baseline, fit_baseline


@dataclass
class Task:
    split: Split
    victim: Any
    baseline: Baseline


def _task(name: str) -> Task:
    split = load_task(name)
    victim = train_victim(split)
    probs = victim.predict_proba(split.x_baseline)
    return Task(split, victim, fit_baseline(split.x_baseline, probs, sessions=100, key=b"b" * 32))


@pytest.fixture(scope="session")
def digits_task() -> Task:
    return _task("digits")


@pytest.fixture(scope="session")
def tabular_task() -> Task:
    return _task("breast_cancer")


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of our own on a free port (never the shared 6379: tests kill this one)."""
    with private_redis_server() as (port, proc):
        yield RedisServer(port, proc)
