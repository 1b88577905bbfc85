"""Cold-start checks: was the function altered before or while it started, and who is this instance?

Three things run once, when the Shield is created at the end of the function's init:

- start-up tampering: variables that make the interpreter or the loader run extra code (``LD_PRELOAD``,
  ``LD_AUDIT``, ``PYTHONSTARTUP``, ``PYTHONINSPECT``, ``PYTHONBREAKPOINT``, a ``PYTHONWARNINGS`` category
  that imports a module, ``AWS_LAMBDA_EXEC_WRAPPER``), ``PYTHONPATH`` entries beyond the platform's own,
  ``.pth`` files that execute code (``import`` lines) and ``sitecustomize``/``usercustomize`` modules,
  except those listed in ``[runtime.cold_start] allow_env``/``allow_pth`` or known to be benign;
- the signed integrity manifest of code, dependencies and models (:mod:`sas.integrity`, imported only when
  a manifest is configured, since it needs ``cryptography``): SHA-256 of every file, so its cost is the
  disk read plus ~0.7 s per GB per core (SHA-NI ~1.5 GB/s measured on this machine);
- the per-instance id: random, born after init; a fork, or a SnapStart restore (a changed boot id under
  ``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start``, or the runtime's after-restore hook) gives a fresh one,
  because SnapStart clones one initialised memory image into many instances.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sas.runtime.monitors.audit import Violation
from sas.taxonomy import Severity, Threat

# Variables whose mere presence runs code before or around the handler.
TAMPER_VARIABLES: Mapping[str, Severity] = {
    "LD_PRELOAD": Severity.CRITICAL,
    "LD_AUDIT": Severity.CRITICAL,
    "PYTHONSTARTUP": Severity.HIGH,
    "PYTHONINSPECT": Severity.MEDIUM,
    "PYTHONBREAKPOINT": Severity.MEDIUM,
    "AWS_LAMBDA_EXEC_WRAPPER": Severity.HIGH,
    "PYTHONHOME": Severity.MEDIUM,
    "PYTHONEXECUTABLE": Severity.MEDIUM,
}

# PYTHONPATH entries each platform sets itself.
PLATFORM_PYTHONPATH_PREFIXES = (
    "/var/runtime",
    "/var/task",
    "/var/lang/lib",
    "/opt/python",
    "/home/site/wwwroot",
    "/azure-functions-host",
    "/workspace",
    "/layers",
)

# .pth files that ordinary installs create, with a fragment their executable line always contains.
BENIGN_PTH: Mapping[str, str] = {
    "distutils-precedence.pth": "_distutils_hack",
    "_virtualenv.pth": "_virtualenv",
}
BENIGN_PTH_PREFIXES: Mapping[str, str] = {
    "__editable__.": "__editable__",
}


def check_environment(
    env: Mapping[str, str],
    *,
    allow_env: Iterable[str] = (),
    code_dir: str = "",
    writable: Iterable[str] = (),
) -> list[Violation]:
    allowed = set(allow_env)
    found: list[Violation] = []
    for name, severity in TAMPER_VARIABLES.items():
        value = env.get(name)
        if value and name not in allowed:
            found.append(_tamper(severity, variable=name, value=value[:300]))
    warnings = env.get("PYTHONWARNINGS", "")
    # a filter's category field "pkg.module.Class" makes the interpreter import pkg.module at start-up
    if "PYTHONWARNINGS" not in allowed and any(
        "." in [*part.split(":"), "", "", ""][2] for part in warnings.split(",")
    ):
        found.append(_tamper(Severity.MEDIUM, variable="PYTHONWARNINGS", value=warnings[:300]))
    if "PYTHONPATH" not in allowed:
        expected = (*PLATFORM_PYTHONPATH_PREFIXES, code_dir) if code_dir else PLATFORM_PYTHONPATH_PREFIXES
        writable_dirs = tuple(w for w in writable if w)
        for entry in filter(None, env.get("PYTHONPATH", "").split(os.pathsep)):
            real = os.path.abspath(entry)
            if any(real == w or real.startswith(w.rstrip("/") + "/") for w in writable_dirs):
                found.append(_tamper(Severity.HIGH, variable="PYTHONPATH", entry=entry, writable=True))
            elif not any(real == p or real.startswith(p.rstrip("/") + "/") for p in expected):
                found.append(_tamper(Severity.MEDIUM, variable="PYTHONPATH", entry=entry))
    return found


def _site_dirs(paths: Iterable[str]) -> list[str]:
    dirs: list[str] = []
    for p in paths:
        if p and p.rstrip("/").endswith(("site-packages", "dist-packages")) and p not in dirs and os.path.isdir(p):
            dirs.append(p)
    return dirs


def check_startup_files(paths: Iterable[str], *, allow: Iterable[str] = ()) -> list[Violation]:
    """Executable ``.pth`` lines and ``sitecustomize``/``usercustomize`` modules in the site directories."""
    allowed = set(allow)
    found: list[Violation] = []
    for directory in _site_dirs(paths):
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            if name in allowed:
                continue
            if name.endswith(".pth"):
                path = os.path.join(directory, name)
                try:
                    with open(path, encoding="utf-8", errors="replace") as fh:
                        lines = [ln.strip() for ln in fh.read(65536).splitlines()]
                except OSError:
                    continue
                code = [ln for ln in lines if ln.startswith(("import ", "import\t"))]
                if code and not _benign_pth(name, code):
                    found.append(_tamper(Severity.HIGH, file=path, lines=[c[:200] for c in code[:5]]))
            elif name in {"sitecustomize.py", "usercustomize.py", "sitecustomize", "usercustomize"}:
                found.append(_tamper(Severity.HIGH, file=os.path.join(directory, name)))
    for module in ("sitecustomize", "usercustomize"):
        loaded = sys.modules.get(module)
        if loaded is not None and f"{module}.py" not in allowed and module not in allowed:
            where = str(getattr(loaded, "__file__", "") or "")
            if not any(v.details.get("file") == where for v in found):
                found.append(_tamper(Severity.HIGH, module=module, file=where))
    return found


def _benign_pth(name: str, code: list[str]) -> bool:
    marker = BENIGN_PTH.get(name)
    if marker is None:
        marker = next((m for prefix, m in BENIGN_PTH_PREFIXES.items() if name.startswith(prefix)), None)
    if marker is None and name.endswith("-nspkg.pth"):
        marker = "types.ModuleType"
    return marker is not None and all(marker in line for line in code)


def _tamper(severity: Severity, **details: Any) -> Violation:
    return Violation("cold-start", Threat.COLD_START_TAMPERING, severity, details)


def verify_manifest(
    root: str, manifest: str, public_key: str, paths: tuple[str, ...] = ()
) -> tuple[bool, dict[str, Any]]:
    """Verify the signed manifest of ``root``. Returns (ok, details for the event)."""
    from sas import integrity  # cryptography is loaded only when a manifest is configured

    try:
        key = integrity.load_public_key(public_key)
        report = integrity.verify_tree(root, manifest, key, paths=paths or None)
    except Exception as exc:  # a broken manifest is a failed verification, not a crash
        return False, {"error": f"{type(exc).__name__}: {exc}"[:300], "manifest": manifest}
    details: dict[str, Any] = {
        "manifest": manifest,
        "root": root,
        "changed": list(report.changed)[:50],
        "added": list(report.added)[:50],
        "removed": list(report.removed)[:50],
        "bad_signature": bool(report.bad_signature),
        "files_checked": int(report.files_checked),
        "bytes_checked": int(report.bytes_checked),
        "seconds": round(float(report.seconds), 4),
    }
    if report.bytes_checked and report.seconds:
        details["seconds_per_gb"] = round(float(report.seconds) * (1 << 30) / float(report.bytes_checked), 3)
    return bool(report.ok), details


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return ""


# Forks seen by this process's lineage, counted by an at-fork hook: comparing it costs nothing, whereas
# os.getpid() is a system call on every request (glibc stopped caching the pid in 2.25).
FORKS = [0]


def _count_fork() -> None:
    FORKS[0] += 1


os.register_at_fork(after_in_child=_count_fork)


@dataclass(slots=True)
class InstanceIdentity:
    """A random id for this function instance, renewed after a fork or a SnapStart restore."""

    snap_start: bool = False
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    pid: int = field(default_factory=os.getpid)
    boot_id: str = ""
    restores: int = 0
    forks: int = field(default_factory=lambda: FORKS[0])

    @classmethod
    def create(cls, env: Mapping[str, str]) -> InstanceIdentity:
        snap = env.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start"
        identity = cls(snap_start=snap, boot_id=_boot_id() if snap else "")
        if snap:
            identity._register_restore_hook()
        return identity

    def _register_restore_hook(self) -> None:
        # The Lambda python runtime ships snapshot_restore_py; it is not on PyPI and absent elsewhere.
        try:
            from snapshot_restore_py import register_after_restore  # type: ignore[import-untyped,unused-ignore]
        except ImportError:
            return
        register_after_restore(self.renew)

    def renew(self) -> str:
        self.instance_id = uuid.uuid4().hex
        self.pid = os.getpid()
        self.forks = FORKS[0]
        if self.snap_start:
            self.boot_id = _boot_id()
        self.restores += 1
        return self.instance_id

    def current(self) -> tuple[str, bool]:
        """The id to use now, and whether it was just renewed (forked, or restored from a snapshot)."""
        if FORKS[0] != self.forks:
            return self.renew(), True
        if self.snap_start:
            boot = _boot_id()
            if boot and boot != self.boot_id:
                return self.renew(), True
        return self.instance_id, False
