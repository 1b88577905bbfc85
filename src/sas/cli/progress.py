"""A one-line progress display on stderr, only when stderr is a terminal (pipes and CI logs stay clean)."""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from sas.config import ENV


class Progress:
    def __init__(self, stream: TextIO | None = None, interval: float = 0.1) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self._last = 0.0
        self._drawn = False

    @staticmethod
    def wanted(stream: TextIO | None = None) -> bool:
        s = stream or sys.stderr
        return not os.environ.get(ENV["no_progress"]) and hasattr(s, "isatty") and s.isatty()

    def __call__(self, files: int, done_bytes: int, path: str) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        width = 40
        shown = path if len(path) <= width else "…" + path[-(width - 1) :]
        self.stream.write(f"\r\x1b[Kscanning: {files} files, {done_bytes / 1e6:,.1f} MB  {shown}")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
