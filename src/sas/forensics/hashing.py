"""Leaf hashing for verification, spread over the machine's cores when the ledger is large.

SHA-256 of every entry is most of verification's cost (no SHA extensions on many cloud CPUs: ~1.5 µs for a
400-byte entry). ``hashlib`` releases the GIL only for inputs over 2 KiB, so threads do not help with
entries this small; a forked worker does, and inherits the entries without copying or pickling them. Only
the hashes (32 bytes per entry) come back through a pipe. Anything unusual (no ``fork``, one core, a small
ledger, a worker that fails) falls back to hashing in this process: the result is the same, only slower.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from sas.events.merkle import Frontier, leaf_hashes

PARALLEL_MIN = 200_000  # below this, starting a worker costs more than it saves

# set before the fork; the worker reads its slice from its own copy of this memory
_SHARED: dict[str, list[bytes]] = {}


def _hash_slice(start: int, end: int) -> bytes:
    return b"".join(leaf_hashes(_SHARED["entries"][start:end]))


def _workers() -> int:
    if sys.platform != "linux":
        return 0
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(0, min(cpus, 8) - 1)


def hash_logs(logs: Sequence[Sequence[bytes]]) -> list[list[bytes]]:
    """Leaf hashes of each sub-log's entries, in order."""
    total = sum(len(entries) for entries in logs)
    workers = _workers()
    if total < PARALLEL_MIN or workers == 0:
        return [leaf_hashes(entries) for entries in logs]
    flat: list[bytes] = [e for entries in logs for e in entries]
    share = total // (workers + 1)
    bounds = [(share * (i + 1), share * (i + 2) if i < workers - 1 else total) for i in range(workers)]
    _SHARED["entries"] = flat
    try:
        import multiprocessing

        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [pool.submit(_hash_slice, a, b) for a, b in bounds]
            mine = leaf_hashes(flat[:share])
            blobs = [f.result() for f in futures]
    except Exception:  # the result must not depend on the pool: hash here instead
        return [leaf_hashes(entries) for entries in logs]
    finally:
        _SHARED.clear()
    hashes = mine
    for blob in blobs:
        hashes.extend(blob[i : i + 32] for i in range(0, len(blob), 32))
    out: list[list[bytes]] = []
    pos = 0
    for entries in logs:
        out.append(hashes[pos : pos + len(entries)])
        pos += len(entries)
    return out


def _roots(entries: Sequence[bytes], sizes: Sequence[int]) -> dict[int, bytes]:
    hashes = leaf_hashes(entries)
    frontier = Frontier()
    out: dict[int, bytes] = {}
    for size in sorted(set(sizes)):
        if 0 < size <= len(hashes):
            frontier.extend(hashes[frontier.size : size])
            out[size] = frontier.root()
    return out


def _roots_for_logs(indexes: Sequence[int], sizes: Sequence[Sequence[int]]) -> list[dict[int, bytes]]:
    logs = _SHARED_LOGS["logs"]
    return [_roots(logs[i], sizes[i]) for i in indexes]


_SHARED_LOGS: dict[str, Sequence[Sequence[bytes]]] = {}


def roots_at(logs: Sequence[Sequence[bytes]], sizes: Sequence[Sequence[int]]) -> list[dict[int, bytes]]:
    """For each sub-log, the tree roots at the requested sizes (its checkpoints' and the anchor's).

    Sub-logs are independent trees, so with several cores they are shared out whole (longest first) to forked
    workers that hash leaves *and* nodes; a ledger dominated by one sub-log splits its leaf hashing instead.
    """
    total = sum(len(e) for e in logs)
    workers = _workers()
    if total < PARALLEL_MIN or workers == 0:
        return [_roots(e, s) for e, s in zip(logs, sizes, strict=True)]
    if max(len(e) for e in logs) > total * 0.6:
        hashed = hash_logs(logs)
        out = []
        for hashes, wanted in zip(hashed, sizes, strict=True):
            frontier, roots = Frontier(), {}
            for size in sorted(set(wanted)):
                if 0 < size <= len(hashes):
                    frontier.extend(hashes[frontier.size : size])
                    roots[size] = frontier.root()
            out.append(roots)
        return out
    bins: list[list[int]] = [[] for _ in range(workers + 1)]
    weights = [0] * (workers + 1)
    for i in sorted(range(len(logs)), key=lambda i: -len(logs[i])):
        lightest = weights.index(min(weights))
        bins[lightest].append(i)
        weights[lightest] += len(logs[i])
    _SHARED_LOGS["logs"] = logs
    results: dict[int, dict[int, bytes]] = {}
    try:
        import multiprocessing

        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [(chunk, pool.submit(_roots_for_logs, chunk, sizes)) for chunk in bins[1:] if chunk]
            for i, roots in zip(bins[0], _roots_for_logs(bins[0], sizes), strict=True):
                results[i] = roots
            for chunk, future in futures:
                for i, roots in zip(chunk, future.result(), strict=True):
                    results[i] = roots
    except Exception:  # the result must not depend on the pool
        return [_roots(e, s) for e, s in zip(logs, sizes, strict=True)]
    finally:
        _SHARED_LOGS.clear()
    return [results[i] for i in range(len(logs))]
