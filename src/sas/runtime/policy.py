"""The runtime policy: the ``[runtime]`` configuration, parsed and validated once at cold start.

``Shield(dict)`` and ``Shield.from_config(path)`` both end here, so the two take exactly the same shape.
Every key, its default and its meaning (docs/runtime.md repeats this table for users)::

    [runtime]
    mode = "monitor"            # or "enforce" (env SAS_MODE overrides the file)
    function = ""               # name written in events; default: the platform's function name
    tmp_dir = "/tmp"            # the writable scratch directory watched for residue
    code_dir = ""               # the function's code directory; default LAMBDA_TASK_ROOT or the cwd
    invocation_events = true    # one "invocation" summary event per request

    [runtime.monitors]          # process monitors installed at cold start
    audit = true                # PEP 578 audit hook (egress, subprocess, writes, dynamic code, pickle)
    sdk = true                  # botocore calls
    cold_start = true           # environment tampering, .pth/sitecustomize, manifest
    contamination = true        # /tmp residue, threads, children, patched functions, state growth

    [runtime.identity]
    order = ["principal", "api_key", "source_ip"]
    trusted_proxies = []        # CIDRs whose X-Forwarded-For entries are skipped
    trust_identity_headers = false  # Azure EasyAuth / GCP API Gateway identity headers

    [runtime.input]
    max_body_bytes = 1048576
    require_json = true         # a non-empty HTTP body must be JSON
    [runtime.input.schema]      # optional: the model's feature vector
    field = "features"          # dotted path in the JSON body ("" = the whole body)
    shape = [-1, 4]             # -1 = any length
    dtype = "float"             # float | int | number
    min = -1e6                  # a number or one per feature
    max = 1e6
    allow_nan = false

    [runtime.egress]
    allow = ["host:port", "cidr:port", "*.amazonaws.com:443"]
    [runtime.process]
    allow_subprocess = false
    [runtime.files]
    allow_write = []            # besides tmp_dir
    [runtime.code]
    allow_dynamic = false       # compile/exec of new code after init
    allow_native = false        # ctypes.dlopen after init
    [runtime.pickle]
    allow = []                  # module prefixes unpickled at run time, besides the defaults
    [runtime.sdk]
    expected = []              # "service:Operation" (wildcards allowed); empty = no expected-set check
    sensitive = [...]           # defaults in SENSITIVE_SDK_CALLS
    secrets = []                # secret ids/ARNs GetSecretValue may read
    [runtime.cold_start]
    manifest = ""               # signed integrity manifest (env SAS_MANIFEST)
    public_key = ""             # its Ed25519 public key (env SAS_MANIFEST_PUB)
    root = ""                   # tree the manifest covers; default code_dir
    paths = []                  # check only these files/folders of it (e.g. ["handler.py", "model"])
    allow_env = []              # start-up variables that are expected here (e.g. AWS_LAMBDA_EXEC_WRAPPER)
    allow_pth = []              # .pth / sitecustomize file names that are expected
    [runtime.contamination]
    tmp_allow = []              # glob patterns of tmp_dir entries that may persist
    scrub_tmp = false           # delete what an invocation left in tmp_dir
    state_growth = 10000        # items a module-level container may grow by before an alert
    deep_every = 100            # full patched-function sweep every N invocations

    [forensics]
    ledger = "stdout"           # or jsonl:PATH, sqlite:PATH (env SAS_LEDGER overrides)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sas.config import ENV, section, string_list
from sas.errors import ConfigError

if TYPE_CHECKING:
    # imported by the parsers that need it: most functions configure no address rule, and it costs ~1 ms
    import ipaddress

MODES = ("monitor", "enforce")
IDENTITY_SOURCES = ("principal", "api_key", "source_ip")
DTYPES = ("float", "int", "number")

# Calls that escalate, persist or read secrets: alert (block in enforce) unless listed in `expected`.
SENSITIVE_SDK_CALLS: tuple[str, ...] = (
    "iam:*",
    "sts:AssumeRole*",
    "sts:GetFederationToken",
    "sts:GetSessionToken",
    "lambda:Update*",
    "lambda:CreateFunction*",
    "lambda:AddPermission",
    "lambda:AddLayerVersionPermission",
    "lambda:PublishLayerVersion",
    "lambda:PutFunction*",
    "lambda:CreateEventSourceMapping",
    "secretsmanager:GetSecretValue",
    "ssm:SendCommand",
    "ssm:StartSession",
    "ec2:RunInstances",
    "organizations:*",
    "kms:CreateGrant",
)

# Module prefixes a model pickle may reference at run time (the ordinary numpy / scikit-learn world).
DEFAULT_PICKLE_ALLOW: tuple[str, ...] = (
    "numpy",
    "sklearn",
    "scipy",
    "joblib",
    "collections.OrderedDict",
    "collections.defaultdict",
    "builtins.set",
    "builtins.frozenset",
    "builtins.dict",
    "builtins.list",
    "builtins.tuple",
    "builtins.slice",
    "builtins.complex",
    "builtins.bytearray",
    "_codecs.encode",
    "copyreg._reconstructor",
    "builtins.object",
    "datetime",
    "decimal.Decimal",
)

DEFAULT_MAX_BODY = 1024 * 1024


@dataclass(frozen=True, slots=True)
class EgressRule:
    """One allow-list entry: a host name (may contain ``*``) or a network, and a port (``None`` = any)."""

    text: str
    host: str | None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    port: int | None

    @classmethod
    def parse(cls, text: str) -> EgressRule:
        raw = text.strip()
        if raw.startswith("["):  # [v6addr]:port
            host, sep, rest = raw[1:].partition("]")
            port_text = rest[1:] if rest.startswith(":") else ""
            if not sep:
                raise ConfigError(f"[runtime.egress] bad entry {text!r}")
        else:
            host, sep, port_text = raw.rpartition(":")
            if not sep or ":" in host:
                host, port_text = raw, "*"
        if not host:
            raise ConfigError(f"[runtime.egress] bad entry {text!r} (expected host:port or cidr:port)")
        import ipaddress

        port: int | None
        if port_text in {"", "*"}:
            port = None
        else:
            try:
                port = int(port_text)
            except ValueError:
                raise ConfigError(f"[runtime.egress] bad port in {text!r}") from None
            if not 0 < port < 65536:
                raise ConfigError(f"[runtime.egress] port out of range in {text!r}")
        try:
            network = ipaddress.ip_network(host, strict=False)
        except ValueError:
            return cls(raw, host.lower().rstrip("."), None, port)
        return cls(raw, None, network, port)


@dataclass(frozen=True, slots=True)
class InputSchema:
    """``[runtime.input.schema]``: the model's feature vector, checked before the model sees it."""

    field: str = "features"
    shape: tuple[int, ...] = ()
    dtype: str = "number"
    min: tuple[float, ...] = ()
    max: tuple[float, ...] = ()
    allow_nan: bool = False


