"""Builders for pickle payloads and helpers to scan them, shared by the pickle, joblib, torch and numpy tests.

Payloads are written opcode by opcode so that each test shows exactly the bytes a bypass relies on; nothing
here is ever unpickled.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sas.scan.engine import scan
from sas.scan.findings import Finding, ScanResult
from sas.scan.models.pickle_policy import PicklePolicy
from sas.scan.models.pickle_scan import PickleReport, scan_bytes
from sas.scan.settings import ScanSettings
from sas.taxonomy import Severity


def _unicode(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw if len(raw) < 256 else b"X" + len(raw).to_bytes(4, "little") + raw


class Payloads:
    """Hand-assembled pickles."""

    @staticmethod
    def call(module: str, name: str, *args: str, protocol: int = 4) -> bytes:
        """``module.name(*args)`` with string arguments: STACK_GLOBAL at protocol 4+, GLOBAL below."""
        if protocol >= 4:
            head = b"\x80" + bytes([protocol]) + _unicode(module) + _unicode(name) + b"\x93"
        else:
            head = (b"\x80\x02" if protocol == 2 else b"") + b"c" + module.encode() + b"\n" + name.encode() + b"\n"
        body = b"(" + b"".join(Payloads.string(a, protocol) for a in args) + b"t"
        return head + body + b"R."

    @staticmethod
    def string(text: str, protocol: int = 4) -> bytes:
        if protocol >= 4:
            return _unicode(text)
        return b"V" + text.encode("raw-unicode-escape") + b"\n"

    @staticmethod
    def reduce_class(func: Callable[..., object], *args: object) -> object:
        """An object whose pickle calls ``func(*args)`` on load."""

        class Evil:
            def __reduce__(self) -> tuple[object, tuple[object, ...]]:
                return func, args

        return Evil()


@pytest.fixture
def payloads() -> type[Payloads]:
    return Payloads


@pytest.fixture
def analyse() -> Callable[..., PickleReport]:
    """Run the opcode analyzer on bytes with the default (or a given) policy."""

    def run(data: bytes, policy: PicklePolicy | None = None) -> PickleReport:
        return scan_bytes(data, policy or PicklePolicy())

    return run


@pytest.fixture
def scan_file(tmp_path: Path) -> Callable[..., ScanResult]:
    """Write ``data`` as ``name`` under a fresh folder and scan that folder with the whole engine."""

    def run(name: str, data: bytes | None = None, settings: ScanSettings | None = None) -> ScanResult:
        target = tmp_path / "target"
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is not None:
            path.write_bytes(data)
        return scan(target, settings)

    return run


def worst(result: ScanResult | PickleReport) -> Severity | None:
    if isinstance(result, PickleReport):
        return result.worst
    return result.worst()


def high_or_above(result: ScanResult) -> list[Finding]:
    return [f for f in result.findings if f.severity >= Severity.HIGH]


@pytest.fixture
def helpers() -> type[_Helpers]:
    return _Helpers


class _Helpers:
    worst = staticmethod(worst)
    high_or_above = staticmethod(high_or_above)

    @staticmethod
    def rule_ids(result: ScanResult | PickleReport) -> set[str]:
        if isinstance(result, PickleReport):
            ids = {h.rule.id for h in result.hits}
            for _, inner in result.nested:
                ids |= _Helpers.rule_ids(inner)
            return ids
        return {f.rule_id for f in result.findings}
