"""Event sinks. A sink must never raise into the handler: a failing sink records its own failure and goes on.

``open_sink("stdout" | "jsonl:PATH" | "sqlite:PATH")`` opens the tamper-evident ledger
(:class:`sas.events.ledger.LedgerWriter`) on that store; ``plain-stdout`` and ``plain-jsonl:PATH`` keep the
unsigned one-line-per-event writers, and ``memory`` a list for tests.
"""

from __future__ import annotations

import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from sas.errors import ConfigError
from sas.events.record import RuntimeEvent, Verdict


class Sink(ABC):
    """Where runtime events go. ``emit`` is called on the hot path: keep it cheap and non-raising."""

    dropped: int = 0
    opens_files: bool = True  # whether emitting may open a file (see LedgerStore.opens_files)

    @abstractmethod
    def emit(self, event: RuntimeEvent) -> None: ...

    def emit_invocation(
        self,
        time: float,
        verdict: Verdict,
        request_id: str,
        client_id: str,
        instance_id: str,
        function: str,
        platform: str,
        details: Mapping[str, Any],
        flush: bool = False,
    ) -> None:
        """The per-request ``invocation`` summary (detector ``shield``, severity ``info``, no threat), and with
        ``flush`` the end-of-invocation :meth:`flush` too.

        The same as :meth:`emit` of that event (then :meth:`flush`); a sink on the hot path may override it to
        skip the record and do both in one step.
        """
        self.emit(
            RuntimeEvent(
                time=time,
                event="invocation",
                detector="shield",
                category="",
                threat="",
                severity="info",
                verdict=verdict,
                request_id=request_id,
                client_id=client_id,
                instance_id=instance_id,
                function=function,
                platform=platform,
                details=details,
            )
        )
        if flush:
            self.flush()

    def flush(self) -> None:  # noqa: B027 - optional
        """Push buffered events out (end of invocation)."""

    def close(self) -> None:
        self.flush()


class MemorySink(Sink):
    """Keeps events in a list: for tests and for callers that inspect events in-process."""

    opens_files = False

    def __init__(self) -> None:
        self.events: list[RuntimeEvent] = []

    def emit(self, event: RuntimeEvent) -> None:
        self.events.append(event)


class StreamSink(Sink):
    """One JSON line per event (CloudWatch-ready on stdout)."""

    opens_files = False

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def emit(self, event: RuntimeEvent) -> None:
        try:
            line = event.to_json() + "\n"
            with self._lock:
                (self.stream or sys.stdout).write(line)
        except (OSError, ValueError):
            self.dropped += 1


class JsonlSink(Sink):
    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fh: TextIO | None = None

    def emit(self, event: RuntimeEvent) -> None:
        try:
            with self._lock:
                if self._fh is None:
                    self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open across events
                self._fh.write(event.to_json() + "\n")
        except (OSError, ValueError):
            self.dropped += 1

    def flush(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def open_sink(spec: str) -> Sink:
    """Parse a sink spec; the forensics ledger registers richer sinks through ``SINK_FACTORIES``."""
    kind, _, arg = spec.partition(":")
    factory = SINK_FACTORIES.get(kind)
    if factory is None:
        raise ConfigError(f"unknown ledger sink {spec!r} (expected stdout, jsonl:PATH or sqlite:PATH)")
    if kind not in {"stdout", "plain-stdout", "memory"} and not arg:
        raise ConfigError(f"ledger sink {kind!r} needs a path: {kind}:PATH")
    return factory(arg)


SINK_FACTORIES: dict[str, Callable[[str], Sink]] = {}


def _stdout(_: str) -> Sink:
    return StreamSink()


def _ledger(kind: str) -> Callable[[str], Sink]:
    def factory(arg: str) -> Sink:
        from sas.events.ledger import open_ledger  # lazily: keeps this module's import trivial

        return open_ledger(f"{kind}:{arg}" if arg else kind)

    return factory


def _memory(_: str) -> Sink:
    return MemorySink()


SINK_FACTORIES.update(
    {
        "stdout": _ledger("stdout"),
        "jsonl": _ledger("jsonl"),
        "sqlite": _ledger("sqlite"),
        "plain-stdout": _stdout,
        "plain-jsonl": JsonlSink,
        "memory": _memory,
    }
)
