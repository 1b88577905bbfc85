"""The integrity manifest: a signed list of the digests of every file a function ships.

``sas manifest build`` writes it after a scan; the runtime verifies it at cold start (``verify_tree``) and
``sas manifest verify`` does the same from the command line. This module is part of the floor: it imports
nothing from ``sas.scan``, ``sas.runtime`` or ``sas.cli``, and only the stdlib and ``cryptography``
(Ed25519, already a core dependency). ``cryptography`` is imported lazily: importing this module costs
nothing at cold start until a key is actually loaded.

Format (``sas-integrity-manifest/1``): canonical JSON (sorted keys, no spaces, ASCII, no NaN) holding the
tree's name, a UTC timestamp, the tool version, the digest algorithm, the exclusion globs, every regular
file (path, size, digest, kind) and symlink (path, link target), totals, an optional scan summary and the
signer's public key. The Ed25519 signature covers ``DOMAIN + canonical(document without "signature")``.

Hashing: SHA-256 by default (what ``sha256sum`` and dist-info RECORD files use). Files are hashed on a thread
pool in large ``readinto`` chunks; ``hashlib`` releases the GIL on buffers over 2 KiB, so threads scale with
cores. ``mmap`` is not used: a file truncated while mapped kills the process with SIGBUS. Where the CPU
lacks SHA extensions SHA-256 tops out near 0.4 GB/s per core, so two more algorithms are offered: ``blake2b``
(stdlib, ~1.7x faster here) and ``blake3`` (the optional ``blake3`` package, SIMD and multi-threaded,
several GB/s); the algorithm is recorded in the signed manifest and the verifier follows it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fnmatch
import hashlib
import io
import json
import os
import posixpath
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from sas.errors import InputError

if TYPE_CHECKING:
    import zipfile

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT = "sas-integrity-manifest/1"
DOMAIN = b"sas-integrity-manifest/1\n"  # signature domain separation: a manifest signature is nothing else
ALGORITHMS = ("sha256", "blake2b", "blake3")
CHUNK = 4 * 1024 * 1024  # per-thread read buffer; large enough that per-call overhead vanishes
_SMALL = 256 * 1024  # files up to this size are read in one call

_MODEL_SUFFIXES = frozenset(
    (
        *(".pkl", ".pickle", ".joblib", ".jbl", ".sav", ".dill", ".pt", ".bin", ".ckpt", ".onnx", ".ort"),
        *(".safetensors", ".gguf", ".ggml", ".h5", ".hdf5", ".keras", ".pb", ".tflite", ".npy", ".npz"),
        *(".mlmodel", ".model", ".msgpack", ".xgb", ".ubj", ".lgb", ".cbm", ".mar", ".params"),
    )
)
_CODE_SUFFIXES = frozenset(
    (".py", ".pyc", ".pyo", ".pyi", ".so", ".pyd", ".dll", ".dylib", ".sh", ".js", ".mjs", ".cjs", ".jar")
)


class ManifestError(InputError):
    """The manifest cannot be read: truncated, not JSON, wrong format or missing fields."""


class KeyFileError(InputError):
    """A key file cannot be read or is not an Ed25519 key."""


class _Hasher(Protocol):
    def update(self, data: bytes | bytearray | memoryview, /) -> object: ...

    def hexdigest(self) -> str: ...


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of the tree. A symlink has ``link`` set and no digest (its target text is what is pinned)."""

    path: str
    size: int = 0
    digest: str = ""
    kind: str = "data"  # code | dependency | model | data | symlink
    link: str | None = None


