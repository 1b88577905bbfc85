"""The Shield: one object per function instance that checks requests and watches the process.

Create it once at module level, *after* the heavy imports and the model load (the process monitors treat
everything after that moment as run time), and wrap the handler with the platform's decorator::

    shield = Shield.from_config()          # sas.toml / [tool.sas] / $SAS_CONFIG, or Shield({...})
    @shield.aws_lambda
    def handler(event, context): ...

In ``monitor`` mode everything is recorded and nothing is stopped; in ``enforce`` mode a request a detector
blocks gets the platform's error response (400/403/413/429, body ``{"error", "request_id"}``), and the
process policy raises :class:`~sas.runtime.monitors.audit.PolicyViolation` into the offending code.

Import cost matters here (this module loads in every cold start): it imports only the stdlib, the floor
(:mod:`sas.config`, :mod:`sas.events`, :mod:`sas.taxonomy`) and its own small modules; platform adapters,
Powertools and :mod:`sas.integrity` are imported when first used.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from sas import config as sas_config
from sas.errors import SasError
from sas.events.record import RuntimeEvent, Verdict
from sas.events.sink import Sink, open_sink
from sas.runtime.context import IN_FLIGHT, RequestContext, current_request
from sas.runtime.detectors.base import Detection, Detector, overrides
from sas.runtime.detectors.input_validation import InputValidationDetector
from sas.runtime.monitors import audit, cloud_sdk
from sas.runtime.monitors.audit import PolicyViolation, Violation
from sas.runtime.monitors.cold_start import (
    FORKS,
    InstanceIdentity,
    check_environment,
    check_startup_files,
    verify_manifest,
)
from sas.runtime.monitors.contamination import ContaminationMonitor
from sas.runtime.policy import RuntimePolicy, parse_policy
from sas.taxonomy import THREAT_CATEGORY, Severity, Threat

if TYPE_CHECKING:
    from pathlib import Path

R = TypeVar("R")
_clock = time.perf_counter
F = TypeVar("F", bound=Callable[..., Any])


class RequestBlocked(Exception):
    """Raised inside a handler (by ``guard_model``) to stop a request; the adapter answers for it."""

    def __init__(self, detection: Detection) -> None:
        super().__init__(detection.public_reason)
        self.detection = detection


class ColdStartIntegrityError(SasError):
    """The function's files do not match their signed manifest (raised at init in enforce mode)."""


class _Invocation:
    """The request in flight (mutable: detections and the verdict accrue), kept in
    :data:`~sas.runtime.context.IN_FLIGHT`; a plain slotted class because one is made per request and a
    dataclass's default factory is one more call."""

    __slots__ = ("blocked_status", "ctx", "detections", "start", "verdict")

    def __init__(self, ctx: RequestContext, start: float) -> None:
        self.ctx = ctx
        self.start = start
        self.verdict = _ALLOW
        self.detections: list[str] | None = None
        self.blocked_status = 0


_RANK = {Verdict.ALLOW: 0, Verdict.ALERT: 1, Verdict.BLOCK: 2}
# Read on every request, so held here: on Python 3.11 ``Verdict.ALLOW`` goes through the enum metaclass's
# __getattr__ hook, and ``IN_FLIGHT.set`` makes a bound method per call
_ALLOW = Verdict.ALLOW
_ALERT = Verdict.ALERT
_in_flight_get = IN_FLIGHT.get
_in_flight_set = IN_FLIGHT.set
_in_flight_reset = IN_FLIGHT.reset
# Violations the process policy can stop; the others (residue, tampering found at init) are alerts.
_BLOCKABLE = frozenset(
    {"egress", "subprocess", "file-write", "dynamic-code", "native-code", "pickle-global", "audit-hook", "sdk-call"}
)


def _refusal(reason: str, ctx: RequestContext) -> dict[str, str]:
    """The body of a blocked request's answer: why, in public words, and the id to quote to support."""
    return {"error": reason, "request_id": ctx.request_id}


def detect_platform(env: Mapping[str, str]) -> str:
    if env.get("AWS_LAMBDA_FUNCTION_NAME") or env.get("AWS_LAMBDA_RUNTIME_API"):
        return "aws"
    if env.get("FUNCTIONS_WORKER_RUNTIME") or env.get("AzureWebJobsScriptRoot"):
        return "azure"
    if env.get("K_SERVICE") or env.get("FUNCTION_TARGET"):
        return "gcp"
    return "local"


