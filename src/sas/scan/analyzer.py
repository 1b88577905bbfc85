"""The analyzer interface: one implementation per format family or concern."""

from __future__ import annotations

from abc import ABC, abstractmethod

from sas.scan.artifact import VirtualFile
from sas.scan.context import ScanContext


class Analyzer(ABC):
    """Sees the files it claims, one at a time, then the end of the walk for cross-file checks.

    An analyzer never imports or runs anything from the files it reads.
    """

    name: str = "analyzer"

    @abstractmethod
    def claims(self, file: VirtualFile) -> bool:
        """Whether this analyzer wants ``file``; decide from ``file.head`` (content), not the extension alone."""

    @abstractmethod
    def analyze(self, file: VirtualFile, ctx: ScanContext) -> bool:
        """Check ``file``, adding findings to ``ctx``. Return True when the file was consumed as a whole
        (a model container), so that the walker does not also descend into it as an archive."""

    def finish(self, ctx: ScanContext) -> None:  # noqa: B027 - optional hook, empty by default
        """Called once after the walk, for checks across files."""