@dataclass(frozen=True)
class Manifest:
    root: str
    created: str
    tool_version: str
    algorithm: str
    files: tuple[FileEntry, ...]
    exclude: tuple[str, ...] = ()
    scan_summary: Mapping[str, Any] | None = None
    public_key: str = ""  # raw Ed25519 public key, hex
    signature: str = ""  # base64
    # the canonical bytes of the document read (without the signature); empty for a manifest built here
    document: bytes = field(default=b"", repr=False, compare=False)

    @property
    def key_id(self) -> str:
        return key_id_of_hex(self.public_key)

    def totals(self) -> dict[str, Any]:
        by_kind: dict[str, int] = {}
        for entry in self.files:
            by_kind[entry.kind] = by_kind.get(entry.kind, 0) + 1
        return {"files": len(self.files), "bytes": sum(e.size for e in self.files), "by_kind": by_kind}

    def payload(self) -> dict[str, Any]:
        """The signed document (everything but the signature)."""
        files: list[dict[str, Any]] = []
        for e in self.files:
            if e.link is not None:
                files.append({"path": e.path, "kind": "symlink", "link": e.link})
            else:
                files.append({"path": e.path, "size": e.size, self.algorithm: e.digest, "kind": e.kind})
        return {
            "format": FORMAT,
            "tool": {"name": "serverless-ai-shield", "version": self.tool_version},
            "created": self.created,
            "root": self.root,
            "algorithm": self.algorithm,
            "exclude": list(self.exclude),
            "files": files,
            "totals": self.totals(),
            "scan": dict(self.scan_summary) if self.scan_summary is not None else None,
            "signer": {"algorithm": "ed25519", "public_key": self.public_key, "key_id": self.key_id},
        }

    def signed_bytes(self) -> bytes:
        return DOMAIN + (self.document or canonical_json(self.payload()))

    def to_bytes(self) -> bytes:
        doc = self.payload()
        doc["signature"] = self.signature
        return canonical_json(doc) + b"\n"

    def write(self, path: str | os.PathLike[str]) -> None:
        try:
            Path(path).write_bytes(self.to_bytes())
        except OSError as exc:
            raise InputError(f"cannot write manifest {os.fspath(path)}: {exc.strerror or exc}") from None

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "manifest") -> Manifest:
        """Parse a manifest; any defect is a :class:`ManifestError` naming ``source`` and the defect."""
        try:
            doc = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise ManifestError(f"{source}: not UTF-8 text (not a sas manifest)") from None
        except json.JSONDecodeError as exc:
            raise ManifestError(
                f"{source}: not valid JSON (truncated or damaged?) at line {exc.lineno} column {exc.colno}"
            ) from None
        except RecursionError:
            raise ManifestError(f"{source}: JSON nested too deeply") from None
        if not isinstance(doc, dict):
            raise ManifestError(f"{source}: expected a JSON object")
        if doc.get("format") != FORMAT:
            raise ManifestError(f"{source}: not a {FORMAT} document (format={doc.get('format')!r})")
        try:
            algorithm = _str(doc, "algorithm")
            if algorithm not in ALGORITHMS:
                raise ManifestError(f"{source}: unknown digest algorithm {algorithm!r}")
            files = tuple(_entry(item, algorithm) for item in _list(doc, "files"))
            tool = doc.get("tool")
            signer = doc.get("signer")
            if not isinstance(tool, dict) or not isinstance(signer, dict):
                raise ValueError("tool and signer must be objects")
            scan = doc.get("scan")
            if scan is not None and not isinstance(scan, dict):
                raise ValueError("scan must be an object or null")
            exclude = tuple(str(x) for x in _list(doc, "exclude"))
            manifest = cls(
                root=_str(doc, "root"),
                created=_str(doc, "created"),
                tool_version=_str(tool, "version"),
                algorithm=algorithm,
                files=files,
                exclude=exclude,
                scan_summary=scan,
                public_key=_str(signer, "public_key"),
                signature=_str(doc, "signature"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ManifestError):
                raise
            raise ManifestError(f"{source}: malformed manifest: {exc}") from None
        paths = [e.path for e in files]
        if len(set(paths)) != len(paths):
            raise ManifestError(f"{source}: malformed manifest: a path is listed twice")
        # the signature is checked over the document as written, every field of it (totals, tool, signer, any
        # other): rebuilt from the fields read above, an edit to one that is not read would pass as signed
        return replace(manifest, document=canonical_json({k: v for k, v in doc.items() if k != "signature"}))


@dataclass(frozen=True, slots=True)
class IntegrityReport:
    """The outcome of :func:`verify_tree`. ``ok`` only when the signature is good and nothing differs."""

    ok: bool
    changed: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    bad_signature: bool
    files_checked: int
    bytes_checked: int
    seconds: float
    unreadable: tuple[str, ...] = ()
    key_id: str = ""  # of the key that signed the manifest (as the manifest claims it)
    created: str = ""

    def problems(self) -> list[str]:
        """One line per problem, for people and logs."""
        out: list[str] = []
        if self.bad_signature:
            out.append(f"bad signature: the manifest was not signed by this public key (manifest says {self.key_id})")
        out += [f"changed: {p}" for p in self.changed]
        out += [f"added: {p}" for p in self.added]
        out += [f"removed: {p}" for p in self.removed]
        out += [f"unreadable: {p}" for p in self.unreadable]
        return out


@dataclass(frozen=True, slots=True)
class _Found:
    """A file on disk (or in a zip) before hashing."""

    path: str
    size: int
    read: Callable[[], io.BufferedIOBase] | None = None  # None for symlinks
    link: str | None = None
    mode: int = 0


@dataclass
class _Tree:
    found: list[_Found] = field(default_factory=list)
    records: list[str] = field(default_factory=list)  # RECORD files of installed distributions
    read_record: Callable[[str], bytes] | None = None
    archives: list[zipfile.ZipFile] = field(default_factory=list)  # open zip handles, closed by close()

    def close(self) -> None:
        for archive in self.archives:
            archive.close()
        self.archives.clear()


# ---------------------------------------------------------------- canonical JSON and keys


def canonical_json(value: Any) -> bytes:
    """Deterministic encoding: sorted keys, no whitespace, ASCII (lone surrogates of odd file names survive)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def key_id_of_hex(public_hex: str) -> str:
    try:
        raw = bytes.fromhex(public_hex)
    except ValueError:
        return "invalid"
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_private_key() -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate()


def public_key_hex(key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def write_keypair(private_key: Ed25519PrivateKey, prefix: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``PREFIX.key`` (PKCS#8 PEM, mode 0600, created so) and ``PREFIX.pub`` (SubjectPublicKeyInfo PEM)."""
    from cryptography.hazmat.primitives import serialization

    key_path, pub_path = Path(f"{os.fspath(prefix)}.key"), Path(f"{os.fspath(prefix)}.pub")
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pub = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        # O_EXCL: never overwrite (or follow a planted symlink to) an existing key; 0600 from the first byte.
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        pub_path.write_bytes(pub)
    except FileExistsError:
        raise KeyFileError(f"{key_path} already exists; refusing to overwrite a key") from None
    except OSError as exc:
        raise KeyFileError(f"cannot write key files {key_path}: {exc.strerror or exc}") from None
    return key_path, pub_path


def _read_key_bytes(source: str | os.PathLike[str] | bytes) -> tuple[bytes, str]:
    if isinstance(source, bytes):
        return source, "key"
    try:
        return Path(source).read_bytes(), os.fspath(source)
    except OSError as exc:
        raise KeyFileError(f"cannot read key {os.fspath(source)}: {exc.strerror or exc}") from None


def _raw_32(data: bytes) -> bytes | None:
    """A bare key: 32 raw bytes, or 64 hex / 44 base64 characters."""
    if len(data) == 32:
        return data
    text = data.strip()
    for decode in (bytes.fromhex, base64.b64decode):
        try:
            raw = decode(text.decode("ascii"))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            continue
        if len(raw) == 32:
            return raw
    return None


def load_private_key(source: str | os.PathLike[str] | bytes) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM (PKCS#8, unencrypted) file or 32 raw/hex/base64 bytes."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data, name = _read_key_bytes(source)
    if b"-----BEGIN" in data:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"{name}: not a readable unencrypted private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{name}: not an Ed25519 private key")
        return key
    raw = _raw_32(data)
    if raw is None:
        raise KeyFileError(f"{name}: not an Ed25519 private key (expected PEM or 32 raw bytes)")
    return Ed25519PrivateKey.from_private_bytes(raw)


def load_public_key(source: str | os.PathLike[str] | bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file, or 32 raw/hex/base64 bytes. Bad input: :class:`KeyFileError`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data, name = _read_key_bytes(source)
    if b"-----BEGIN" in data:
        if b"PRIVATE KEY" in data:
            # a private key where a public one belongs: accept, but never the other way round
            return load_private_key(data).public_key()
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"{name}: not a readable public key ({exc})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(f"{name}: not an Ed25519 public key")
        return key
    raw = _raw_32(data)
    if raw is None:
        raise KeyFileError(f"{name}: not an Ed25519 public key (expected PEM or 32 raw bytes)")
    return Ed25519PublicKey.from_public_bytes(raw)


# ---------------------------------------------------------------- walking and hashing


def _kind(path: str, mode: int) -> str:
    name = path.rsplit("/", 1)[-1].lower()
    suffix = name[name.rfind(".") :] if "." in name else ""
    if suffix == ".pth":
        # in a site directory a .pth is a start-up hook (code); elsewhere it is a torch checkpoint
        return "code" if "site-packages/" in path else "model"
    if suffix in _MODEL_SUFFIXES:
        return "model"
    if suffix in _CODE_SUFFIXES or mode & 0o111:
        return "code"
    return "data"


def _excluded(path: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, p) or fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], p) for p in patterns)