@dataclass(frozen=True, slots=True)
class RuntimePolicy:
    """The parsed ``[runtime]`` and ``[forensics]`` configuration (keys and defaults in the module docstring)."""

    # A docstring of its own also spares every cold start dataclass's default one, which it builds with
    # inspect.signature over the forty fields below.
    mode: str = "monitor"
    function: str = ""
    tmp_dir: str = "/tmp"  # noqa: S108 - the platform's scratch directory, watched not used
    code_dir: str = ""
    invocation_events: bool = True
    ledger: str = "stdout"
    # monitors
    audit: bool = True
    sdk: bool = True
    cold_start: bool = True
    contamination: bool = True
    # identity
    identity_order: tuple[str, ...] = IDENTITY_SOURCES
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    trust_identity_headers: bool = False
    # input
    max_body_bytes: int = DEFAULT_MAX_BODY
    require_json: bool = True
    schema: InputSchema | None = None
    # process policy
    egress: tuple[EgressRule, ...] = ()
    allow_subprocess: bool = False
    allow_write: tuple[str, ...] = ()
    allow_dynamic_code: bool = False
    allow_native: bool = False
    pickle_allow: tuple[str, ...] = DEFAULT_PICKLE_ALLOW
    # cloud SDK
    sdk_expected: tuple[str, ...] = ()
    sdk_sensitive: tuple[str, ...] = SENSITIVE_SDK_CALLS
    sdk_secrets: tuple[str, ...] = ()
    # cold start
    manifest: str = ""
    manifest_public_key: str = ""
    manifest_root: str = ""
    manifest_paths: tuple[str, ...] = ()
    allow_env: tuple[str, ...] = ()
    allow_pth: tuple[str, ...] = ()
    # contamination
    tmp_allow: tuple[str, ...] = ()
    scrub_tmp: bool = False
    state_growth: int = 10_000
    deep_every: int = 100
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def identity_by_ip(self) -> bool:
        """Whether a request known only by its address is identified by it (else it is anonymous)."""
        return "source_ip" in self.identity_order

    @property
    def enforce(self) -> bool:
        return self.mode == "enforce"


