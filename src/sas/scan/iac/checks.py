"""Serverless configuration checks on the deployment model, for AWS, Azure and GCP alike.

Each check reads :class:`~sas.scan.iac.model.FunctionSpec` values only, so a rule works the same whether
the function was declared in SAM, serverless.yml, Terraform or function.json. IAM judgements come from
:mod:`sas.scan.iam`; this module adds the cross-cutting one: a public entry point in front of a
privileged identity is critical, above either alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sas.scan import iam
from sas.scan.findings import Finding, Location, make_finding
from sas.scan.iac import runtimes
from sas.scan.iac.model import Deployment, FunctionSpec, Src, Trigger, Unknown
from sas.scan.iac.rules import (
    AZURE_STORAGE_KEY,
    CODE_SIGNING,
    DEFAULT_SERVICE_ACCOUNT,
    DEPRECATED_RUNTIME,
    FOREIGN_LAYER,
    GCP_BASIC_ROLE,
    HTTPS_NOT_ENFORCED,
    LONG_TIMEOUT,
    NO_CONCURRENCY_LIMIT,
    NO_DEAD_LETTER,
    NO_TRACING,
    PUBLIC_AND_PRIVILEGED,
    PUBLIC_ENTRY,
    PUBLIC_LAYER,
    SECRET_ENV,
    UNPARSABLE,
    UNPINNED_LAYER,
    UNRESOLVED,
)
from sas.scan.iac.secrets import find_secret
from sas.scan.rules import Rule
from sas.taxonomy import Severity

# Publishers of widely used layers (from their own documentation): a layer from them is still foreign code,
# but a known vendor's; reported at low severity.
KNOWN_LAYER_PUBLISHERS = {
    "017000801446": "AWS Lambda Powertools (Python)",
    "094274105915": "AWS Lambda Powertools (TypeScript)",
    "580247275435": "AWS Lambda Insights",
    "901920570463": "AWS Parameters and Secrets Lambda Extension",
    "464622532012": "Datadog",
    "451483290750": "New Relic",
}
# Default concurrency ceilings when nothing caps a function, per platform.
DEFAULT_CONCURRENCY = {"aws": 1000, "gcp": 100, "azure": 200}
DEFAULT_MEMORY_MB = {"aws": 128, "gcp": 256, "azure": 1536}
DEFAULT_TIMEOUT_S = {"aws": 3, "gcp": 60, "azure": 300}
PRICE_PER_GB_SECOND = 0.0000166667  # AWS Lambda x86 list price; Azure Consumption (0.000016) and GCP are close
_ASYNC_EVENTS = ("S3", "SNS", "EventBridge", "CloudWatchEvent", "Schedule", "sns", "s3", "schedule", "eventBridge")


def _loc(src: Src) -> Location:
    return Location(src.path, src.line)


def _finding(r: Rule, src: Src, message: str, evidence: str = "", severity: Severity | None = None) -> Finding:
    return make_finding(r, _loc(src), message, evidence=evidence, severity=severity)


class Checker:
    """Runs every check on one deployment. ``trusted_accounts`` come from ``[scan.iac]`` in the configuration."""

    def __init__(self, trusted_accounts: Iterable[str] = (), today: date | None = None) -> None:
        self.trusted = set(trusted_accounts)
        self.today = today or date.today()
        self._judged_roles: set[tuple[str, str]] = set()

    def run(self, dep: Deployment) -> list[Finding]:
        out: list[Finding] = []
        for issue in dep.issues:
            if issue.fatal:
                out.append(_finding(UNPARSABLE, issue.src, issue.message, issue.message[:120]))
            else:
                out.append(_finding(UNRESOLVED, issue.src, issue.message, issue.message[:120]))
        for trig in dep.exposures:
            if trig.kind == "layer-permission":
                out.append(_finding(PUBLIC_LAYER, trig.src, trig.detail, trig.detail))
            elif trig.public:
                out.append(_finding(PUBLIC_ENTRY, trig.src, trig.detail, f"{trig.kind}:{trig.auth}"))
        for setting in dep.settings:
            out.extend(self._secret(setting.name, setting.value, setting.src, setting.reference, "setting"))
        for role in dep.roles:
            out.extend(self._role_findings(role, None))
        for fn in dep.functions:
            out.extend(self.function(fn))
        return out

    def function(self, fn: FunctionSpec) -> list[Finding]:
        out: list[Finding] = []
        public = [t for t in fn.triggers if t.public]
        for trig in public:
            out.append(
                _finding(
                    PUBLIC_ENTRY,
                    trig.src,
                    f"{fn.name}: {trig.detail or trig.kind} accepts unauthenticated requests from anyone",
                    f"{fn.name}:{trig.kind}:{trig.auth}",
                )
            )
        for trig in fn.triggers:
            if trig.public is None:
                out.append(
                    _finding(
                        UNRESOLVED,
                        trig.src,
                        f"{fn.name}: authentication of {trig.kind} cannot be resolved ({trig.auth}); not judged",
                        f"{fn.name}:{trig.kind}",
                    )
                )
        privileged = self._privilege(fn, out)
        if public and privileged:
            trig = public[0]
            why = "; ".join(privileged)[:300]
            out.append(
                make_finding(
                    PUBLIC_AND_PRIVILEGED,
                    _loc(trig.src),
                    f"{fn.name}: anyone can invoke it ({trig.detail or trig.kind}) "
                    f"and its identity is privileged: {why}",
                    evidence=f"{fn.name}:{trig.kind}:{why[:120]}",
                )
            )
        for env in fn.environment:
            out.extend(self._secret(env.name, env.value, env.src, env.reference, f"{fn.name} environment"))
        out.extend(self._runtime(fn))
        out.extend(self._concurrency(fn, bool(public)))
        out.extend(self._layers(fn))
        out.extend(self._hygiene(fn, bool(public)))
        return out

    # ---- identity
    def _privilege(self, fn: FunctionSpec, out: list[Finding]) -> list[str]:
        """Add IAM findings for the function's identity; return why it is privileged (empty when not)."""
        reasons: list[str] = []
        if fn.platform == "gcp" and fn.service_account is None:
            out.append(
                _finding(
                    DEFAULT_SERVICE_ACCOUNT,
                    fn.src,
                    f"{fn.name} has no service_account_email and runs as the default compute service account",
                    f"{fn.name}:default-sa",
                )
            )
            reasons.append("default compute service account (project Editor)")
        for key, value in fn.extra:
            if key == "gcp_basic_role":
                out.append(
                    _finding(
                        GCP_BASIC_ROLE,
                        fn.service_account.src if fn.service_account else fn.src,
                        f"{fn.name}: {value}",
                        f"{fn.name}:{value}",
                    )
                )
                reasons.append(value)
        if fn.role is None:
            return reasons
        judgements, findings = self._judge(fn.role)
        out.extend(findings)
        reasons += [j.message for j in iam.is_privileged(judgements)]
        return reasons

    def _judge(self, role: object) -> tuple[list[iam.IamJudgement], list[Finding]]:
        from sas.scan.iac.model import RoleSpec

        assert isinstance(role, RoleSpec)
        judgements, _ = iam.judge(role)
        key = (role.src.path, role.name)
        if key in self._judged_roles:  # a shared role is reported once, judged for every function
            return judgements, []
        self._judged_roles.add(key)
        return judgements, self._to_findings(role, judgements)

    def _role_findings(self, role: object, _fn: FunctionSpec | None) -> list[Finding]:
        return self._judge(role)[1]

    @staticmethod
    def _to_findings(role: object, judgements: list[iam.IamJudgement]) -> list[Finding]:
        from sas.scan.iac.model import RoleSpec
        from sas.scan.rules import get

        assert isinstance(role, RoleSpec)
        out = []
        for j in judgements:
            src = j.line_src.src if j.line_src is not None and j.line_src.src.path else role.src
            out.append(make_finding(get(j.rule_id), _loc(src), j.message, evidence=j.evidence, severity=j.severity))
        return out

    # ---- secrets
    def _secret(self, name: str, value: str | Unknown, src: Src, reference: str, where: str) -> list[Finding]:
        if reference and ("AccessKey" in reference or "access_key" in reference) and "ecret" in reference:
            return [
                _finding(
                    SECRET_ENV,
                    src,
                    f"{where}: {name} receives a long-lived IAM access key secret ({reference})",
                    f"{name}:{reference}",
                )
            ]
        if isinstance(value, Unknown):
            return []
        if "AccountKey=" in value and ("DefaultEndpointsProtocol" in value or "BlobEndpoint" in value):
            return [
                _finding(
                    AZURE_STORAGE_KEY,
                    src,
                    f"{where}: {name} holds a storage connection string with an account key",
                    f"{name}:AccountKey",
                )
            ]
        hit = find_secret(name, value)
        if hit is None:
            return []
        severity = Severity.MEDIUM if hit.confidence == "entropy" else Severity.HIGH
        return [
            _finding(
                SECRET_ENV,
                src,
                f"{where}: {name} looks like a plaintext secret ({hit.kind}: {hit.redacted})",
                f"{name}:{hit.kind}",
                severity,
            )
        ]

    # ---- runtime and cost
    def _runtime(self, fn: FunctionSpec) -> list[Finding]:
        if fn.runtime is None or not isinstance(fn.runtime.value, str):
            return []
        when = runtimes.deprecation(fn.platform, fn.runtime.value)
        if when is None:
            return []
        if when > self.today:
            days = (when - self.today).days
            if days > 180:
                return []
            return [
                _finding(
                    DEPRECATED_RUNTIME,
                    fn.runtime.src,
                    f"{fn.name}: runtime {fn.runtime.value} is deprecated on {when.isoformat()} (in {days} days)",
                    f"{fn.name}:{fn.runtime.value}",
                    Severity.LOW,
                )
            ]
        return [
            _finding(
                DEPRECATED_RUNTIME,
                fn.runtime.src,
                f"{fn.name}: runtime {fn.runtime.value} was deprecated on {when.isoformat()} "
                f"(table dated {runtimes.TABLE_DATE.isoformat()})",
                f"{fn.name}:{fn.runtime.value}",
            )
        ]

    def _concurrency(self, fn: FunctionSpec, public: bool) -> list[Finding]:
        limit = fn.reserved_concurrency
        if limit is not None and not isinstance(limit.value, int):
            return []
        if limit is not None and isinstance(limit.value, int) and limit.value >= 0:
            return []
        memory = fn.memory_mb.value if fn.memory_mb and isinstance(fn.memory_mb.value, int) else None
        timeout = fn.timeout_s.value if fn.timeout_s and isinstance(fn.timeout_s.value, int) else None
        memory = memory or DEFAULT_MEMORY_MB.get(fn.platform, 128)
        timeout = timeout or DEFAULT_TIMEOUT_S.get(fn.platform, 3)
        ceiling = DEFAULT_CONCURRENCY.get(fn.platform, 1000)
        gb = memory / 1024
        per_hour = ceiling * gb * 3600 * PRICE_PER_GB_SECOND
        per_burst = ceiling * gb * timeout * PRICE_PER_GB_SECOND
        what = "-1 (unreserved)" if limit is not None else "no limit"
        message = (
            f"{fn.name}: concurrency {what}; a burst can run {ceiling} instances (the platform default ceiling) "
            f"× {gb:g} GB: about ${per_hour:,.2f} per hour of sustained abuse, ${per_burst:,.2f} per burst of "
            f"{ceiling} requests that each run to the {timeout} s timeout (at ${PRICE_PER_GB_SECOND}/GB-s)"
        )
        src = limit.src if limit is not None else fn.src
        return [
            _finding(
                NO_CONCURRENCY_LIMIT,
                src,
                message,
                f"{fn.name}:{what}",
                Severity.MEDIUM if public else Severity.LOW,
            )
        ]

    def _layers(self, fn: FunctionSpec) -> list[Finding]:
        out = []
        for layer in fn.layers:
            if isinstance(layer.ref, Unknown):
                out.append(
                    _finding(
                        UNPINNED_LAYER,
                        layer.src,
                        f"{fn.name}: layer {layer.ref} cannot be resolved, so neither its publisher nor its "
                        "version can be checked",
                        f"{fn.name}:{layer.ref.expr}",
                        Severity.LOW,
                    )
                )
                continue
            if layer.account and layer.account not in self.trusted:
                vendor = KNOWN_LAYER_PUBLISHERS.get(layer.account)
                out.append(
                    _finding(
                        FOREIGN_LAYER,
                        layer.src,
                        f"{fn.name}: layer {layer.ref} is published by account {layer.account}"
                        + (f" ({vendor})" if vendor else ", which is not listed in [scan.iac] trusted_accounts"),
                        f"{fn.name}:{layer.account}",
                        Severity.LOW if vendor else None,
                    )
                )
            if not layer.own and layer.version is None:
                out.append(
                    _finding(
                        UNPINNED_LAYER,
                        layer.src,
                        f"{fn.name}: layer {layer.ref} has no version",
                        f"{fn.name}:{layer.ref}",
                    )
                )
        return out

    def _hygiene(self, fn: FunctionSpec, public: bool) -> list[Finding]:
        out = []
        if fn.platform == "aws" and fn.package_type != "Image":
            cs = fn.code_signing
            if cs is None:
                out.append(
                    _finding(CODE_SIGNING, fn.src, f"{fn.name} has no code-signing configuration", f"{fn.name}:absent")
                )
            elif isinstance(cs.value, str) and cs.value.lower() != "enforce":
                out.append(
                    _finding(
                        CODE_SIGNING,
                        cs.src,
                        f"{fn.name}: code signing only warns ({cs.value}); unsigned code still deploys",
                        f"{fn.name}:{cs.value}",
                    )
                )
        if fn.platform == "aws":
            mode = fn.tracing.value if fn.tracing is not None else None
            if not (isinstance(mode, str) and mode.lower() in ("active", "true")):
                out.append(
                    _finding(
                        NO_TRACING,
                        fn.tracing.src if fn.tracing else fn.src,
                        f"{fn.name}: active tracing is off",
                        f"{fn.name}:tracing",
                    )
                )
            async_events = [t for t in fn.triggers if t.kind == "event" and t.detail.startswith(_ASYNC_EVENTS)]
            if async_events and fn.dead_letter is None:
                out.append(
                    _finding(
                        NO_DEAD_LETTER,
                        async_events[0].src,
                        f"{fn.name}: asynchronous trigger ({async_events[0].detail}) without a dead-letter queue "
                        "or on-failure destination",
                        f"{fn.name}:dlq",
                    )
                )
        if ("https_only", "false") in fn.extra:
            out.append(
                _finding(HTTPS_NOT_ENFORCED, fn.src, f"{fn.name}: https_only is not true", f"{fn.name}:https_only")
            )
        http = [t for t in fn.triggers if t.kind in _HTTP_KINDS]
        timeout = fn.timeout_s.value if fn.timeout_s is not None else None
        if http and isinstance(timeout, int) and timeout > 60 and fn.timeout_s is not None:
            out.append(
                _finding(
                    LONG_TIMEOUT,
                    fn.timeout_s.src,
                    f"{fn.name}: HTTP-invoked with a {timeout} s timeout",
                    f"{fn.name}:timeout",
                    Severity.MEDIUM if public and timeout > 300 else None,
                )
            )
        return out


_HTTP_KINDS = frozenset({"function-url", "rest-api", "http-api", "azure-http", "gcp-http", "permission"})


def public_triggers(fn: FunctionSpec) -> list[Trigger]:
    return [t for t in fn.triggers if t.public]