def _file_opener(path: str | os.PathLike[str]) -> Callable[[], io.BufferedIOBase]:
    def open_file() -> io.BufferedIOBase:
        return open(path, "rb")  # the caller closes it

    return open_file


def _walk_folder(root: Path, exclude: Sequence[str], skip: set[str]) -> _Tree:
    tree = _Tree(read_record=lambda rel: (root / rel).read_bytes())
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise InputError(f"cannot list {folder}: {exc.strerror or exc}") from None
        for entry in entries:
            rel = Path(entry.path).relative_to(root).as_posix()
            if rel in skip or _excluded(rel, exclude):
                continue
            if entry.is_symlink():
                tree.found.append(_Found(rel, 0, link=os.readlink(entry.path)))
            elif entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                tree.found.append(_Found(rel, st.st_size, _file_opener(entry.path), mode=st.st_mode))
                if rel.endswith(".dist-info/RECORD"):
                    tree.records.append(rel)
            # FIFOs, sockets and devices are skipped: opening a FIFO would block forever
    return tree


def _walk_zip(root: Path, exclude: Sequence[str]) -> _Tree:
    import zipfile

    try:
        archive = zipfile.ZipFile(root)
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(f"cannot read zip {root}: {exc}") from None
    # One ZipFile per hashing thread: a ZipFile's file position is shared state, and opening the archive
    # anew for every member would re-read the central directory each time (quadratic in members).
    local = threading.local()
    tree = _Tree(read_record=archive.read)
    tree.archives.append(archive)
    lock = threading.Lock()

    def opener(info: zipfile.ZipInfo) -> Callable[[], io.BufferedIOBase]:
        def open_member() -> io.BufferedIOBase:
            mine: zipfile.ZipFile | None = getattr(local, "archive", None)
            if mine is None:
                mine = local.archive = zipfile.ZipFile(root)
                with lock:
                    tree.archives.append(mine)
            return cast(io.BufferedIOBase, mine.open(info))  # a ZipExtFile

        return open_member

    seen: set[str] = set()
    for info in infos:
        if info.is_dir():
            continue
        rel = info.filename.lstrip("/")
        if rel in seen or _excluded(rel, exclude):
            continue
        seen.add(rel)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            tree.found.append(_Found(rel, 0, link=archive.read(info).decode("utf-8", "surrogateescape")))
            continue
        tree.found.append(_Found(rel, info.file_size, opener(info), mode=mode))
        if rel.endswith(".dist-info/RECORD"):
            tree.records.append(rel)
    return tree


