"""Verification's hashing, spread over the machine's cores when the ledger is large.

SHA-256 is most of verification's cost: one leaf hash and one node hash per event (~0.6 and ~0.45 µs here,
mostly the call and ``digest()``, not the compression). ``hashlib`` releases the GIL only for inputs over
2 KiB, so threads do not help with entries this small; forked workers do, and inherit the ledger's buffers
without copying or pickling them (one large ``bytes`` per file, so the child's reads touch no reference counts
and cause no copy-on-write). Only results come back through a pipe: packed hashes and a few nodes.

Work is cut into tasks; the workers take them from the end and this process from the start, cancelling what no
worker has picked up yet, so that a busy or slow core does not hold up the result. Anything unusual (no
``fork``, one core, a small ledger, a pool that fails) runs the same tasks in this process: the result is
the same, only slower.

Roots: the tree at each checkpoint size is made of perfect subtrees of the leaves (its frontier). Tasks hash
aligned blocks of leaves level by level and return the block's root and the frontier nodes that lie inside it;
nodes above the block size are built here from block roots. Every leaf and node up to the largest wanted size is
hashed once, whatever the number of checkpoints.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import BrokenExecutor, Future, ProcessPoolExecutor
from hashlib import sha256
from typing import Any, TypeVar

from sas.events.merkle import EMPTY_ROOT, HASH_SIZE

T = TypeVar("T")

PARALLEL_MIN = 200_000  # leaves (or ~bytes / 400 when scanning): below this, a worker costs more than it saves
BLOCK_BITS = 14  # leaves per root task: 16 384

_TASKS: dict[int, Callable[[int], Any]] = {}  # by call, so that two threads' calls do not meet


def workers() -> int:
    """Forked workers to add to this process (0: do everything here)."""
    if sys.platform != "linux":
        return 0
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(0, min(cpus, 8) - 1)


def _run_task(key: int, i: int) -> Any:
    return _TASKS[key](i)


def parallel_map(
    fn: Callable[[int], T], count: int, parallel: bool = True, before: Callable[[], None] | None = None
) -> list[T]:
    """``[fn(i) for i in range(count)]``, shared with forked workers when ``parallel`` and there are cores.

    ``before`` is other work for this process, done once the workers have started (exactly once either way).
    What ``fn`` raises, here or in a worker, is raised; a pool that fails (no fork, a worker killed) only moves
    the remaining tasks into this process.
    """
    n_workers = workers() if parallel else 0
    futures: dict[int, Future[T]] = {}
    key = id(fn)
    pool: ProcessPoolExecutor | None = None
    if n_workers and count > 1:
        _TASKS[key] = fn
        try:
            pool = ProcessPoolExecutor(max_workers=n_workers, mp_context=multiprocessing.get_context("fork"))
            for i in range(count - 1, -1, -1):  # workers start from the end
                futures[i] = pool.submit(_run_task, key, i)
        except Exception:  # fork refused, no semaphores...: everything here
            futures = {}
    try:
        if before is not None:
            before()
        out: list[T] = []
        for i in range(count):
            future = futures.get(i)
            if future is None or future.cancel():
                out.append(fn(i))
                continue
            try:
                out.append(future.result())
            except BrokenExecutor:  # a worker died: its tasks, and all still to come, are done here
                futures = {}
                out.append(fn(i))
        return out
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        _TASKS.pop(key, None)


# ---------------------------------------------------------------------------------------------------- roots


def frontier_nodes(size: int) -> list[tuple[int, int]]:
    """The perfect subtrees of a tree of ``size`` leaves as ``(first leaf, height)``, largest first."""
    out, at = [], 0
    for height in range(size.bit_length() - 1, -1, -1):
        if size >> height & 1:
            out.append((at, height))
            at += 1 << height
    return out


def _levels(packed: bytes) -> list[bytes]:
    """Every level of perfect subtrees over packed hashes: ``levels[h]`` packs the roots of aligned runs of
    ``2**h`` leaves (an odd node at the end of a level has no parent here)."""
    h = sha256
    levels = [packed]
    level = packed
    while len(level) >= 2 * HASH_SIZE:
        level = b"".join([h(b"\x01" + level[i : i + 64]).digest() for i in range(0, len(level) - 63, 64)])
        levels.append(level)
    return levels


def _node(levels: list[bytes], start: int, height: int) -> bytes:
    at = (start >> height) * HASH_SIZE
    return levels[height][at : at + HASH_SIZE]


def roots_at(
    packed_logs: Sequence[bytes],
    sizes: Sequence[Iterable[int]],
    parallel: bool = True,
    before: Callable[[], None] | None = None,
) -> list[dict[int, bytes]]:
    """For each sub-log (its leaf hashes packed, 32 bytes each) the RFC 6962 roots at the wanted sizes (sizes
    outside ``1..leaves`` are left out). ``before``: see :func:`parallel_map`."""
    block = 1 << BLOCK_BITS
    wanted: list[list[int]] = []
    needed: list[set[tuple[int, int]]] = []
    tasks: list[tuple[int, int, int, list[tuple[int, int]]]] = []  # (log, first leaf, end leaf, nodes inside)
    for index, (packed, asked) in enumerate(zip(packed_logs, sizes, strict=True)):
        n = len(packed) // HASH_SIZE
        ws = sorted({w for w in asked if 0 < w <= n})
        wanted.append(ws)
        frontier = {node for w in ws for node in frontier_nodes(w)}
        needed.append(frontier)
        if not ws:
            continue
        inside: dict[int, list[tuple[int, int]]] = {}
        for start, height in frontier:
            if height <= BLOCK_BITS:
                inside.setdefault(start >> BLOCK_BITS, []).append((start, height))
        top = ws[-1]
        for b in range(0, (top + block - 1) // block):
            a = b * block
            tasks.append((index, a, min(a + block, top), inside.get(b, [])))

    def run(i: int) -> tuple[dict[tuple[int, int], bytes], bytes | None]:
        index, a, b, inside = tasks[i]
        levels = _levels(packed_logs[index][a * HASH_SIZE : b * HASH_SIZE])
        found = {(start, height): _node(levels, start - a, height) for start, height in inside}
        return found, (levels[BLOCK_BITS] if b - a == block else None)

    total = sum(t[2] - t[1] for t in tasks)
    results = parallel_map(run, len(tasks), parallel and total >= PARALLEL_MIN, before)
    out: list[dict[int, bytes]] = []
    for index in range(len(packed_logs)):
        found: dict[tuple[int, int], bytes] = {}
        block_roots: list[bytes] = []
        for task, (nodes_in_block, block_root) in zip(tasks, results, strict=True):
            if task[0] == index:
                found.update(nodes_in_block)
                if block_root is not None:
                    block_roots.append(block_root)
        upper = _levels(b"".join(block_roots))  # over whole blocks only: every node above a block is perfect
        for start, height in needed[index]:
            if height > BLOCK_BITS:
                found[(start, height)] = _node(upper, start >> BLOCK_BITS, height - BLOCK_BITS)
        roots: dict[int, bytes] = {}
        for w in wanted[index]:
            parts = [found[node] for node in frontier_nodes(w)]
            r = parts[-1]
            for left in reversed(parts[:-1]):
                r = sha256(b"\x01" + left + r).digest()
            roots[w] = r
        out.append(roots)
    return out


def root_of(packed: bytes) -> bytes:
    """The tree head over packed leaf hashes."""
    n = len(packed) // HASH_SIZE
    return EMPTY_ROOT if n == 0 else roots_at([packed], [[n]], parallel=False)[0][n]


def unpack(packed: bytes) -> list[bytes]:
    return [packed[i : i + HASH_SIZE] for i in range(0, len(packed), HASH_SIZE)]
