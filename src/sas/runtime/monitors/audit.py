"""The in-process policy, enforced through a PEP 578 audit hook.

Why an audit hook: it is the only stdlib mechanism that sees ``socket.connect``, ``subprocess.Popen``,
``open``, ``compile`` and ``pickle.find_class`` wherever they are called from (a poisoned dependency, an
unsafe deserialisation), with no dependency and no per-call cost for code that raises no events (the
json -> numpy -> scikit-learn predict path raises none). Hooks cannot be removed, so exactly one hook is
installed per process and it dispatches to the *active* :class:`AuditPolicy`; with none active it returns
at once. That makes the hook safe to install in a test process and lets a new Shield replace an old one.

What it enforces once active (that is, after the function's init, when the Shield is created):

- egress: ``socket.connect``/``sendto``/``sendmsg`` to an address outside ``[runtime.egress] allow``, and
  name lookups (``getaddrinfo``, ``gethostbyname``) of hosts outside it, except the platform's own
  runtime API. Host rules are resolved at install and on every allowed lookup (``_socket.getaddrinfo``,
  which ``socket.getaddrinfo`` calls, is wrapped to learn the addresses an allowed name resolves to);
- processes: ``subprocess.Popen``, ``os.system``, ``os.exec*``, ``os.posix_spawn*``, ``os.spawn*``,
  ``os.fork``/``forkpty``, and ``_posixsubprocess.fork_exec`` called directly (wrapped, because it raises no
  audit event of its own) unless ``allow_subprocess``;
- writes: ``open`` for writing, ``os.remove``/``rename``/``mkdir``/``rmdir``/``chmod``/``chown``/
  ``truncate``/``symlink``/``link``/``utime`` outside ``tmp_dir``, ``[runtime.files] allow_write`` and the
  ledger file;
- dynamic code: ``compile`` outside an import, ``code.__new__`` and ``marshal.loads`` outside importlib,
  import of code from a writable directory, ``ctypes.dlopen``/``dlsym`` (new native code), a second
  ``sys.addaudithook``;
- ``pickle.find_class`` of a global outside the model allow-list.

Known blind spots (documented in docs/runtime.md): native code (C extensions, ctypes calls through a
function pointer looked up before init, gRPC's C core) raises no audit events; ``_posixsubprocess.fork_exec``
bound to a name before the Shield was created escapes the wrapper; an audit hook can be bypassed by code
that already runs natively. The hook is a tripwire for Python-level compromise, not a sandbox.
"""

from __future__ import annotations

import _socket
import ast
import fnmatch
import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sas.runtime.policy import EgressRule, RuntimePolicy
from sas.taxonomy import Severity, Threat

if TYPE_CHECKING:
    from ipaddress import ip_address as _ip_address
else:

    def _ip_address(text):
        """``ipaddress.ip_address``, imported by the first address checked (the first call rebinds this name):
        the module costs ~1 ms of a cold start, and a function that never connects never needs it."""
        global _ip_address  # noqa: PLW0603 - rebinding itself to the real one is the point
        from ipaddress import ip_address as _ip_address

        return _ip_address(text)


class PolicyViolation(PermissionError):
    """Raised into the offending code in enforce mode. The message names the rule, never the policy."""


class HookRefused(RuntimeError):
    """Refuses a new audit hook: CPython drops the hook silently for a RuntimeError and nothing else."""


@dataclass(frozen=True, slots=True)
class Violation:
    """What the hook saw; the Shield turns it into a runtime event."""

    kind: str  # egress | subprocess | file-write | dynamic-code | native-code | pickle-global | audit-hook
    threat: Threat
    severity: Severity
    details: Mapping[str, Any] = field(default_factory=dict)