def default_function_name(env: Mapping[str, str]) -> str:
    for var in ("AWS_LAMBDA_FUNCTION_NAME", "K_SERVICE", "FUNCTION_TARGET", "WEBSITE_SITE_NAME"):
        if env.get(var):
            return env[var]
    return ""


class Shield:
    """Configuration, request detectors and process monitors for one function instance."""

    # slots: every request reads a dozen of these, usually with caches the model has just evicted
    __slots__ = (
        "__weakref__",
        "_audit",
        "_closed",
        "_contamination",
        "_on_model_input",
        "_on_model_output",
        "_on_request",
        "_pending_activation",
        "_sdk",
        "_sink_opens_files",
        "alert_hooks",
        "config",
        "counts",
        "detectors",
        "env",
        "function",
        "identity",
        "platform",
        "policy",
        "setup_seconds",
        "sink",
    )

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        sink: Sink | None = None,
        detectors: Iterable[Detector] = (),
        install: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> None:
        started = time.perf_counter()
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.config: dict[str, Any] = dict(config or {})
        self.policy: RuntimePolicy = parse_policy(self.config, self.env)
        self.sink: Sink = sink if sink is not None else open_sink(self.policy.ledger)
        self._sink_opens_files = self.sink.opens_files  # read on every request; a property on the ledger
        self.platform = detect_platform(self.env)
        self.function = self.policy.function or default_function_name(self.env)
        self.identity = InstanceIdentity.create(self.env)
        self.detectors: list[Detector] = []
        self._on_request: list[Detector] = []
        self._on_model_input: list[Detector] = []
        self._on_model_output: list[Detector] = []
        self.alert_hooks: list[Callable[[RuntimeEvent], None]] = []
        self.counts: dict[str, int] = {"invocations": 0, "alerts": 0, "blocks": 0}
        self._audit: audit.AuditPolicy | None = None
        self._sdk: cloud_sdk.SdkMonitor | None = None
        self._contamination: ContaminationMonitor | None = None
        self._closed = False
        self._pending_activation = False
        for detector in (InputValidationDetector(self.policy), *detectors):
            self.add_detector(detector)
        if install:
            self._install()
        self.setup_seconds = time.perf_counter() - started

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None, **kwargs: Any) -> Shield:
        """Read ``sas.toml`` / ``[tool.sas]``: ``path``, else ``$SAS_CONFIG``, else the code directory."""
        env = kwargs.get("env") or os.environ
        from pathlib import Path  # here: with urllib.parse and ipaddress, ~2.5 ms of a bare cold start

        found = Path(path) if path is not None else sas_config.discover(env.get("LAMBDA_TASK_ROOT") or None)
        data: dict[str, Any] = sas_config.load_file(found) if found is not None else {}
        if found is not None:
            data = _resolve_paths(data, found.resolve().parent)
        return cls(data, **kwargs)

    # --- configuration --------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self.policy.mode

    @property
    def enforce(self) -> bool:
        return self.policy.enforce

    @property
    def instance_id(self) -> str:
        return self.identity.instance_id

    def add_detector(self, detector: Detector) -> None:
        self.detectors.append(detector)
        if overrides(detector, "on_request"):
            self._on_request.append(detector)
        if overrides(detector, "on_model_input"):
            self._on_model_input.append(detector)
        if overrides(detector, "on_model_output"):
            self._on_model_output.append(detector)

    # --- cold start -----------------------------------------------------------------------------------
    def _install(self) -> None:
        policy = self.policy
        if policy.cold_start:
            self._cold_start_checks()
        _, _, ledger_path = policy.ledger.partition(":")
        if policy.audit:
            self._audit = audit.AuditPolicy(
                policy,
                self._on_violation,
                extra_egress=audit.runtime_api_endpoints(self.env),
                extra_writable=[ledger_path, ledger_path + "-journal", ledger_path + "-wal"] if ledger_path else [],
            )
        if policy.sdk:
            self._sdk = cloud_sdk.SdkMonitor(policy, self._on_violation)
        if policy.contamination:
            self._contamination = ContaminationMonitor(policy, self._on_violation, self._audit)
        self._activate()
        self._emit(
            "cold-start",
            "cold-start",
            "",
            Severity.INFO,
            Verdict.ALLOW,
            {"mode": policy.mode, "snap_start": self.identity.snap_start},
        )
        self.sink.flush()  # what init found is on record even if no request ever comes

    def _activate(self) -> None:
        """Start enforcing: from here on, everything the process does is run time."""
        self._pending_activation = False
        if self._audit is not None:
            audit.install(self._audit)
        if self._sdk is not None:
            cloud_sdk.install(self._sdk)
        if self._contamination is not None:
            self._contamination.baseline()

    def defer_activation(self) -> None:
        """Pause the process monitors until the first invocation.

        For servers that fork workers or start threads after the module is imported (functions-framework
        under gunicorn imports the function in the master, then forks): the policy must start in the process
        and after the moment that serves requests, or it would block the server's own fork.
        """
        if self._audit is not None:
            audit.deactivate(self._audit)
        if self._sdk is not None:
            cloud_sdk.deactivate(self._sdk)
        self._pending_activation = True

    def _cold_start_checks(self) -> None:
        policy = self.policy
        for violation in check_environment(
            self.env, allow_env=policy.allow_env, code_dir=policy.code_dir, writable=(policy.tmp_dir,)
        ):
            self._on_violation(violation)
        for violation in check_startup_files(sys.path, allow=policy.allow_pth):
            self._on_violation(violation)
        if policy.manifest:
            root = policy.manifest_root or policy.code_dir
            public_key = policy.manifest_public_key
            if not public_key:
                ok, details = False, {"error": "manifest configured without a public key", "manifest": policy.manifest}
            else:
                ok, details = verify_manifest(root, policy.manifest, public_key, policy.manifest_paths)
            verdict = Verdict.ALLOW if ok else (Verdict.BLOCK if policy.enforce else Verdict.ALERT)
            self._emit(
                "manifest",
                "cold-start",
                Threat.COLD_START_TAMPERING if not ok else "",
                Severity.CRITICAL if not ok else Severity.INFO,
                verdict,
                details,
            )
            if not ok and policy.enforce:
                self.sink.flush()
                raise ColdStartIntegrityError("function files do not match the signed integrity manifest")

    # --- events ---------------------------------------------------------------------------------------
    def _emit(
        self,
        event: str,
        detector: str,
        threat: str,
        severity: str,
        verdict: Verdict,
        details: Mapping[str, Any],
        ctx: RequestContext | None = None,
    ) -> RuntimeEvent:
        category = THREAT_CATEGORY[Threat(threat)].value if threat else ""
        record = RuntimeEvent(
            time=time.time(),
            event=event,
            detector=detector,
            category=category,
            threat=str(threat),
            severity=str(severity),
            verdict=verdict,
            request_id=ctx.request_id if ctx else "",
            client_id=ctx.client_id if ctx else "",
            instance_id=self.identity.instance_id,
            function=(ctx.function if ctx and ctx.function else self.function),
            platform=ctx.platform if ctx else self.platform,
            details=details,
        )
        # The sink may open its file on first use: that write is ours, not the function's.
        busy = getattr(audit._LOCAL, "busy", False)
        audit._LOCAL.busy = True
        try:
            self.sink.emit(record)
        finally:
            audit._LOCAL.busy = busy
        if verdict is not Verdict.ALLOW and event != "invocation":
            self.counts["blocks" if verdict is Verdict.BLOCK else "alerts"] += 1
            for hook in self.alert_hooks:
                try:
                    hook(record)
                except Exception:  # noqa: S112 - a logging hook must never break the handler
                    continue
        return record

    def _note(self, name: str, verdict: Verdict) -> None:
        inv = IN_FLIGHT.get()
        if isinstance(inv, _Invocation):
            if inv.detections is None:
                inv.detections = [name]
            else:
                inv.detections.append(name)
            if _RANK[verdict] > _RANK[inv.verdict]:
                inv.verdict = verdict

    def _on_violation(self, violation: Violation) -> None:
        blocking = self.policy.enforce and violation.kind in _BLOCKABLE
        verdict = Verdict.BLOCK if blocking else Verdict.ALERT
        self._note(violation.kind, verdict)
        self._emit(
            violation.kind,
            _MONITOR_OF.get(violation.kind, "audit"),
            violation.threat,
            violation.severity,
            verdict,
            violation.details,
            current_request(),
        )

    def _judge(self, detection: Detection, ctx: RequestContext | None) -> bool:
        """Record a detection; True when the request must be stopped (enforce mode and a block)."""
        if detection.verdict is Verdict.ALLOW:
            return False
        block = detection.verdict is Verdict.BLOCK and self.policy.enforce
        verdict = Verdict.BLOCK if block else Verdict.ALERT
        details = dict(detection.details)
        details["score"] = detection.score
        if detection.verdict is Verdict.BLOCK and not block:
            details["would_block"] = detection.status
        self._note(detection.detector, verdict)
        self._emit(detection.event, detection.detector, detection.threat, detection.severity, verdict, details, ctx)
        return block

    # --- the invocation -------------------------------------------------------------------------------
    def current_instance(self) -> str:
        identity = self.identity
        if identity.forks == FORKS[0] and not identity.snap_start:  # the common case, without a call
            return identity.instance_id
        instance, renewed = identity.current()
        if renewed:
            self._emit("instance-renewed", "cold-start", "", Severity.INFO, Verdict.ALLOW, {"restores": 1})
        return instance

    def run(
        self,
        ctx: RequestContext,
        call: Callable[..., R],
        blocked: Callable[..., R],
        /,
        *args: Any,
        **kwargs: Any,
    ) -> R:
        """Check ``ctx``, run ``call(*args, **kwargs)``, and answer with ``blocked(status, body, *args)`` when
        the request is stopped.

        Adapters build ``ctx`` and hand over the handler and its arguments (no closure to make per request);
        everything else (detectors, monitors, the summary event) happens here, the same way on every platform.
        Kept flat: it runs on every request, usually with caches the model has just evicted, where each call,
        object and attribute dictionary it touches costs a memory access (``benchmarks/cache_lines.py``).
        """
        inv = _Invocation(ctx, _clock())
        token = _in_flight_set(inv)
        self.counts["invocations"] += 1
        contamination = self._contamination
        try:
            if self._pending_activation:
                self._activate()
            if contamination is not None:
                contamination.before()
            if self._sdk is not None and not cloud_sdk._STATE.installed and "botocore.client" in sys.modules:
                cloud_sdk.ensure_wrapped()  # botocore was imported since the last request: wrap it now
            for detector in self._on_request:
                detection = detector.on_request(ctx)
                if detection is not None and self._judge(detection, ctx):
                    inv.blocked_status = detection.status
                    return blocked(detection.status, _refusal(detection.public_reason, ctx), *args)
            try:
                return call(*args, **kwargs) if kwargs else call(*args)  # no keyword dictionary to merge
            except RequestBlocked as stop:
                inv.blocked_status = stop.detection.status
                return blocked(stop.detection.status, _refusal(stop.detection.public_reason, ctx), *args)
            except PolicyViolation:
                if not self.policy.enforce:
                    raise
                inv.blocked_status = 403
                return blocked(403, _refusal("request refused", ctx), *args)
        finally:
            try:
                self._finish(inv, contamination)
            finally:
                _in_flight_reset(token)

    def _finish(self, inv: _Invocation, contamination: ContaminationMonitor | None) -> None:
        extra: dict[str, Any] | None = None
        if contamination is not None:
            try:
                extra = contamination.after()
            except Exception as exc:  # a monitor bug must not fail the invocation
                extra = {"monitor_error": f"{type(exc).__name__}: {exc}"[:200]}
        sdk = self._sdk
        calls = sdk.drain() if sdk is not None and sdk.calls else None
        sink = self.sink
        if not self.policy.invocation_events:
            sink.flush()
            return
        ctx = inv.ctx
        # milliseconds to the microsecond, as whole microseconds divided: round(x, 3) formats the float as a string
        # and parses it back, and round() looks up a bound __round__
        micros = int((_clock() - inv.start) * 1e6 + 0.5)
        details: dict[str, Any] = {"duration_ms": micros / 1000.0, "size": ctx.size}
        if inv.detections:
            details["detections"] = inv.detections
        if inv.blocked_status:
            details["status"] = inv.blocked_status
        if calls:
            details["sdk_calls"] = calls
        if extra:
            details.update(extra)
        # the summary's verdict says what happened to the request (its detections are separate events)
        if self._sink_opens_files:  # a sink that may open its file on first use: that write is ours, not the function's
            local = audit._LOCAL
            busy = getattr(local, "busy", False)
            local.busy = True
            try:
                self._summary(inv, ctx, details)
            finally:
                local.busy = busy
        else:
            self._summary(inv, ctx, details)

    def _summary(self, inv: _Invocation, ctx: RequestContext, details: dict[str, Any]) -> None:
        self.sink.emit_invocation(
            time.time(),
            inv.verdict,
            ctx.request_id,
            ctx.client_id,
            self.identity.instance_id,
            ctx.function or self.function,
            ctx.platform,
            details,
            flush=True,
        )

    # --- model guard ----------------------------------------------------------------------------------
    def guard_model(self, predict: F, baseline: Any = None) -> F:
        """Wrap the model call so detectors see the inputs and outputs of the request in flight.

        ``baseline`` (a :class:`~sas.runtime.baseline.Baseline` or the path of a ``sas baseline fit`` file) adds
        the extraction, adversarial-probing and abuse detectors (``[runtime.model]``), unless given already.
        """
        if baseline is not None and not any(getattr(d, "uses_baseline", False) for d in self.detectors):
            from sas.runtime.detectors.model_suite import model_detectors

            def on_degrade(error: str) -> None:
                details = {"error": error[:200]}
                self._emit(
                    "state-degraded", "model-state", "", Severity.MEDIUM, Verdict.ALERT, details, current_request()
                )

            for detector in model_detectors(self.config, baseline, env=self.env, on_degrade=on_degrade)[1]:
                self.add_detector(detector)
        for detector in self.detectors:
            detector.bind_model(predict, baseline)

        @functools.wraps(predict)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            inv = _in_flight_get()
            ctx = None if inv is None else inv.ctx
            inputs = args[0] if args else next(iter(kwargs.values()), None)
            for detector in self._on_model_input:
                detection = detector.on_model_input(ctx, inputs)
                if detection is not None and self._judge(detection, ctx):
                    raise RequestBlocked(detection)
            outputs = predict(*args, **kwargs) if kwargs else predict(*args)  # no keyword dictionary to merge
            for detector in self._on_model_output:
                detection = detector.on_model_output(ctx, inputs, outputs)
                if detection is not None and self._judge(detection, ctx):
                    raise RequestBlocked(detection)
                # enforce mode: a suspicious (alerted, not blocked) client gets a degraded answer
                if detection is not None and detection.verdict is _ALERT and self.policy.enforce:
                    degrade = getattr(detector, "degrade", None)
                    if degrade is not None:
                        outputs = degrade(outputs)
            return outputs

        return guarded  # type: ignore[return-value]

    # --- platform decorators (adapters are imported on first use) -------------------------------------
    def aws_lambda(self, handler: F) -> F:
        """Wrap an AWS Lambda handler ``(event, context)``: API Gateway v1/v2, Function URL, ALB, direct."""
        from sas.runtime.platforms.aws import wrap_handler

        return wrap_handler(self, handler)

    @property
    def aws_powertools(self) -> Callable[..., Any]:
        """The same wrapper as Powertools middleware: ``@shield.aws_powertools`` over the handler."""
        from sas.runtime.platforms.aws import powertools_middleware

        return powertools_middleware(self)

    def azure_function(self, fn: F) -> F:
        """Wrap an Azure Functions HTTP function (v2 model: put it *under* ``@app.route``)."""
        from sas.runtime.platforms.azure import wrap_function

        return wrap_function(self, fn)

    def gcp_function(self, fn: F) -> F:
        """Wrap a Google Cloud Functions HTTP (Flask request) or CloudEvent function."""
        from sas.runtime.platforms.gcp import wrap_function

        return wrap_function(self, fn)

    # --- shutdown -------------------------------------------------------------------------------------
    def close(self) -> None:
        """Deactivate the process monitors (the audit hook stays, as a no-op) and close the sink."""
        if self._closed:
            return
        self._closed = True
        if self._audit is not None:
            audit.deactivate(self._audit)
        if self._sdk is not None:
            cloud_sdk.deactivate(self._sdk)
        self.sink.close()

    def __enter__(self) -> Shield:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_MONITOR_OF = {
    "sdk-call": "cloud-sdk",
    "cold-start": "cold-start",
    "tmp-residue": "contamination",
    "lingering-thread": "contamination",
    "lingering-process": "contamination",
    "patched-function": "contamination",
    "state-growth": "contamination",
}


def _resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """Relative file paths in a configuration file are relative to that file, not to the cwd."""
    runtime = data.get("runtime")
    if not isinstance(runtime, dict):
        return data
    out = dict(data)
    rt = dict(runtime)
    cold = rt.get("cold_start")
    if isinstance(cold, dict):
        cold = dict(cold)
        for key in ("manifest", "public_key", "root"):
            value = cold.get(key)
            if isinstance(value, str) and value and not os.path.isabs(value):
                cold[key] = str(base / value)
        rt["cold_start"] = cold
    out["runtime"] = rt
    return out
