"""An analyzer that fails on a file, with any exception type, costs that file's analysis, never the scan."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from sas.errors import InputError
from sas.scan.analyzer import Analyzer
from sas.scan.artifact import VirtualFile
from sas.scan.context import ScanContext
from sas.scan.engine import scan
from sas.scan.rules import INCOMPLETE_FILE


class _Failing(Analyzer):
    name = "failing"

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def claims(self, file: VirtualFile) -> bool:
        return file.path.endswith(".bin")

    def analyze(self, file: VirtualFile, ctx: ScanContext) -> bool:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        zlib.error("invalid stored block lengths"),
        NotImplementedError("compression 99"),
        IndexError("x"),
        OverflowError(),
    ],
)
def test_an_analyzer_failing_with_any_exception_type_reports_the_file_incomplete(
    tmp_path: Path, error: BaseException
) -> None:
    """Found by fuzzing the model scanners: only OSError, EOFError, ValueError, MemoryError and RecursionError were
    caught, so zlib.error, NotImplementedError, IndexError or OverflowError from damaged input ended the scan."""
    (tmp_path / "m.bin").write_bytes(b"x")
    (tmp_path / "other.bin").write_bytes(b"y")
    result = scan(tmp_path, analyzers=[_Failing(error)])
    incomplete = [f for f in result.findings if f.rule_id == INCOMPLETE_FILE.id]
    assert sorted(f.location.path for f in incomplete) == ["m.bin", "other.bin"]
    assert all(f.evidence == type(error).__name__ for f in incomplete)


def test_a_user_error_raised_by_an_analyzer_still_ends_the_scan(tmp_path: Path) -> None:
    (tmp_path / "m.bin").write_bytes(b"x")
    with pytest.raises(InputError):
        scan(tmp_path, analyzers=[_Failing(InputError("vulnerability database not found"))])