Reporter = Callable[[Violation], None]

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_IMPORTLIB_FILES = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")
_CODE_SUFFIXES = (".py", ".pyc", ".so", ".pth")
_SPAWN_EVENTS = frozenset(
    {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty"}
)
_PATH_WRITE_EVENTS = {
    # event -> indexes of the path arguments that are modified
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.mkdir": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.truncate": (0,),
    "os.utime": (0,),
    "os.rename": (0, 1),
    "os.symlink": (1,),
    "os.link": (1,),
    "shutil.rmtree": (0,),
}
_NET_EVENTS = frozenset({"socket.connect", "socket.sendto", "socket.sendmsg"})
_DNS_EVENTS = frozenset({"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"})
WATCHED_EVENTS = frozenset(
    _SPAWN_EVENTS
    | _PATH_WRITE_EVENTS.keys()
    | _NET_EVENTS
    | _DNS_EVENTS
    | {"open", "compile", "code.__new__", "marshal.loads", "ctypes.dlopen", "ctypes.dlsym"}
    | {"pickle.find_class", "sys.addaudithook"}
)


class _HookState:
    """The process-wide hook's state (one per process: audit hooks cannot be removed)."""

    active: AuditPolicy | None = None
    installed: bool = False


_STATE = _HookState()
_LOCAL = threading.local()
# Name lookups are watched one level down, in the C module: ``socket.getaddrinfo`` looks
# ``_socket.getaddrinfo`` up on every call, so wrapping it sees every lookup made through ``socket`` (and
# direct ones) without importing ``socket`` (~2 ms of a cold start: its enums and ``selectors``) for
# functions that never use the network.
_ORIGINAL_GETADDRINFO = _socket.getaddrinfo


def _in_importlib(depth: int = 40) -> bool:
    """Whether the current call comes from the import machinery (walks at most ``depth`` frames)."""
    frame: Any = sys._getframe(2)
    while frame is not None and depth > 0:
        if frame.f_code.co_filename in _IMPORTLIB_FILES:
            return True
        frame = frame.f_back
        depth -= 1
    return False


_AST_FILE = ast.__file__


# The Shield imports parts of itself on first use (a platform adapter, the ML detectors). Those files are
# the Shield's own code, not new code: deployed, they sit in /var/task or /opt, read-only, and the manifest
# verifies them at cold start; only a checkout under a writable folder (a clone in /tmp) makes them look
# writable, and they must not refuse to load there.
_SHIELD_PACKAGE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))) + os.sep


def _shield_module(path: str) -> bool:
    return os.path.realpath(path).startswith(_SHIELD_PACKAGE)


def _from_ast_parse() -> bool:
    """Whether this compile comes straight from ``ast.parse``, which always compiles to a syntax tree only
    (``PyCF_ONLY_AST``): no code object comes out of it, so nothing can run. ``ast.literal_eval`` goes through
    it, and numpy's ``np.load`` reads every ``.npy``/``.npz`` header with ``literal_eval``.
    """
    frame: Any = sys._getframe(1)
    for _ in range(8):  # a few hook frames, then compile's caller
        if frame is None:
            return False
        if frame.f_code.co_name == "parse" and frame.f_code.co_filename == _AST_FILE:
            return True
        frame = frame.f_back
    return False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event not in WATCHED_EVENTS:
        return
    policy = _STATE.active
    if policy is None or getattr(_LOCAL, "busy", False):
        return
    _LOCAL.busy = True
    try:
        policy.handle(event, args)
    finally:
        _LOCAL.busy = False


def _guarded_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    result = _ORIGINAL_GETADDRINFO(host, port, *args, **kwargs)
    policy = _STATE.active
    if policy is not None and host:
        policy.learn(host, result)
    return result


def _wrap_fork_exec() -> None:
    """Route ``_posixsubprocess.fork_exec`` through the policy: it raises no audit event of its own."""
    try:
        import _posixsubprocess
    except ImportError:  # not POSIX
        return
    original = _posixsubprocess.fork_exec
    if getattr(original, "__sas_wrapped__", False):
        return

    def fork_exec(*args: Any, **kwargs: Any) -> Any:
        policy = _STATE.active
        if policy is not None:
            policy.direct_fork_exec(args)
        return original(*args, **kwargs)

    fork_exec.__sas_wrapped__ = True  # type: ignore[attr-defined]
    _posixsubprocess.fork_exec = fork_exec
    # subprocess (3.11+) binds fork_exec at import: without this, Popen would bypass the wrapper, and the
    # "already judged at subprocess.Popen" mark it leaves would excuse the next direct call
    subprocess_module = sys.modules.get("subprocess")
    if subprocess_module is not None and getattr(subprocess_module, "_fork_exec", None) is original:
        subprocess_module._fork_exec = fork_exec  # type: ignore[attr-defined]


