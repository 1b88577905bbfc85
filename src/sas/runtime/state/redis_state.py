"""Redis state: many function instances share one view of every client (a real Redis server).

One request is one ``EVALSHA`` of a Lua script: counters, the near-duplicate rings, the global bucket
counts of the current window and both token buckets update atomically in one round trip. Keys expire, so
idle clients cost nothing. The ``redis`` package is imported when this backend is opened, never at
``sas.runtime`` import time.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast, overload

from sas.runtime.state.base import (
    MAX_COUNTERS,
    RECENT_BUCKETS,
    RECENT_SKETCHES,
    Observation,
    RowView,
    StateBackend,
    StateError,
    StateView,
    TokenBucket,
)

# Layout: one hash per client (counters; token bucket and both rings under NUL-prefixed field names, which no
# counter name starts with), one global hash (counters and the global token bucket), one hash of bucket
# counts per window. Redis on a busy host costs a few microseconds per command a script issues, so the
# script issues eight for a one-row request: it reads both hashes whole, does the arithmetic in Lua and
# writes each back with one HSET. Sketches are stored biased (each byte + 128), so the script subtracts
# raw bytes without decoding signs. Key names differ from the earlier layout (``u``, ``G``), so state
# written by an older version is never misread (it expires).
_BIAS = bytes((b + 128) & 0xFF for b in range(256))
IDLE_CHECK = 1.0  # seconds idle after which the held connection is checked before use

_SCRIPT = """
local now = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local client_ttl = tonumber(ARGV[3])
local window_ttl = tonumber(ARGV[4])
local max_counters = tonumber(ARGV[5])
local ring_b = tonumber(ARGV[6])
local ring_s = tonumber(ARGV[7])
local c_rate, c_burst = tonumber(ARGV[8]), tonumber(ARGV[9])
local g_rate, g_burst = tonumber(ARGV[10]), tonumber(ARGV[11])
local close_within = tonumber(ARGV[12])
local count_dups = tonumber(ARGV[13])
local i = 14
local byte, sub, find, char = string.byte, string.sub, string.find, string.char
local floor, fmt = math.floor, string.format
local function text(v)
  -- integers (most counters) print exactly with tostring; other values need all 17 digits
  if v == floor(v) and v < 1e15 and v > -1e15 then return tostring(v) end
  return fmt('%.17g', v)
end

-- raw: the stored text of each counter, returned as is when this request leaves it unchanged
local function load(key)
  local flat = redis.call('HGETALL', key)
  local vals, raw, meta, size = {}, {}, {}, 0
  for k = 1, #flat, 2 do
    local name = flat[k]
    if byte(name, 1) == 0 then meta[name] = flat[k + 1]
    else vals[name] = tonumber(flat[k + 1]); raw[name] = flat[k + 1]; size = size + 1 end
  end
  return vals, raw, meta, size
end
local counters, craw, cmeta, size = load(KEYS[1])
local globals, graw, gmeta = load(KEYS[2])
local changed, gchanged = {}, {}
local function bump(name, amount)
  local old = counters[name]
  if old == nil then
    if size >= max_counters then return end
    size = size + 1
    old = 0
  end
  counters[name] = old + amount
  changed[name] = true
end
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do bump(ARGV[i], tonumber(ARGV[i + 1])); i = i + 2 end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local name = ARGV[i]
  globals[name] = (globals[name] or 0) + tonumber(ARGV[i + 1]); i = i + 2
  gchanged[name] = true
end

-- near-duplicates: the ring is one string of newline-terminated ids; membership in the ring as it was
-- before this request is a plain substring search
local ring = cmeta['\\0b'] or '\\n'
local ring_n = tonumber(cmeta['\\0bn']) or 0
n = tonumber(ARGV[i]); i = i + 1
local dups = 0
local counts = {}
for k = 0, n - 1 do
  if find(ring, '\\n' .. ARGV[i + k] .. '\\n', 1, true) then dups = dups + 1 end
