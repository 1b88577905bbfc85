"""Warm-invocation contamination: threads, processes, patched functions, module state, /tmp scrubbing."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

from inprocess import active, events, make_shield


class Ctx:
    aws_request_id = "req"
    function_name = "fn"


def run(shield: Any, body: Any) -> Any:
    with active(shield):
        return shield.aws_lambda(body)({"n": 1}, Ctx())


def test_thread_left_running_after_the_handler(tmp_path: Path) -> None:
    shield = make_shield(tmp_path)
    stop = threading.Event()

    def leave_thread(event: Any, context: Any) -> str:
        threading.Thread(target=stop.wait, name="beacon", daemon=True).start()
        return "ok"

    run(shield, leave_thread)
    stop.set()
    [event] = events(shield, "lingering-thread")
    assert event["details"]["threads"][0]["name"] == "beacon"
    assert event["threat"] == "cross-invocation-contamination"


def test_child_process_left_running(tmp_path: Path) -> None:
    shield = make_shield(tmp_path, extra={"runtime": {"process": {"allow_subprocess": True}}})
    children: list[subprocess.Popen[bytes]] = []

    def leave_child(event: Any, context: Any) -> str:
        children.append(subprocess.Popen(["sleep", "5"]))
        return "ok"

    run(shield, leave_child)
    children[0].kill()
    children[0].wait()
    [event] = events(shield, "lingering-process")
    assert event["details"]["pids"] == [children[0].pid]


def test_patched_function_in_a_loaded_module(tmp_path: Path) -> None:
    shield = make_shield(tmp_path, mode="monitor")
    original = json.loads

    def patch(event: Any, context: Any) -> str:
        json.loads = lambda s, **kw: original(s, **kw)  # a hook that could read every later request
        return "ok"

    try:
        run(shield, patch)
    finally:
        json.loads = original
    [event] = events(shield, "patched-function")
    assert event["details"]["replaced"] == ["json.loads"]


def test_deep_sweep_finds_patches_outside_the_critical_list(tmp_path: Path) -> None:
    shield = make_shield(tmp_path, extra={"runtime": {"contamination": {"deep_every": 1}}})
    import base64

    original = base64.b64decode
    try:
        run(shield, lambda e, c: setattr(base64, "b64decode", lambda s: original(s)) or "ok")
    finally:
        base64.b64decode = original
    assert events(shield, "patched-function")[0]["details"]["replaced"] == ["base64.b64decode"]


def test_module_state_growth(tmp_path: Path) -> None:
    module = types.ModuleType("user_handler_state")
    module.__file__ = str(tmp_path / "code" / "handler.py")
    module.CACHE = []  # type: ignore[attr-defined]
    sys.modules["user_handler_state"] = module
    try:
        shield = make_shield(tmp_path, extra={"runtime": {"contamination": {"state_growth": 100}}})
        for _ in range(3):
            run(shield, lambda e, c: module.CACHE.extend(range(60)) or "ok")  # type: ignore[attr-defined]
    finally:
        del sys.modules["user_handler_state"]
    [event] = events(shield, "state-growth")
    assert event["details"]["variable"] == "user_handler_state.CACHE" and event["details"]["items_now"] == 120


def test_scrub_removes_what_the_invocation_left(tmp_path: Path) -> None:
    shield = make_shield(tmp_path, extra={"runtime": {"contamination": {"scrub_tmp": True, "tmp_allow": ["*.cache"]}}})
    scratch = tmp_path / "scratch"

    def leave_files(event: Any, context: Any) -> str:
        (scratch / "stolen.txt").write_text("x")
        (scratch / "model.cache").write_text("x")
        return "ok"

    run(shield, leave_files)
    assert sorted(p.name for p in scratch.iterdir()) == ["model.cache"]
    assert events(shield, "invocation")[-1]["details"]["tmp_scrubbed"] == ["stolen.txt"]
    run(shield, lambda e, c: "ok")
    assert events(shield, "tmp-residue") == []


def test_benign_invocations_are_quiet(tmp_path: Path) -> None:
    shield = make_shield(tmp_path, extra={"runtime": {"contamination": {"deep_every": 1}}})
    for _ in range(3):
        run(shield, lambda e, c: json.dumps({"t": time.time()}))
    assert [e for e in events(shield) if e["verdict"] != "allow"] == []


def test_patched_method_of_a_watched_class(tmp_path: Path) -> None:
    """Class-owned entries (checked through getattr) as well as module functions (checked in the module's dict)."""
    import socket

    shield = make_shield(tmp_path, mode="monitor")
    original = socket.socket.connect

    def patch(event: Any, context: Any) -> str:
        socket.socket.connect = lambda self, address: original(self, address)  # type: ignore[method-assign]
        return "ok"

    try:
        run(shield, patch)
    finally:
        del socket.socket.connect  # the class's own attribute; the inherited method shows again
    [event] = events(shield, "patched-function")
    assert event["details"]["replaced"] == ["socket.socket.connect"]