def install(policy: AuditPolicy) -> None:
    """Make ``policy`` the active one; the first call also adds the process-wide hook and wrappers."""
    if not _STATE.installed:
        sys.addaudithook(_hook)
        _wrap_fork_exec()
        _socket.getaddrinfo = _guarded_getaddrinfo
        _STATE.installed = True
    policy.resolve_rules()
    _STATE.active = policy


def deactivate(policy: AuditPolicy | None = None) -> None:
    """Stop enforcing ``policy`` (or whatever is active). The hook stays, as a no-op."""
    if policy is None or _STATE.active is policy:
        _STATE.active = None


def active() -> AuditPolicy | None:
    return _STATE.active


def runtime_api_endpoints(env: Mapping[str, str]) -> list[str]:
    """The platform's own endpoints the function must always reach, as ``host:port`` allow-list entries."""
    out: list[str] = []
    api = env.get("AWS_LAMBDA_RUNTIME_API")
    if api:
        out.append(api if ":" in api else f"{api}:80")
    for var in ("IDENTITY_ENDPOINT", "MSI_ENDPOINT"):  # Azure managed identity
        url = env.get(var, "")
        if "://" in url:
            hostport = url.split("://", 1)[1].split("/", 1)[0]
            out.append(hostport if ":" in hostport else f"{hostport}:80")
    if env.get("K_SERVICE") or env.get("FUNCTION_TARGET"):  # GCP metadata server (credentials)
        out += ["metadata.google.internal:80", "169.254.169.254:80"]
    return out


