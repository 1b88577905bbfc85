"""The ledger writer: a :class:`~sas.events.sink.Sink` that makes every runtime event tamper-evident.

Each function instance gets its own sub-log (an RFC 6962 Merkle log whose origin line is
``PREFIX/FUNCTION/INSTANCE_ID``), keyed by the ``instance_id`` the runtime puts in every event. The runtime
creates that id after init or SnapStart restore, so cloned instances never share a sub-log; two writers that
do share one (a fork) fail the anchor's compare-and-set and show up in verification.

Cost model, inside the invocation: ``emit`` only encodes the event (orjson, ~1 µs) and appends the line to a
buffer; ``flush`` (end of invocation) hands the new lines to the store in one call, as they are, so that a
reaped instance loses nothing it had already returned (about 5 µs for both on the stdout store, checkpoints
included, see ``benchmarks/ledger.py``). Hashing and signing happen in batches. Lines stay buffered after they
are written, and are hashed (the written bytes are the leaves: nothing is re-encoded) by the flush that brings
them to ``HASH_BATCH`` or by the next checkpoint: every ``checkpoint_every`` events and no later than
``checkpoint_seconds`` after the oldest unsigned event (checked on each ``emit`` and ``flush``, since a frozen
Lambda instance runs no timers). A checkpoint first writes what is still unwritten, so that it covers exactly
what the store holds, then signs the root. ``close`` signs everything.

Signing key: ``signer``, else the file in ``$SAS_SIGNING_KEY`` (``sas keygen`` format), else an ephemeral key
made for this process, whose public half is written in the ledger's meta record; the verifier warns that such
a ledger proves only internal consistency unless an anchor or the investigator's own key backs it. The key is
made or loaded at the first checkpoint, not when the writer opens (it imports cryptography, ~60 ms that would
otherwise land on every cold start); the meta record naming it is written then, after any entries flushed
before it, which are unsigned until that checkpoint anyway.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sas.config import ENV
from sas.errors import ConfigError
from sas.events.canonical import encode_line, encode_summary, safe_origin, summary_runs
from sas.events.merkle import Frontier, leaf_hashes
from sas.events.record import RuntimeEvent, Verdict
from sas.events.sink import Sink
from sas.events.stores import LedgerStore, open_store

if TYPE_CHECKING:
    # Imported where first used: the checkpoint modules (and base64, hashlib) at the first checkpoint, the anchor
    # only when one is configured; together ~4 ms that every cold start would pay before any event is signed.
    from sas.events.anchor import AnchorStore
    from sas.events.checkpoint import Signer
    from sas.events.store_records import Batch, CheckpointRecord

DEFAULT_CHECKPOINT_EVERY = 1000
DEFAULT_CHECKPOINT_SECONDS = 10.0
DEFAULT_ORIGIN_PREFIX = "sas-ledger"
KEY_ENV = ENV["key"]
ANCHOR_ENV = ENV["anchor"]
WRITE_FAILED_EVENT = "ledger.writeFailed"  # the writer's own dropped-records report (see _append_loss)
EVERY_ENV = ENV["checkpoint_every"]
SECONDS_ENV = ENV["checkpoint_seconds"]
_NEVER = float("inf")
# Written entries are hashed by the flush that brings them to this many (~0.3 ms), not all by the checkpoint
# (~1.4 ms for 1 000): the same cost per event, but one invocation in 256 pays a little instead of one in
# 1 000 paying more.
HASH_BATCH = 256


def _after_fork(ref: weakref.ReferenceType[LedgerWriter]) -> None:
    writer = ref()
    if writer is not None:
        writer._reset_in_child()


class _SubLog:
    __slots__ = (
        "anchor_failed",
        "anchored",
        "buf",
        "count",
        "due",
        "frontier",
        "function",
        "instance_id",
        "next_checkpoint",
        "origin",
        "seq",
        "signed",
        "summary_runs",
        "written",
    )

    def __init__(self, origin: str, function: str = "", instance_id: str = "", every: int = 1) -> None:
        self.origin = origin
        self.function = function
        self.instance_id = instance_id
        self.seq = 0  # next sequence number
        # Entries not hashed yet, as the lines the store gets (each entry and a newline), and how many. A flush
        # hands the new lines to the store as they are; they are hashed later, many at once (one leaf per flush
        # would cost more than the rest of the flush). A list of the encoded lines, not one growing buffer: each
        # append to a bytearray of a few hundred lines copied ~3 KB on average through its reallocations, on every
        # invocation; at most HASH_BATCH lines (and the events of one invocation) wait here.
        self.buf: list[bytes] = []
        self.count = 0
        self.written = 0  # entries of ``buf`` already handed to the store
        self.frontier = Frontier()  # covers every entry before ``buf`` (signed or not)
        self.signed = 0  # size of the last checkpoint
        self.next_checkpoint = every  # the sequence number that makes one due
        self.due = _NEVER  # when the oldest unsigned entry makes one due (clock time)
        self.anchored: str | None = None
        self.anchor_failed = False
        self.summary_runs: dict[str, tuple[str, str, Any]] = {}  # canonical.summary_runs by function, made on first use

    def unwritten(self) -> Batch | None:
        """The entries not yet handed to the store, as one batch (marked handed over)."""
        if self.written == self.count:
            return None
        # imported here: a checkpoint needs it, or a flush of several instances' sub-logs at once (rare: one
        # process, one instance); the one-instance flush of every invocation never comes here
        from sas.events.store_records import Batch

        data = b"".join(self.buf[self.written :])[:-1]  # a batch holds no final newline
        batch = Batch(self.origin, self.frontier.size + self.written, self.count - self.written, data)
        self.written = self.count
        return batch

    def hash_all(self) -> None:
        """Hash every entry of ``buf`` into the frontier (all of them written by now) and start a new buffer."""
        if self.count:
            entries = b"".join(self.buf).split(b"\n")  # JSON holds no raw newline: one per line
            entries.pop()  # the empty string after the last newline
            self.frontier.extend(leaf_hashes(entries))
        self.buf = []
        self.count = 0
        self.written = 0


class LedgerWriter(Sink):
    """Append runtime events to per-instance Merkle sub-logs with signed, anchored checkpoints."""

    def __init__(
        self,
        store: LedgerStore,
        *,
        signer: Signer | None = None,
        anchor: AnchorStore | None = None,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        checkpoint_seconds: float = DEFAULT_CHECKPOINT_SECONDS,
        origin_prefix: str = DEFAULT_ORIGIN_PREFIX,
        clock: Callable[[], float] = time.perf_counter,  # monotonic; the clock the Shield reads anyway
    ) -> None:
        if checkpoint_every < 1 or checkpoint_seconds <= 0:
            raise ValueError("checkpoint_every must be >= 1 and checkpoint_seconds > 0")
        self.store = store
        self.anchor = anchor
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self.origin_prefix = origin_prefix
        self._clock = clock
        self._signer = signer
        self._logs: dict[str, _SubLog] = {}
        self._only: _SubLog | None = None  # the sub-log, while there is exactly one (the common case)
        self._unflushed = False  # the store was written to (other than by write_entries) since its last flush
        self._lock = threading.RLock()  # re-entrant: an audit hook may emit while the store writes
        self._meta_written = False
        self._ephemeral = False
        self.key_error: str | None = None
        self.anchor_conflicts = 0
        self.checkpoints = 0
        self.errors: list[str] = []
        self._fork_suffix = ""
        self._started = time.time()
        # A forked child (multiprocessing, a pre-forking server) inherits the sub-logs in memory and would write
        # a second history under the same origins: a fork. Start it on sub-logs of its own instead.
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _after_fork(ref))

    def _reset_in_child(self) -> None:
        self._lock = threading.RLock()  # re-entrant: an audit hook may emit while the store writes
        self._logs = {}
        self._only = None
        self._meta_written = False
        self._started = time.time()
        self._fork_suffix += f"-pid{os.getpid()}"
        self.store.after_fork()

    # ------------------------------------------------------------------ hot path

    def emit(self, event: RuntimeEvent) -> None:
        try:
            with self._lock:
                sub = self._logs.get(event.instance_id) or self._sub(event.instance_id, event.function)
                sub.buf.append(encode_line(event, sub.origin, sub.seq))
                self._appended(sub)
        except Exception as exc:  # a sink never raises into the handler
            self._failed(exc)

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
        # Every invocation comes here, usually with caches a model has just evicted: the common case (one
        # sub-log, nothing due, nothing else waiting) is written out inline, in one function; anything else
        # takes the general steps (_appended, _flush_locked), which do the same for it. acquire/release
        # rather than ``with``, which makes two bound methods per use.
        lock = self._lock
        lock.acquire()
        try:
            try:
                sub = self._only
                if sub is None or sub.instance_id != instance_id:
                    sub = self._logs.get(instance_id) or self._sub(instance_id, function)
                runs = sub.summary_runs.get(function)
                if runs is None or runs[1] != platform:
                    runs = summary_runs(function, instance_id, platform)
                    if len(sub.summary_runs) < 64:  # one per function served (an Azure app may have several)
                        sub.summary_runs[function] = runs
                line = encode_summary(
                    sub.origin, sub.seq, runs, time, verdict, request_id, client_id, instance_id, details
                )
                alone = sub.written == sub.count  # nothing else waits to be written
                sub.buf.append(line)
                if self._appended(sub):
                    alone = False  # the checkpoint wrote it, and may have left the store to flush
                if not flush:  # the end of the invocation too: one lock and one call for the Shield's last step
                    return
                if (
                    not alone
                    or sub is not self._only
                    or self._unflushed
                    or (self._signer is not None and not self._meta_written)
                ):
                    self._flush_locked()
                    return
                # _flush_locked's common case for one new line: hand it to the store as it is
                self._write_entries(sub, line)
                if sub.count >= HASH_BATCH:
                    sub.hash_all()
            except Exception as exc:  # a sink never raises into the handler
                self._failed(exc)
        finally:
            lock.release()

    @property
    def opens_files(self) -> bool:  # type: ignore[override]
        return self.store.opens_files

    def _sub(self, instance_id: str, function: str) -> _SubLog:
        """A new instance's sub-log (the callers look the known ones up themselves)."""
        instance = (instance_id or "unknown") + self._fork_suffix
        sub = self._logs[instance_id] = _SubLog(
            safe_origin(self.origin_prefix, function or "function", instance),
            function,
            instance_id,
            self.checkpoint_every,
        )
        self._only = sub if len(self._logs) == 1 else None
        return sub

    def _appended(self, sub: _SubLog) -> bool:
        """Count the entry just added to ``sub.buf``; sign when a checkpoint is due (then True)."""
        sub.count += 1
        sub.seq += 1
        now = self._clock()
        if sub.due == _NEVER:
            sub.due = now + self.checkpoint_seconds
        if sub.seq >= sub.next_checkpoint or now >= sub.due:
            self._checkpoint(sub)
            return True
        return False

    def flush(self) -> None:
        """End of invocation: store what is buffered, and sign it if the oldest unsigned event is old enough."""
        try:
            with self._lock:
                self._flush_locked()
        except Exception as exc:
            self._failed(exc)

    def _flush_locked(self) -> None:
        now = self._clock()
        if self._signer is not None and not self._meta_written:
            self._ensure_meta()
        # else the meta record (which names the key) waits for the first checkpoint: making or loading
        # the key imports cryptography (~60 ms), which must not land on the cold start. Entries written
        # before it are unsigned until then either way.
        sub = self._only
        if sub is not None and now < sub.due:  # one instance, nothing due: the common case
            if sub.written != sub.count:
                self._write_entries(sub)  # stored when it returns
            if self._unflushed:  # a checkpoint or the meta record, written since
                self._unflushed = False
                self.store.flush()
            if sub.count >= HASH_BATCH:
                sub.hash_all()
            return
        pending: list[_SubLog] = []
        for sub in self._logs.values():
            if now >= sub.due:
                self._checkpoint(sub)
            elif sub.written != sub.count:
                pending.append(sub)
        if len(pending) == 1:
            self._write_entries(pending[0])
        elif pending:  # several instances in one process: still one store write (one transaction)
            self._write([b for b in (sub.unwritten() for sub in pending) if b is not None], ())
        self._unflushed = False
        self.store.flush()
        for sub in pending:
            if sub.count >= HASH_BATCH:  # all written now
                sub.hash_all()

    def close(self) -> None:
        """Sign every sub-log's tail and close the store."""
        try:
            with self._lock:
                for sub in self._logs.values():
                    if sub.seq > sub.signed:
                        self._checkpoint(sub)
                self.store.close()
                if self.anchor is not None:
                    self.anchor.close()
        except Exception as exc:
            self._failed(exc)

    def checkpoint_all(self) -> None:
        with self._lock:
            for sub in self._logs.values():
                if sub.seq > sub.signed:
                    self._checkpoint(sub)

    # ------------------------------------------------------------------ batches

    def _failed(self, exc: BaseException) -> None:
        self.dropped += 1
        if len(self.errors) < 20:
            self.errors.append(f"{type(exc).__name__}: {exc}")

    @property
    def signer(self) -> Signer:
        if self._signer is None:
            from sas.events.checkpoint import Signer, load_signer

            path = os.environ.get(KEY_ENV)
            if path:
                try:
                    self._signer = load_signer(path)
                except Exception as exc:  # an unreadable key must not stop the record; say so in the meta
                    self.key_error = str(exc)
            if self._signer is None:
                self._signer = Signer.generate()
                self._ephemeral = True
        return self._signer

    def _ensure_meta(self) -> None:
        if self._meta_written:
            return
        signer = self.signer
        meta: dict[str, Any] = {
            "key": str(signer.verifier),
            "ephemeral_key": self._ephemeral,
            "pid": os.getpid(),
            "checkpoint_every": self.checkpoint_every,
            "checkpoint_seconds": self.checkpoint_seconds,
            "started": self._started,
        }
        if self.key_error:
            meta["key_error"] = self.key_error
        self._unflushed = True
        self.store.write_meta(meta)
        self._meta_written = True

    def _write_entries(self, sub: _SubLog, last: bytes | None = None) -> None:
        """Hand the lines of ``sub`` not written yet to the store (``last``: they are just that one line, as
        encoded, so the buffer need not be sliced)."""
        first = sub.frontier.size + sub.written
        count = sub.count - sub.written
        # the new lines, as they are: one join and one store call
        data = b"".join(sub.buf[sub.written :]) if last is None else last
        sub.written = sub.count
        try:
            self.store.write_entries(sub.origin, first, count, data)
        except Exception as exc:
            self._append_loss(sub, first, count, exc)
            raise

    def _write(self, batches: Sequence[Batch], checkpoints: Sequence[CheckpointRecord]) -> None:
        self._unflushed = True
        try:
            self.store.write(batches, checkpoints)
        except Exception as exc:
            subs = {s.origin: s for s in self._logs.values()}
            for batch in batches:
                sub = subs.get(batch.origin)
                if sub is not None:
                    self._append_loss(sub, batch.first_seq, batch.count, exc)
            raise

    def _append_loss(self, sub: _SubLog, first_seq: int, count: int, exc: BaseException) -> None:
        # The lost entries stay in the buffer and go into the tree with the next checkpoint, so verification
        # will see a gap. Say so inside the sub-log itself (a signed entry, stored with the next write), so that
        # the gap reads as the writer's loss, like a platform's dropped-log report, and not as someone's deletion.
        event = RuntimeEvent(
            time=time.time(),
            event=WRITE_FAILED_EVENT,
            detector="ledger",
            category="",
            threat="",
            severity="medium",
            verdict=Verdict.ALERT,
            request_id="",
            client_id="",
            instance_id=sub.instance_id,
            function=sub.function,
            platform="",
            details={"droppedRecords": count, "firstSeq": first_seq, "error": str(exc)[:200]},
        )
        sub.buf.append(encode_line(event, sub.origin, sub.seq))
        sub.count += 1
        sub.seq += 1

    def _checkpoint(self, sub: _SubLog) -> None:
        from sas.events.checkpoint import Checkpoint, sign_checkpoint  # one lookup per checkpoint, not per event
        from sas.events.store_records import CheckpointRecord

        batch = sub.unwritten()
        sub.hash_all()
        size = sub.frontier.size
        checkpoint = Checkpoint(sub.origin, size, sub.frontier.root())
        self._ensure_meta()
        note = sign_checkpoint(checkpoint, self.signer)
        self._write(
            () if batch is None else (batch,), (CheckpointRecord(sub.origin, size, note, tuple(sub.frontier.nodes)),)
        )
        sub.signed = size
        sub.next_checkpoint = size + self.checkpoint_every
        sub.due = _NEVER
        self.checkpoints += 1
        if self.anchor is not None and not sub.anchor_failed:
            if self.anchor.compare_and_set(sub.origin, sub.anchored, note):
                sub.anchored = note
            else:
                # someone else moved this sub-log's anchor: a fork or a replay; stop so the evidence stays
                sub.anchor_failed = True
                self.anchor_conflicts += 1