end
if n > 0 then
  local added = {ring}
  for _ = 1, n do
    local b = ARGV[i]; i = i + 1
    added[#added + 1] = b .. '\\n'
    counts[#counts + 1] = redis.call('HINCRBY', KEYS[3], b, 1)
  end
  ring = table.concat(added)
  ring_n = ring_n + n
  while ring_n > ring_b do
    ring = sub(ring, (find(ring, '\\n', 2, true)))  -- find also returns the end: keep only the start
    ring_n = ring_n - 1
  end
  cmeta['\\0b'], cmeta['\\0bn'] = ring, tostring(ring_n)
  redis.call('EXPIRE', KEYS[3], window_ttl)
  if count_dups == 1 then bump('dup', dups); bump('nd', n) end
end

-- too close: squared distance of each new sketch to the ring and to the earlier sketches of this request.
-- The ring is one string of length-prefixed entries, oldest first, read in place (no substring per entry).
local blob = cmeta['\\0k'] or ''
local offs = {}
local pos = 1
while pos <= #blob do
  local len = byte(blob, pos)
  if pos + len > #blob then break end  -- a truncated tail (corrupt value) is dropped
  offs[#offs + 1] = pos
  pos = pos + 1 + len
end
blob = sub(blob, 1, pos - 1)
n = tonumber(ARGV[i]); i = i + 1
local function dist(a, ao, b, bo, w)
  local d = 0
  for j = 1, w do local x = byte(a, ao + j) - byte(b, bo + j); d = d + x * x end
  return d
end
local close = 0
if close_within >= 0 then
  for k = 0, n - 1 do
    local v = ARGV[i + k]
    local w = #v
    local hit = false
    if w == 8 then
      local v1, v2, v3, v4, v5, v6, v7, v8 = byte(v, 1, 8)
      for e = 1, #offs do
        local o = offs[e]
        if byte(blob, o) == 8 then
          local r1, r2, r3, r4, r5, r6, r7, r8 = byte(blob, o + 1, o + 8)
          local x = r1 - v1
          local d = x * x
          x = r2 - v2; d = d + x * x
          x = r3 - v3; d = d + x * x
          x = r4 - v4; d = d + x * x
          x = r5 - v5; d = d + x * x
          x = r6 - v6; d = d + x * x
          x = r7 - v7; d = d + x * x
          x = r8 - v8; d = d + x * x
          if d <= close_within then hit = true; break end
        end
      end
    else
      for e = 1, #offs do
        local o = offs[e]
        if byte(blob, o) == w and dist(blob, o, v, 0, w) <= close_within then hit = true; break end
      end
    end
    if not hit then
      for q = 0, k - 1 do
        local u = ARGV[i + q]
        if #u == w and dist(u, 0, v, 0, w) <= close_within then hit = true; break end
      end
    end
    if hit then close = close + 1 end
  end
end
if n > 0 then
  if close_within >= 0 then bump('close', close); bump('nc', n) end
  -- keep the newest ring_s entries: a tail of the old string, then this request's sketches
  local drop = #offs + n - ring_s
  local kept = {}
  if drop <= 0 then kept[1] = blob elseif drop < #offs then kept[1] = sub(blob, offs[drop + 1]) end
  for k = math.max(0, n - ring_s), n - 1 do
    local v = ARGV[i + k]
    kept[#kept + 1] = char(#v) .. v
  end
  cmeta['\\0k'] = table.concat(kept)
end
i = i + n

local function take(meta, rate, burst)
  if burst < 0 then return 1 end
  local tokens = tonumber(meta['\\0t']) or burst
  local stamp = tonumber(meta['\\0s']) or now
  tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
  local ok = 0
  if tokens >= cost then tokens = tokens - cost; ok = 1 end
  meta['\\0t'], meta['\\0s'] = text(tokens), text(now)
  return ok
end
local c_ok = take(cmeta, c_rate, c_burst)
local g_ok = take(gmeta, g_rate, g_burst)

local function store(key, vals, raw, which, meta)
  local args, out = {}, {}
  for name in pairs(which) do
    local t = text(vals[name])
    raw[name] = t
    args[#args + 1] = name
    args[#args + 1] = t
  end
  for name, v in pairs(meta) do
    args[#args + 1] = name
    args[#args + 1] = v
  end
  if #args > 0 then redis.call('HSET', key, unpack(args)) end
  redis.call('EXPIRE', key, client_ttl)
  for name, t in pairs(raw) do
    out[#out + 1] = name
    out[#out + 1] = t
  end
  return table.concat(out, '\\0')
end

-- One bulk string: flags and dups, global bucket counts, counters, global counters (NUL-separated),
-- then the sketch ring before this request (length-prefixed entries, oldest first).
return table.concat({
  c_ok .. ' ' .. g_ok .. ' ' .. dups,
  table.concat(counts, ' '),
  store(KEYS[1], counters, craw, changed, cmeta),
  store(KEYS[2], globals, graw, gchanged, gmeta),
  blob
}, '\\n')
"""


class _Ring(Sequence[bytes]):
    """The sketch ring of a reply, decoded only if someone reads it (the detectors count inside the script)."""

    __slots__ = ("_blob", "_items")

    def __init__(self, blob: bytes) -> None:
        self._blob = blob
        self._items: list[bytes] | None = None

    def _decoded(self) -> list[bytes]:
        if self._items is None:
            items, blob, k = [], self._blob, 0
            while k < len(blob):
                size = blob[k]
                items.append(blob[k + 1 : k + 1 + size].translate(_UNBIAS))
                k += 1 + size
            self._items = items
        return self._items

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[bytes]: ...
    def __getitem__(self, index: int | slice) -> bytes | Sequence[bytes]:
        return self._decoded()[index]

    def __len__(self) -> int:
        return len(self._decoded())


_UNBIAS = bytes((b - 128) & 0xFF for b in range(256))


# tuple.__new__ on the class: what RowView(...) does, without its Python-level __new__ (hot path)
_row_view = cast(Callable[[tuple[Any, ...]], RowView], functools.partial(tuple.__new__, RowView))


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)


class RedisState(StateBackend):
    name = "redis"

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "sas",
        client_ttl: float = 86_400.0,
        window: float = 3_600.0,
        timeout: float = 0.05,
    ) -> None:
        super().__init__(client_ttl=client_ttl, window=window)
        try:
            import redis
        except ImportError as exc:  # the `redis` extra is not installed
            raise StateError(
                "the redis state backend needs the 'redis' package: pip install 'serverless-ai-shield[redis]'"
            ) from exc
        self.prefix = prefix
        # A short socket timeout: a slow store must degrade to local state, not stall the request.
        self._redis: Any = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._noscript: type[BaseException] = redis.exceptions.NoScriptError
        self._sha = hashlib.sha1(_SCRIPT.encode(), usedforsecurity=False).hexdigest().encode()
        self._eval_head = _bulk(b"EVALSHA") + _bulk(self._sha) + _bulk(b"3")
        self._load_head = _bulk(b"EVAL") + _bulk(_SCRIPT.encode()) + _bulk(b"3")
        self._static: dict[tuple[Any, ...], bytes] = {}
        self._names: dict[str, bytes] = {}  # counter name -> its packed bulk string
        # One connection of our own for the hot path: redis-py's client call costs ~50 us of Python per
        # command (pool checkout, retries, argument encoding); sending pre-packed bytes on a held
        # connection costs a few. A thread that finds it busy goes through the pool instead.
        self._conn: Any = None
        self._conn_pid = 0
        self._conn_used = 0.0
        self._conn_lock = threading.Lock()

    def _keys(self, client: str, now: float) -> bytes:
        p = self.prefix
        return (
            _bulk(f"{p}:u:{client}".encode())
            + _bulk(f"{p}:G".encode())
            + _bulk(f"{p}:gb:{int(now // self.window)}".encode())
        )

    def _static_args(self, obs: Observation) -> bytes:
        """ARGV 3-13 (settings that rarely change), packed once per combination."""
        return self._static_for(obs.client_bucket, obs.global_bucket, obs.close_within, obs.count_dups)

    def _static_for(
        self, client_bucket: TokenBucket | None, global_bucket: TokenBucket | None, close_within: float, dups: bool
    ) -> bytes:
        key = (client_bucket, global_bucket, close_within, dups)
        packed = self._static.get(key)
        if packed is None:
            args: list[Any] = [
                int(self.client_ttl),
                int(self.window * 2),
                MAX_COUNTERS,
                RECENT_BUCKETS,
                RECENT_SKETCHES,
            ]
            for bucket in (client_bucket, global_bucket):
                args += [repr(bucket.rate), repr(bucket.burst)] if bucket else ["0", "-1"]
            args += [repr(float(close_within)), 1 if dups else 0]
            packed = b"".join(_bulk(str(a).encode()) for a in args)
            if len(self._static) > 64:
                self._static.clear()
            self._static[key] = packed
        return packed

    def update(self, obs: Observation, now: float) -> StateView:
        parts = [_bulk(repr(now).encode()), _bulk(repr(float(obs.cost)).encode()), self._static_args(obs)]
        count = 13
        for table in (obs.counters, obs.global_counters):
            parts.append(_bulk(b"%d" % len(table)))
            for name, amount in table.items():
                parts.append(_bulk(name.encode()))
                parts.append(_bulk(repr(float(amount)).encode()))
            count += 1 + 2 * len(table)
        parts.append(_bulk(b"%d" % len(obs.buckets)))
        parts.extend(_bulk(b.encode() if "\n" not in b else _safe_id(b)) for b in obs.buckets)
        parts.append(_bulk(b"%d" % len(obs.sketches)))
        # the ring stores one length byte per entry: sketches are a few bytes (8 here); longer ones are cut
        parts.extend(_bulk(sk[:255].translate(_BIAS)) for sk in obs.sketches)
        count += 2 + len(obs.buckets) + len(obs.sketches)
        body = self._keys(obs.client, now) + b"".join(parts)
        try:
            raw = self._send(b"*%d\r\n" % (count + 6), body)
        except self._errors as exc:
            raise StateError(f"redis update failed: {exc}") from exc
        try:
            flags, counts, counters, global_counters, ring = bytes(raw).split(b"\n", 4)
            c_ok, g_ok, dups = flags.split()
            return StateView(
                _pairs(counters),
                _pairs(global_counters),
                int(dups),
                [int(c) for c in counts.split()],
                _Ring(ring),
                c_ok == b"1",
                g_ok == b"1",
            )
        except (ValueError, TypeError) as exc:
            raise StateError(f"redis reply not understood: {exc}") from exc

    def update_row(
        self,
        client: str,
        counters: Mapping[str, float],
        global_counters: Mapping[str, float],
        bucket: str,
        sketch: bytes,
        cost: float,
        client_bucket: TokenBucket | None,
        global_bucket: TokenBucket | None,
        close_within: float,
        now: float,
    ) -> RowView:
        """:meth:`update` of a one-row request, packed straight from the arguments (the same ARGV and script).

        Counter names are packed once and remembered (a deployment uses a few dozen); the reply's bucket
        counts and sketch ring, which a row's caller does not read, are left unparsed.
        """
        names = self._names
        parts = [
            self._keys(client, now),
            _bulk(repr(now).encode()),
            _bulk(repr(float(cost)).encode()),
            self._static_for(client_bucket, global_bucket, close_within, True),
        ]
        for table in (counters, global_counters):
            size = b"%d" % len(table)
            parts.append(b"$%d\r\n%b\r\n" % (len(size), size))
            for name, amount in table.items():
                packed = names.get(name)
                if packed is None:
                    packed = _bulk(name.encode())
                    if len(names) < 4096:  # names are the detectors' own, but stay bounded whatever the caller
                        names[name] = packed
                value = repr(float(amount)).encode()
                parts.append(b"%b$%d\r\n%b\r\n" % (packed, len(value), value))
        sid = bucket.encode() if "\n" not in bucket else _safe_id(bucket)
        biased = sketch[:255].translate(_BIAS)
        parts.append(b"$1\r\n1\r\n$%d\r\n%b\r\n$1\r\n1\r\n$%d\r\n%b\r\n" % (len(sid), sid, len(biased), biased))
        count = 13 + 2 + 2 * (len(counters) + len(global_counters)) + 4
        try:
            raw = self._send(b"*%d\r\n" % (count + 6), b"".join(parts))
        except self._errors as exc:
            raise StateError(f"redis update failed: {exc}") from exc
        try:
            flags, _, mine, totals, _ = bytes(raw).split(b"\n", 4)
            c_ok, g_ok, dups = flags.split()
            return _row_view((_pairs(mine), _pairs(totals), int(dups), c_ok == b"1", g_ok == b"1", False))
        except (ValueError, TypeError) as exc:
            raise StateError(f"redis reply not understood: {exc}") from exc

    def _send(self, head: bytes, body: bytes) -> Any:
        """EVALSHA on the held connection (EVAL once if the server lost the script); the pool when busy."""
        if not self._conn_lock.acquire(blocking=False):
            return self._pooled(head, body)
        try:
            conn = self._conn
            if conn is None or self._conn_pid != os.getpid():  # a forked child never shares the parent's socket
                conn = self._conn = self._redis.connection_pool.make_connection()
                self._conn_pid = os.getpid()
            clock = time.monotonic()
            if clock - self._conn_used > IDLE_CHECK:
                # as the pool does on checkout: a connection the server closed while idle (its `timeout`,
                # a restart) shows as readable; reconnect rather than fail this request and degrade
                try:
                    stale = conn._sock is not None and conn.can_read(timeout=0)
                except self._errors:
                    stale = True
                if stale:
                    conn.disconnect()
            self._conn_used = clock
            try:
                conn.send_packed_command([head + self._eval_head + body], check_health=False)
                return conn.read_response()
            except self._noscript:
                conn.send_packed_command([head + self._load_head + body], check_health=False)
                return conn.read_response()
            except BaseException:
                conn.disconnect()  # never read a half-finished reply on the next request
                raise
        finally:
            self._conn_lock.release()

    def _pooled(self, head: bytes, body: bytes) -> Any:
        conn = self._redis.connection_pool.get_connection()
        try:
            try:
                conn.send_packed_command([head + self._eval_head + body])
                return conn.read_response()
            except self._noscript:
                conn.send_packed_command([head + self._load_head + body])
                return conn.read_response()
            except BaseException:
                conn.disconnect()
                raise
        finally:
            self._redis.connection_pool.release(conn)

    def client_counters(self, client: str) -> Mapping[str, float]:
        try:
            raw = self._redis.hgetall(f"{self.prefix}:u:{client}")
        except self._errors as exc:
            raise StateError(f"redis read failed: {exc}") from exc
        return {k.decode(): float(v) for k, v in raw.items() if not k.startswith(b"\0")}

    def reset(self) -> None:
        try:
            keys = list(self._redis.scan_iter(match=f"{self.prefix}:*", count=1000))
            if keys:
                self._redis.delete(*keys)
        except self._errors as exc:
            raise StateError(f"redis reset failed: {exc}") from exc

    def close(self) -> None:
        with self._conn_lock:
            if self._conn is not None:
                self._conn.disconnect()
                self._conn = None
        self._redis.close()


def _safe_id(bucket: str) -> bytes:
    """A bucket id the newline-separated ring can hold (ours are hex; a foreign id with a newline is hashed)."""
    return hashlib.blake2b(bucket.encode(), digest_size=16).hexdigest().encode()


def _pairs(flat: bytes) -> dict[str, float]:
    if not flat:
        return {}
    parts = flat.split(b"\0")
    return dict(zip(map(bytes.decode, parts[::2]), map(float, parts[1::2]), strict=True))
