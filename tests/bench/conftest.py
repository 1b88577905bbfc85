"""Trained victims, baselines and a private redis-server for the bench tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

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
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("private redis-server did not start")
    server = RedisServer(port, proc)
    yield server
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=5)
