"""Anchor stores: compare-and-set semantics shared by SQLite, Redis and memory."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sas.errors import ConfigError
from sas.events.anchor import AnchorStore, MemoryAnchor, SqliteAnchor, open_anchor


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AnchorStore]:
    if request.param == "memory":
        s: AnchorStore = MemoryAnchor()
    elif request.param == "sqlite":
        s = SqliteAnchor(str(tmp_path / "anchor.db"))
    else:
        s = open_anchor(request.getfixturevalue("redis_url"))
        s._client.delete("sas:anchors")  # type: ignore[attr-defined]
    yield s
    s.close()


def test_compare_and_set(store: AnchorStore) -> None:
    assert store.get("log") is None
    assert store.compare_and_set("log", None, "note-1")
    assert not store.compare_and_set("log", None, "note-x")  # someone already anchored this log
    assert not store.compare_and_set("log", "stale", "note-x")  # a writer that did not see note-1
    assert store.compare_and_set("log", "note-1", "note-2")
    assert store.get("log") == "note-2"
    assert store.compare_and_set("other", None, "o-1")
    assert list(store.items()) == [("log", "note-2"), ("other", "o-1")]


def test_sqlite_anchor_cas_holds_across_connections(tmp_path: Path) -> None:
    a, b = SqliteAnchor(str(tmp_path / "x.db")), SqliteAnchor(str(tmp_path / "x.db"))
    assert a.compare_and_set("log", None, "1")
    assert not b.compare_and_set("log", None, "2")
    assert b.compare_and_set("log", "1", "2") and a.get("log") == "2"


def test_unknown_anchor_spec_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        open_anchor("s3://bucket")