def _bool(table: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"[{where}] {key} must be true or false")
    return value


def _int(table: Mapping[str, Any], key: str, default: int, where: str, minimum: int = 0) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"[{where}] {key} must be an integer >= {minimum}")
    return value


def _str(table: Mapping[str, Any], key: str, default: str, where: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"[{where}] {key} must be a string")
    return value


def _numbers(value: Any, where: str, key: str) -> tuple[float, ...]:
    if value is None:
        return ()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (float(value),)
    if isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return tuple(float(v) for v in value)
    raise ConfigError(f"[{where}] {key} must be a number or a list of numbers")


def _schema(table: Mapping[str, Any]) -> InputSchema | None:
    if not table:
        return None
    where = "runtime.input.schema"
    shape_raw = table.get("shape", [])
    if not isinstance(shape_raw, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and (v == -1 or v > 0) for v in shape_raw
    ):
        raise ConfigError(f"[{where}] shape must be a list of positive integers or -1")
    dtype = _str(table, "dtype", "number", where)
    if dtype not in DTYPES:
        raise ConfigError(f"[{where}] dtype must be one of {', '.join(DTYPES)}")
    return InputSchema(
        field=_str(table, "field", "features", where),
        shape=tuple(shape_raw),
        dtype=dtype,
        min=_numbers(table.get("min"), where, "min"),
        max=_numbers(table.get("max"), where, "max"),
        allow_nan=_bool(table, "allow_nan", False, where),
    )