def _is_zip(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError:
        return False
    if head not in (b"PK\x03\x04", b"PK\x05\x06"):
        return False  # zipfile (and its import) only for what looks like a zip
    import zipfile

    return zipfile.is_zipfile(path)


def _read_errors() -> tuple[type[BaseException], ...]:
    """Errors of reading a file or zip member; zipfile's own only when a zip was opened (it is then imported)."""
    errors: tuple[type[BaseException], ...] = (OSError, EOFError, RuntimeError, ValueError, KeyError)
    for module, name in (("zipfile", "BadZipFile"), ("zlib", "error"), ("lzma", "LZMAError")):
        loaded = sys.modules.get(module)
        if loaded is not None:
            errors = (*errors, getattr(loaded, name))
    return errors


def _scan_tree(root: Path, exclude: Sequence[str], skip: set[str]) -> _Tree:
    if root.is_dir():
        return _walk_folder(root, exclude, skip)
    if root.is_file() and _is_zip(root):
        return _walk_zip(root, exclude)
    if root.is_file():
        return _Tree(found=[_Found(root.name, root.stat().st_size, _file_opener(root))])
    raise InputError(f"no such file or directory: {root}")


def _dependency_paths(tree: _Tree) -> set[str]:
    """Files listed in any installed distribution's RECORD: vendored dependencies, not the function's own."""
    out: set[str] = set()
    if tree.read_record is None:
        return out
    for record in tree.records:
        base = record.rsplit("/", 2)[0] + "/" if record.count("/") >= 2 else ""
        try:
            text = tree.read_record(record).decode("utf-8", "replace")
        except _read_errors():
            continue
        for line in text.splitlines():
            name = line.split(",", 1)[0].strip().strip('"')
            if name and not name.startswith(("/", "..")):
                out.add(os.path.normpath(base + name).replace(os.sep, "/"))
    return out


def _new_hasher(algorithm: str, size: int) -> _Hasher:
    if algorithm == "blake3":
        try:
            import blake3
        except ImportError:
            raise InputError("the blake3 digest needs the optional 'blake3' package (pip install blake3)") from None
        # big files hash on several threads inside blake3; small ones on the pool's thread only
        hasher: _Hasher = blake3.blake3(max_threads=blake3.blake3.AUTO if size >= 64 * 1024 * 1024 else 1)
        return hasher
    return hashlib.new(algorithm)


def _digest(item: _Found, algorithm: str) -> tuple[str, int]:
    """(hex digest, bytes read). Small files in one read; large ones stream in CHUNK pieces through one buffer."""
    assert item.read is not None
    with item.read() as fh:
        hasher = _new_hasher(algorithm, item.size)
        data = fh.read(_SMALL + 1) if item.size <= _SMALL else b""
        hasher.update(data)
        total = len(data)
        if total <= _SMALL and item.size <= _SMALL:
            return hasher.hexdigest(), total
        if total == 0:
            _advise_sequential(fh)
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while True:
            n = fh.readinto(view)
            if not n:
                break
            hasher.update(view[:n])
            total += n
        return hasher.hexdigest(), total


def _advise_sequential(fh: io.BufferedIOBase) -> None:
    """Ask the kernel for aggressive read-ahead: cold reads (a fresh instance's code volume) dominate there."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:
        return
    # zip members and exotic file systems have no descriptor or take no advice
    with contextlib.suppress(OSError, io.UnsupportedOperation, AttributeError):
        advise(fh.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)


def default_workers() -> int:
    # hashing is CPU-bound with the GIL released, but slow storage (Lambda's code volume) adds latency:
    # a few more threads than cores keeps every core busy without thrashing
    return max(2, min(16, (os.cpu_count() or 1) + 2))


def _hash_all(
    items: Sequence[_Found], algorithm: str, workers: int | None
) -> tuple[dict[str, tuple[str, int]], list[str]]:
    """Digests of every regular file, biggest first for load balance; unreadable files are listed apart."""
    todo = sorted((f for f in items if f.read is not None), key=lambda f: -f.size)
    digests: dict[str, tuple[str, int]] = {}
    unreadable: list[str] = []

    errors = _read_errors()

    def one(item: _Found) -> tuple[str, tuple[str, int] | None]:
        try:
            return item.path, _digest(item, algorithm)
        except errors:
            return item.path, None

    if algorithm == "blake3":
        _new_hasher(algorithm, 0)  # fail early, once, when the package is missing
    n = workers or default_workers()
    if n <= 1 or len(todo) <= 1:
        results = map(one, todo)
        pairs = list(results)
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="sas-hash") as pool:
            pairs = list(pool.map(one, todo))
    for path, result in pairs:
        if result is None:
            unreadable.append(path)
        else:
            digests[path] = result
    return digests, unreadable


# ---------------------------------------------------------------- build and verify


def build_manifest(
    root: str | os.PathLike[str],
    private_key: Ed25519PrivateKey,
    *,
    scan_summary: Mapping[str, Any] | None = None,
    algorithm: str = "sha256",
    exclude: Sequence[str] = (),
    workers: int | None = None,
) -> Manifest:
    """Hash every file under ``root`` (a folder, a zip, or one file) and sign the result.

    ``exclude`` holds glob patterns (matched against the relative path and the base name) that are left out
    and recorded in the manifest, so the verifier leaves out the same. Symlinks are recorded, not followed.
    """
    from sas import __version__

    if algorithm not in ALGORITHMS:
        raise InputError(f"unknown digest algorithm {algorithm!r} (expected one of: {', '.join(ALGORITHMS)})")
    base = Path(root)
    tree = _scan_tree(base, exclude, set())
    try:
        digests, unreadable = _hash_all(tree.found, algorithm, workers)
        deps = _dependency_paths(tree)
    finally:
        tree.close()
    if unreadable:
        raise InputError(f"cannot read {len(unreadable)} file(s), first: {sorted(unreadable)[0]}")
    entries: list[FileEntry] = []
    for item in tree.found:
        if item.link is not None:
            entries.append(FileEntry(item.path, kind="symlink", link=item.link))
            continue
        digest, size = digests[item.path]
        kind = _kind(item.path, item.mode)
        if item.path in deps and kind != "model":
            kind = "dependency"
        entries.append(FileEntry(item.path, size, digest, kind))
    entries.sort(key=lambda e: e.path)
    unsigned = Manifest(
        root=base.name or os.fspath(base),
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        tool_version=__version__,
        algorithm=algorithm,
        files=tuple(entries),
        exclude=tuple(exclude),
        scan_summary=scan_summary,
        public_key=public_key_hex(private_key.public_key()),
    )
    signature = private_key.sign(unsigned.signed_bytes())
    return _replace_signature(unsigned, base64.b64encode(signature).decode("ascii"))


def _replace_signature(manifest: Manifest, signature: str) -> Manifest:
    return replace(manifest, signature=signature)


def signature_valid(manifest: Manifest, public_key: Ed25519PublicKey) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        signature = base64.b64decode(manifest.signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        public_key.verify(signature, manifest.signed_bytes())
    except InvalidSignature:
        return False
    return True


def read_manifest(source: str | os.PathLike[str] | bytes) -> Manifest:
    if isinstance(source, bytes):
        return Manifest.from_bytes(source)
    try:
        data = Path(source).read_bytes()
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {os.fspath(source)}: {exc.strerror or exc}") from None
    return Manifest.from_bytes(data, source=os.fspath(source))


def _normalize_prefix(path: str) -> str:
    normalized = posixpath.normpath(path.replace("\\", "/")).strip("/")
    return "" if normalized == "." else normalized


def _selected(path: str, prefixes: Sequence[str] | None) -> bool:
    if prefixes is None:
        return True
    return any(path == p or path.startswith(p + "/") or p == "" for p in prefixes)


def verify_tree(
    root: str | os.PathLike[str],
    manifest_path_or_bytes: str | os.PathLike[str] | bytes | Manifest,
    public_key: Ed25519PublicKey | str | os.PathLike[str] | bytes,
    *,
    paths: Iterable[str] | None = None,
    workers: int | None = None,
) -> IntegrityReport:
    """Compare ``root`` with a signed manifest. Never raises on a mismatch: the report says what differs.

    ``paths`` limits the check to these relative paths or folders (a cold start may check code and models
    only). A manifest file that lies inside ``root`` is not part of the tree. Raises :class:`ManifestError`
    or :class:`KeyFileError` only when the inputs are unusable.
    """
    started = time.perf_counter()
    key = load_public_key(public_key) if isinstance(public_key, str | os.PathLike | bytes) else public_key
    if isinstance(manifest_path_or_bytes, Manifest):
        manifest = manifest_path_or_bytes
    else:
        manifest = read_manifest(manifest_path_or_bytes)
    bad_signature = not signature_valid(manifest, key)

    base = Path(root)
    skip: set[str] = set()
    if isinstance(manifest_path_or_bytes, str | os.PathLike) and base.is_dir():
        with contextlib.suppress(ValueError):  # ValueError: the manifest lives outside the tree
            skip.add(Path(manifest_path_or_bytes).resolve().relative_to(base.resolve()).as_posix())
    prefixes = [_normalize_prefix(p) for p in paths] if paths is not None else None
    tree = _scan_tree(base, manifest.exclude, skip)
    on_disk = {f.path: f for f in tree.found if _selected(f.path, prefixes)}
    expected = {e.path: e for e in manifest.files if _selected(e.path, prefixes)}

    added = sorted(set(on_disk) - set(expected))
    removed = sorted(set(expected) - set(on_disk))
    changed: list[str] = []
    to_hash: list[_Found] = []
    for path in sorted(set(on_disk) & set(expected)):
        found, entry = on_disk[path], expected[path]
        if (entry.link is None) != (found.link is None):
            changed.append(path)
        elif found.link is not None:
            if found.link != entry.link:
                changed.append(path)
        elif found.size != entry.size:
            changed.append(path)  # no need to read it
        else:
            to_hash.append(found)
    try:
        digests, unreadable = _hash_all(to_hash, manifest.algorithm, workers)
    finally:
        tree.close()
    for path, (digest, size) in digests.items():
        entry = expected[path]
        if digest != entry.digest or size != entry.size:
            changed.append(path)
    changed.sort()
    ok = not (bad_signature or changed or added or removed or unreadable)
    return IntegrityReport(
        ok=ok,
        changed=tuple(changed),
        added=tuple(added),
        removed=tuple(removed),
        bad_signature=bad_signature,
        files_checked=len(on_disk),
        bytes_checked=sum(size for _, size in digests.values()),
        seconds=time.perf_counter() - started,
        unreadable=tuple(sorted(unreadable)),
        key_id=manifest.key_id,
        created=manifest.created,
    )


# ---------------------------------------------------------------- parsing helpers


def _str(doc: Mapping[str, Any], key: str) -> str:
    value = doc[key]
    if not isinstance(value, str):
        raise TypeError(f"{key} must be a string")
    return value


def _list(doc: Mapping[str, Any], key: str) -> list[Any]:
    value = doc[key]
    if not isinstance(value, list):
        raise TypeError(f"{key} must be a list")
    return value


def _entry(item: Any, algorithm: str) -> FileEntry:
    if not isinstance(item, dict):
        raise TypeError("each file must be an object")
    path = _str(item, "path")
    if "link" in item:
        return FileEntry(path, kind="symlink", link=_str(item, "link"))
    size = item["size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise TypeError(f"size of {path} must be a non-negative integer")
    digest = _str(item, algorithm)
    if not digest or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"digest of {path} is not lowercase hex")
    return FileEntry(path, size, digest, str(item.get("kind", "data")))
