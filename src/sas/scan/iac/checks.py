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
from sas.scan.iac.secrets import find_secret
from sas.scan.rules import Rule, rule
from sas.taxonomy import Severity, Threat

_CONFIG = ("OWASP Serverless Top 10 SAS-3",)

UNPARSABLE = rule(
    "SAS-IAC-000",
    "Deployment file could not be parsed",
    Severity.MEDIUM,
    Threat.INCOMPLETE_ANALYSIS,
    "A template or deployment file is malformed or too large, so none of its functions were checked. A "
    "deployment tool may still read it differently.",
    "Fix the syntax error at the reported line (or split the template), then scan again.",
    ("CWE-20",),
)
PUBLIC_ENTRY = rule(
    "SAS-IAC-001",
    "Function is invocable from the internet without authentication",
    Severity.HIGH,
    Threat.PUBLIC_EXPOSURE,
    "A Function URL with AuthType NONE, an API route without an authorizer, a resource policy with "
    "Principal '*', an Azure HTTP trigger with authLevel anonymous, or a GCP invoker binding for "
    "allUsers/allAuthenticatedUsers lets anyone call the function: model extraction, abuse of the role, "
    "and an open bill.",
    "Require authentication (AWS_IAM, a JWT/Cognito/Lambda authorizer, function keys plus App Service "
    "auth, or a named GCP invoker), or put an authenticated gateway in front.",
    ("OWASP Serverless Top 10 SAS-2", "MITRE ATLAS AML.T0049", "OWASP ML Top 10 ML05"),
)
UNRESOLVED = rule(
    "SAS-IAC-002",
    "Deployment value could not be resolved statically",
    Severity.INFO,
    Threat.INCOMPLETE_ANALYSIS,
    "A value that a check depends on comes from outside the file (a parameter without default, an SSM "
    "lookup, a CLI option, another stack). sas never guesses it, so that check was not applied.",
    "Give the parameter a default, or scan the rendered template (sam build, serverless package, "
    "terraform show -json).",
    (),
)
SECRET_ENV = rule(
    "SAS-IAC-003",
    "Secret in environment variables or app settings",
    Severity.HIGH,
    Threat.SECRET_EXPOSURE,
    "A credential is written in plain text in the function's environment or app settings (or a long-lived "
    "IAM access key is wired into it). Environment variables are readable by anyone who can read the "
    "function's configuration, end up in logs and crash dumps, and are exfiltrated by any code injection.",
    "Keep the secret in a secret store (Secrets Manager, SSM SecureString, Key Vault, Secret Manager) and "
    "pass only its reference; rotate the exposed value.",
    ("OWASP Serverless Top 10 SAS-7", "MITRE ATLAS AML.T0055"),
)
DEPRECATED_RUNTIME = rule(
    "SAS-IAC-005",
    "Function uses a deprecated runtime",
    Severity.MEDIUM,
    Threat.DEPENDENCY_POISONING,
    f"The runtime is past its provider's deprecation date (table dated {runtimes.TABLE_DATE.isoformat()}) "
    "and no longer receives security patches.",
    "Move to a supported runtime version.",
    ("OWASP Serverless Top 10 SAS-6",),
)
NO_CONCURRENCY_LIMIT = rule(
    "SAS-IAC-006",
    "No concurrency limit (denial of wallet)",
    Severity.LOW,
    Threat.DENIAL_OF_WALLET,
    "Without a per-function concurrency cap (reserved concurrency, max instances, scale limit), a burst of "
    "requests scales the function to the account or platform limit; the finding computes what that costs "
    "per hour from memory, timeout and concurrency. Medium when the function is publicly invocable.",
    "Set a concurrency limit sized for expected peak load, and rate-limit the entry point.",
    ("OWASP Serverless Top 10 SAS-8", "MITRE ATLAS AML.T0034"),
)
FOREIGN_LAYER = rule(
    "SAS-IAC-007",
    "Layer from another account",
    Severity.MEDIUM,
    Threat.MALICIOUS_LAYER,
    "The function loads a layer published by another AWS account. That account can publish new code the "
    "function runs (if unpinned) or may be compromised; the layer's code runs with the function's role.",
    "Build the layer in your own account from reviewed sources, or list the publisher in [scan.iac] "
    "trusted_accounts after review.",
    ("OWASP Serverless Top 10 SAS-6", "MITRE ATLAS AML.T0010"),
)
UNPINNED_LAYER = rule(
    "SAS-IAC-008",
    "Layer version is not pinned",
    Severity.MEDIUM,
    Threat.MALICIOUS_LAYER,
    "The layer reference has no version number (or it cannot be resolved), so what runs can change "
    "without a change to this file.",
    "Reference the layer by its full version ARN (…:layer:name:N).",
    ("OWASP Serverless Top 10 SAS-6",),
)
CODE_SIGNING = rule(
    "SAS-IAC-009",
    "Code signing not enforced",
    Severity.LOW,
    Threat.UNTRUSTED_ARTIFACT_SOURCE,
    "The function has no code-signing configuration, or it only warns (UntrustedArtifactOnDeployment: "
    "Warn), so unsigned or tampered packages deploy.",
    "Attach a code-signing config with UntrustedArtifactOnDeployment: Enforce.",
    ("OWASP Serverless Top 10 SAS-6",),
)
DEFAULT_SERVICE_ACCOUNT = rule(
    "SAS-IAC-010",
    "GCP function runs as the default compute service account",
    Severity.MEDIUM,
    Threat.OVER_PRIVILEGE,
    "Without service_account_email a Cloud Function runs as PROJECT_NUMBER-compute@developer."
    "gserviceaccount.com, which holds the project Editor role unless the organisation disabled automatic "
    "grants: any code injection can change most of the project.",
    "Create a dedicated service account with only the roles the function needs and set service_account_email.",
    ("OWASP Serverless Top 10 SAS-4",),
)
AZURE_STORAGE_KEY = rule(
    "SAS-IAC-011",
    "Azure storage account key in settings",
    Severity.HIGH,
    Threat.SECRET_EXPOSURE,
    "A storage connection string with AccountKey= is stored in app settings or local.settings.json. The key "
    "gives full control of the storage account, which also holds the function app's own code and keys.",
    "Use identity-based connections (AzureWebJobsStorage__accountName with a managed identity) or a Key "
    "Vault reference; rotate the key.",
    ("OWASP Serverless Top 10 SAS-7", "MITRE ATLAS AML.T0055"),
)
NO_TRACING = rule(
    "SAS-IAC-012",
    "Tracing not enabled",
    Severity.INFO,
    Threat.INCOMPLETE_ANALYSIS,
    "Active tracing is off, so an investigation cannot follow a request through the function and the calls it makes.",
    "Set Tracing: Active (SAM), tracing.lambda: true (serverless.yml) or tracing_config { mode = Active }.",
    ("OWASP Serverless Top 10 SAS-5",),
)
NO_DEAD_LETTER = rule(
    "SAS-IAC-013",
    "Asynchronous function has no dead-letter or on-failure destination",
    Severity.LOW,
    Threat.INCOMPLETE_ANALYSIS,
    "Events that fail every retry are dropped silently, including the ones an attacker crafted to fail.",
    "Configure a dead-letter queue or an on-failure destination.",
    ("OWASP Serverless Top 10 SAS-5",),
)
LONG_TIMEOUT = rule(
    "SAS-IAC-014",
    "Long timeout on a synchronous entry point",
    Severity.LOW,
    Threat.DENIAL_OF_WALLET,
    "An HTTP-invoked function with a timeout above 60 s lets each slow or hanging request cost up to the full timeout.",
    "Keep HTTP timeouts short (API Gateway stops waiting after 29 s anyway); move long work to a queue.",
    ("OWASP Serverless Top 10 SAS-8",),
)
PUBLIC_LAYER = rule(
    "SAS-IAC-015",
    "Layer shared with every AWS account",
    Severity.MEDIUM,
    Threat.UNTRUSTED_ARTIFACT_SOURCE,
    "A layer permission grants '*' (all accounts) the right to use the layer: anything bundled in it "
    "(code, models, configuration) is public.",
    "Share with named accounts or an organisation id.",
    ("OWASP Serverless Top 10 SAS-3",),
)

