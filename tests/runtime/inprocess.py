"""In-process Shields for unit tests: the policy is active only inside ``active()``, so pytest itself (which
compiles code to report failures and writes temp files) never runs under it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from runtime_harness import merge

from sas.events.sink import MemorySink
from sas.runtime import Shield
from sas.runtime.monitors import audit, cloud_sdk


def make_shield(tmp_path: Path, mode: str = "enforce", extra: dict[str, Any] | None = None, **kwargs: Any) -> Shield:
    scratch = tmp_path / "scratch"
    code = tmp_path / "code"
    scratch.mkdir(exist_ok=True)
    code.mkdir(exist_ok=True)
    config = {"runtime": {"mode": mode, "tmp_dir": str(scratch), "code_dir": str(code)}}
    shield = Shield(merge(config, extra or {}), sink=MemorySink(), **kwargs)
    pause(shield)
    return shield


def pause(shield: Shield) -> None:
    audit.deactivate()
    cloud_sdk.deactivate()


@contextmanager
def active(shield: Shield) -> Iterator[None]:
    if shield._audit is not None:
        audit.install(shield._audit)
    if shield._sdk is not None:
        cloud_sdk.install(shield._sdk)
    try:
        yield
    finally:
        pause(shield)


def events(shield: Shield, kind: str | None = None) -> list[dict[str, Any]]:
    sink = shield.sink
    assert isinstance(sink, MemorySink)
    found = [e.to_dict() for e in sink.events]
    return [e for e in found if kind is None or e["event"] == kind]


def attempt(fn: Any, *args: Any, **kwargs: Any) -> str:
    """Run ``fn``; 'ok', or the name of the exception it raised (never raises itself)."""
    try:
        fn(*args, **kwargs)
    except BaseException as exc:
        return type(exc).__name__
    return "ok"