class AuditPolicy:
    """The decisions behind the hook. ``report`` records; ``enforce`` also raises :class:`PolicyViolation`."""

    def __init__(
        self,
        policy: RuntimePolicy,
        report: Reporter,
        *,
        extra_egress: Iterable[str] = (),
        extra_writable: Iterable[str] = (),
    ) -> None:
        self.policy = policy
        self.report = report
        self.enforce = policy.enforce
        self.rules: tuple[EgressRule, ...] = policy.egress + tuple(EgressRule.parse(e) for e in extra_egress)
        self._host_rules = [r for r in self.rules if r.host is not None]
        self._net_rules = [r for r in self.rules if r.network is not None]
        self._learned: dict[str, set[int | None]] = {}
        writable = [policy.tmp_dir, *policy.allow_write, *extra_writable]
        self.writable = tuple(os.path.realpath(p) for p in writable if p)
        self.spawned = 0  # spawns seen (the contamination monitor looks for lingering children only then)
        self.writes = 0  # writes seen, allowed or not (the contamination monitor looks at tmp_dir only then)

    # --- egress -------------------------------------------------------------------------------------
    def resolve_rules(self) -> None:
        """Resolve the configured host rules now, before the hook is active (cold start, not the hot path).

        The platform's own endpoints are not resolved: off the platform their names may not exist, and a
        failing DNS lookup would stall the cold start.
        """
        for rule in self._host_rules:
            if rule not in self.policy.egress:
                continue
            if rule.host and "*" not in rule.host:
                try:
                    infos = _ORIGINAL_GETADDRINFO(rule.host, rule.port or 0)
                except (OSError, UnicodeError):
                    continue
                for info in infos:
                    self._learned.setdefault(str(info[4][0]), set()).add(rule.port)

    def _host_rule(self, host: str, port: int | None) -> bool:
        name = host.lower().rstrip(".")
        for rule in self._host_rules:
            assert rule.host is not None
            if (rule.port is None or port is None or rule.port == port) and (
                rule.host == name or ("*" in rule.host and fnmatch.fnmatchcase(name, rule.host))
            ):
                return True
        return False

    def learn(self, host: Any, infos: Any) -> None:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if not self._host_rule(name, None):
            return
        try:
            for info in infos:
                self._learned.setdefault(str(info[4][0]), set()).add(None)
        except (TypeError, IndexError):
            return

    def address_allowed(self, host: str, port: int | None) -> bool:
        try:
            ip = _ip_address(host.split("%", 1)[0])
        except ValueError:
            return self._host_rule(host, port)
        ports = self._learned.get(str(ip))
        if ports is not None and (None in ports or port in ports):
            return True
        mapped = getattr(ip, "ipv4_mapped", None)  # an IPv6 address that carries an IPv4 one
        if mapped is not None:
            ip = mapped
        for rule in self._net_rules:
            assert rule.network is not None
            if ip in rule.network and (rule.port is None or rule.port == port):
                return True
        return False

    def _check_address(self, event: str, sock: Any, address: Any) -> None:
        family = getattr(sock, "family", None)
        if family not in (_socket.AF_INET, _socket.AF_INET6) or not isinstance(address, tuple) or len(address) < 2:
            return  # AF_UNIX and friends stay inside the sandbox
        host, port = str(address[0]), address[1]
        if not self.address_allowed(host, port if isinstance(port, int) else None):
            self.violate(
                "egress",
                Threat.RUNTIME_COMPROMISE,
                Severity.HIGH,
                {"operation": event, "host": host, "port": port},
            )

    def _check_lookup(self, event: str, args: tuple[Any, ...]) -> None:
        host = args[0] if args else None
        if not host:
            return
        name = host.decode(errors="replace") if isinstance(host, bytes) else str(host)
        port = args[1] if event == "socket.getaddrinfo" and len(args) > 1 and isinstance(args[1], int) else None
        try:
            _ip_address(name.split("%", 1)[0])
            return  # a literal address: checked at connect
        except ValueError:
            pass
        if not self._host_rule(name, port):
            self.violate("egress", Threat.RUNTIME_COMPROMISE, Severity.HIGH, {"operation": event, "host": name})

    # --- files --------------------------------------------------------------------------------------
    def path_writable(self, path: Any) -> bool:
        try:
            real = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return any(real == w or real.startswith(w + os.sep) for w in self.writable)

    def _check_open(self, args: tuple[Any, ...]) -> None:
        path = args[0] if args else None
        if path is None or isinstance(path, int):
            return
        mode = args[1] if len(args) > 1 else None
        flags = args[2] if len(args) > 2 else 0
        writing = bool(flags & _WRITE_FLAGS) if isinstance(flags, int) and flags else False
        if not writing and isinstance(mode, str):
            writing = any(c in mode for c in "wax+")
        if writing:
            self.writes += 1
            if not self.path_writable(path):
                self.violate("file-write", Threat.RUNTIME_COMPROMISE, Severity.HIGH, {"path": os.fsdecode(path)})
            return
        # Reading code out of a writable directory through the import system = loading new code.
        if not self.policy.allow_dynamic_code:
            text = os.fsdecode(path)
            if (
                text.endswith(_CODE_SUFFIXES)
                and self.path_writable(text)
                and _in_importlib()
                and not _shield_module(text)
            ):
                self.violate("dynamic-code", Threat.RUNTIME_COMPROMISE, Severity.HIGH, {"import_from": text})

    def _check_path_event(self, event: str, args: tuple[Any, ...]) -> None:
        self.writes += 1
        for index in _PATH_WRITE_EVENTS[event]:
            if index < len(args):
                path = args[index]
                if isinstance(path, int) or path is None:
                    continue
                if not self.path_writable(path):
                    self.violate(
                        "file-write",
                        Threat.RUNTIME_COMPROMISE,
                        Severity.HIGH,
                        {"operation": event, "path": os.fsdecode(path)},
                    )
                    return

    # --- processes ----------------------------------------------------------------------------------
    def _check_spawn(self, event: str, args: tuple[Any, ...]) -> None:
        self.spawned += 1
        if not self.policy.allow_subprocess:
            self.violate(
                "subprocess", Threat.RUNTIME_COMPROMISE, Severity.HIGH, {"operation": event, **_argv(event, args)}
            )
        if event == "subprocess.Popen":
            # set only once the spawn is let through, so a blocked Popen cannot excuse a direct fork_exec
            _LOCAL.popen_seen = True

    def direct_fork_exec(self, args: tuple[Any, ...]) -> None:
        if getattr(_LOCAL, "popen_seen", False):
            _LOCAL.popen_seen = False  # already judged at subprocess.Popen
            return
        self.spawned += 1
        if self.policy.allow_subprocess:
            return
        argv = args[0] if args else None
        shown = [os.fsdecode(a) for a in argv][:8] if isinstance(argv, (list, tuple)) else []
        self.violate(
            "subprocess",
            Threat.RUNTIME_COMPROMISE,
            Severity.CRITICAL,
            {"operation": "_posixsubprocess.fork_exec", "argv": shown},
        )

    # --- dynamic code -------------------------------------------------------------------------------
    def _check_code(self, event: str, args: tuple[Any, ...]) -> None:
        if self.policy.allow_dynamic_code:
            return
        if event == "compile":
            filename = args[1] if len(args) > 1 else None
            if _in_importlib():
                if (
                    isinstance(filename, str)
                    and filename.endswith(".py")
                    and self.path_writable(filename)
                    and not _shield_module(filename)
                ):
                    self.violate("dynamic-code", Threat.RUNTIME_COMPROMISE, Severity.HIGH, {"import_from": filename})
                return
            if _from_ast_parse():
                return
            source = args[0] if args else None
            preview = source[:120] if isinstance(source, (str, bytes)) else type(source).__name__
            self.violate(
                "dynamic-code",
                Threat.RUNTIME_COMPROMISE,
                Severity.HIGH,
                {"operation": "compile", "filename": str(filename), "source": str(preview)},
            )
        elif not _in_importlib():  # code.__new__, marshal.loads
            self.violate("dynamic-code", Threat.RUNTIME_COMPROMISE, Severity.HIGH, {"operation": event})

    def _check_native(self, event: str, args: tuple[Any, ...]) -> None:
        if self.policy.allow_native:
            return
        name = args[0] if event == "ctypes.dlopen" and args else (args[1] if len(args) > 1 else "")
        self.violate(
            "native-code", Threat.RUNTIME_COMPROMISE, Severity.HIGH, {"operation": event, "name": str(name)[:200]}
        )

    def _check_pickle(self, args: tuple[Any, ...]) -> None:
        module, name = (str(args[0]), str(args[1])) if len(args) > 1 else ("", "")
        dotted = f"{module}.{name}"
        for prefix in self.policy.pickle_allow:
            if dotted == prefix or dotted.startswith(prefix + ".") or module == prefix:
                return
        self.violate("pickle-global", Threat.UNSAFE_MODEL_ARTIFACT, Severity.CRITICAL, {"global": dotted})

    # --- dispatch -----------------------------------------------------------------------------------
    def handle(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            self._check_open(args)
        elif event in _NET_EVENTS:
            address = args[1] if event != "socket.sendmsg" else (args[1] if len(args) > 1 else None)
            self._check_address(event, args[0] if args else None, address)
        elif event in _DNS_EVENTS:
            self._check_lookup(event, args)
        elif event in _SPAWN_EVENTS:
            self._check_spawn(event, args)
        elif event in _PATH_WRITE_EVENTS:
            self._check_path_event(event, args)
        elif event in {"compile", "code.__new__", "marshal.loads"}:
            self._check_code(event, args)
        elif event in {"ctypes.dlopen", "ctypes.dlsym"}:
            self._check_native(event, args)
        elif event == "pickle.find_class":
            self._check_pickle(args)
        elif event == "sys.addaudithook":
            try:
                self.violate("audit-hook", Threat.RUNTIME_COMPROMISE, Severity.MEDIUM, {"operation": event})
            except PolicyViolation:
                # only a RuntimeError stops sys.addaudithook (which then returns quietly without the hook)
                raise HookRefused("blocked by runtime policy: audit-hook") from None

    def violate(self, kind: str, threat: Threat, severity: Severity, details: Mapping[str, Any]) -> None:
        self.report(Violation(kind, threat, severity, details))
        if self.enforce:
            raise PolicyViolation(f"blocked by runtime policy: {kind}")


def _argv(event: str, args: tuple[Any, ...]) -> dict[str, Any]:
    """The command line of a spawn event, truncated, for the ledger."""
    try:
        if event == "subprocess.Popen":
            argv = args[1]
            if isinstance(argv, (str, bytes)):
                return {"argv": [os.fsdecode(argv)[:200]]}
            return {"argv": [os.fsdecode(a)[:200] for a in list(argv)[:8]]}
        if event == "os.system":
            return {"argv": [os.fsdecode(args[0])[:200]]}
        if event in {"os.exec", "os.posix_spawn"}:
            return {"argv": [os.fsdecode(a)[:200] for a in list(args[1])[:8]]}
        if event == "os.spawn":
            return {"argv": [os.fsdecode(a)[:200] for a in list(args[2])[:8]]}
    except (TypeError, IndexError, ValueError):
        pass
    return {}