GCP_BASIC_ROLE = rule(
    "SAS-IAM-007",
    "Function identity holds a basic Owner/Editor role",
    Severity.HIGH,
    Threat.OVER_PRIVILEGE,
    "The service account the function runs as is granted roles/owner or roles/editor on the project: code "
    "running in the function can change (or, with Owner, take over) the whole project.",
    "Grant the service account predefined or custom roles limited to what the function calls.",
    ("OWASP Serverless Top 10 SAS-4",),
)
HTTPS_NOT_ENFORCED = rule(
    "SAS-IAC-016",
    "Function app accepts plain HTTP",
    Severity.LOW,
    Threat.PUBLIC_EXPOSURE,
    "https_only is not set, so requests (and function keys in them) may travel unencrypted.",
    "Set https_only = true on the function app.",
    ("OWASP Serverless Top 10 SAS-3",),
)

ALL_RULES: tuple[Rule, ...] = (
    GCP_BASIC_ROLE,
    HTTPS_NOT_ENFORCED,
    UNPARSABLE,
    PUBLIC_ENTRY,
    UNRESOLVED,
    SECRET_ENV,
    DEPRECATED_RUNTIME,
    NO_CONCURRENCY_LIMIT,
    FOREIGN_LAYER,
    UNPINNED_LAYER,
    CODE_SIGNING,
    DEFAULT_SERVICE_ACCOUNT,
    AZURE_STORAGE_KEY,
    NO_TRACING,
    NO_DEAD_LETTER,
    LONG_TIMEOUT,
    PUBLIC_LAYER,
)

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
                    iam.PUBLIC_AND_PRIVILEGED,
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