def _networks(values: tuple[str, ...], where: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    if not values:
        return ()
    import ipaddress

    out = []
    for v in values:
        try:
            out.append(ipaddress.ip_network(v, strict=False))
        except ValueError:
            raise ConfigError(f"[{where}] {v!r} is not an IP network") from None
    return tuple(out)


def parse_policy(config: Mapping[str, Any], env: Mapping[str, str] | None = None) -> RuntimePolicy:
    """Validate the ``runtime`` and ``forensics`` sections of a configuration dict."""
    environ = os.environ if env is None else env
    rt = section(config, "runtime")
    mode = environ.get(ENV["mode"]) or _str(rt, "mode", "monitor", "runtime")
    if mode not in MODES:
        raise ConfigError(f"[runtime] mode must be 'monitor' or 'enforce', not {mode!r}")
    monitors = section(config, "runtime", "monitors")
    ident = section(config, "runtime", "identity")
    order = string_list(ident, "order", "runtime.identity") if "order" in ident else IDENTITY_SOURCES
    for source in order:
        if source not in IDENTITY_SOURCES:
            raise ConfigError(f"[runtime.identity] unknown identity source {source!r}")
    inp = section(config, "runtime", "input")
    egress = section(config, "runtime", "egress")
    process = section(config, "runtime", "process")
    files = section(config, "runtime", "files")
    code = section(config, "runtime", "code")
    pickle_t = section(config, "runtime", "pickle")
    sdk = section(config, "runtime", "sdk")
    cold = section(config, "runtime", "cold_start")
    cont = section(config, "runtime", "contamination")
    forensics = section(config, "forensics")
    ledger = environ.get(ENV["ledger"]) or _str(forensics, "ledger", "stdout", "forensics")
    code_dir = _str(rt, "code_dir", "", "runtime") or environ.get("LAMBDA_TASK_ROOT", "") or os.getcwd()
    return RuntimePolicy(
        mode=mode,
        function=_str(rt, "function", "", "runtime"),
        tmp_dir=os.path.abspath(_str(rt, "tmp_dir", "/tmp", "runtime")),  # noqa: S108
        code_dir=os.path.abspath(code_dir),
        invocation_events=_bool(rt, "invocation_events", True, "runtime"),
        ledger=ledger,
        audit=_bool(monitors, "audit", True, "runtime.monitors"),
        sdk=_bool(monitors, "sdk", True, "runtime.monitors"),
        cold_start=_bool(monitors, "cold_start", True, "runtime.monitors"),
        contamination=_bool(monitors, "contamination", True, "runtime.monitors"),
        identity_order=tuple(order),
        trusted_proxies=_networks(
            string_list(ident, "trusted_proxies", "runtime.identity"), "runtime.identity.trusted_proxies"
        ),
        trust_identity_headers=_bool(ident, "trust_identity_headers", False, "runtime.identity"),
        max_body_bytes=_int(inp, "max_body_bytes", DEFAULT_MAX_BODY, "runtime.input", 1),
        require_json=_bool(inp, "require_json", True, "runtime.input"),
        schema=_schema(section(config, "runtime", "input", "schema")),
        egress=tuple(EgressRule.parse(v) for v in string_list(egress, "allow", "runtime.egress")),
        allow_subprocess=_bool(process, "allow_subprocess", False, "runtime.process"),
        allow_write=tuple(os.path.abspath(p) for p in string_list(files, "allow_write", "runtime.files")),
        allow_dynamic_code=_bool(code, "allow_dynamic", False, "runtime.code"),
        allow_native=_bool(code, "allow_native", False, "runtime.code"),
        pickle_allow=DEFAULT_PICKLE_ALLOW + string_list(pickle_t, "allow", "runtime.pickle"),
        sdk_expected=string_list(sdk, "expected", "runtime.sdk"),
        sdk_sensitive=string_list(sdk, "sensitive", "runtime.sdk") if "sensitive" in sdk else SENSITIVE_SDK_CALLS,
        sdk_secrets=string_list(sdk, "secrets", "runtime.sdk"),
        manifest=environ.get(ENV["manifest"]) or _str(cold, "manifest", "", "runtime.cold_start"),
        manifest_public_key=environ.get(ENV["manifest_pub"]) or _str(cold, "public_key", "", "runtime.cold_start"),
        manifest_root=_str(cold, "root", "", "runtime.cold_start"),
        manifest_paths=string_list(cold, "paths", "runtime.cold_start"),
        allow_env=string_list(cold, "allow_env", "runtime.cold_start"),
        allow_pth=string_list(cold, "allow_pth", "runtime.cold_start"),
        tmp_allow=string_list(cont, "tmp_allow", "runtime.contamination"),
        scrub_tmp=_bool(cont, "scrub_tmp", False, "runtime.contamination"),
        state_growth=_int(cont, "state_growth", 10_000, "runtime.contamination", 1),
        deep_every=_int(cont, "deep_every", 100, "runtime.contamination", 1),
    )