def ledger_from_config(forensics: Mapping[str, Any]) -> LedgerWriter:
    """A writer from the ``[forensics]`` table: ``ledger``, ``anchor``, ``checkpoint_every``, ``checkpoint_seconds``."""
    every = forensics.get("checkpoint_every", int(_env_number(EVERY_ENV, DEFAULT_CHECKPOINT_EVERY)))
    seconds = forensics.get("checkpoint_seconds", _env_number(SECONDS_ENV, DEFAULT_CHECKPOINT_SECONDS))
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise ConfigError("[forensics] checkpoint_every must be a positive integer")
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds <= 0:
        raise ConfigError("[forensics] checkpoint_seconds must be a positive number")
    anchor = forensics.get("anchor")
    if anchor is not None and not isinstance(anchor, str):
        raise ConfigError("[forensics] anchor must be a string")
    return open_ledger(
        str(forensics.get("ledger", "stdout")), anchor=anchor, checkpoint_every=every, checkpoint_seconds=float(seconds)
    )


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"${name} must be a number, not {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"${name} must be positive")
    return value


def open_ledger(
    spec: str,
    *,
    anchor: str | None = None,
    signer: Signer | None = None,
    checkpoint_every: int | None = None,
    checkpoint_seconds: float | None = None,
) -> LedgerWriter:
    """A ledger writer for ``stdout`` | ``jsonl:PATH`` | ``sqlite:PATH``.

    Unset options come from the environment (``$SAS_ANCHOR``, ``$SAS_CHECKPOINT_EVERY``,
    ``$SAS_CHECKPOINT_SECONDS``), so that ``open_sink(spec)`` callers get them too, then the defaults.
    """
    anchor_spec = anchor if anchor is not None else os.environ.get(ANCHOR_ENV)
    every = checkpoint_every or int(_env_number(EVERY_ENV, DEFAULT_CHECKPOINT_EVERY))
    seconds = checkpoint_seconds or _env_number(SECONDS_ENV, DEFAULT_CHECKPOINT_SECONDS)
    anchor_store: AnchorStore | None = None
    if anchor_spec:
        from sas.events.anchor import open_anchor

        anchor_store = open_anchor(anchor_spec)
    return LedgerWriter(
        open_store(spec),
        signer=signer,
        anchor=anchor_store,
        checkpoint_every=every,
        checkpoint_seconds=seconds,
    )
