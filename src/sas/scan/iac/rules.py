"""Every rule of the deployment-configuration checks (SAS-IAC-###) and the IAM reasoning (SAS-IAM-###).

Declared here, apart from the checks, so that ``sas rules`` and a scan of a folder without any deployment
file pay only for these declarations; the parsers, the model and the IAM engine load when a template is
found.
"""

from __future__ import annotations

from sas.scan.iac.runtimes import TABLE_DATE
from sas.scan.rules import Rule, rule
from sas.taxonomy import Severity, Threat

_REFS_PRIV = ("OWASP Serverless Top 10 SAS-4",)

ADMIN = rule(
    "SAS-IAM-001",
    "Role grants administrator access",
    Severity.HIGH,
    Threat.OVER_PRIVILEGE,
    "The function's role allows every action on every resource (Action '*', AdministratorAccess, or NotAction "
    "with only a few exclusions). Anyone who runs code in the function owns the account.",
    "Replace the policy with the actions the function calls, on the resources it uses.",
    _REFS_PRIV,
)
SERVICE_WIDE = rule(
    "SAS-IAM-002",
    "Role grants every action of a service",
    Severity.HIGH,
    Threat.OVER_PRIVILEGE,
    "A statement allows a whole service ('s3:*', 'dynamodb:*', ...). On every resource this is high; on a "
    "named resource it is medium.",
    "List the individual actions the function needs.",
    _REFS_PRIV,
)
BROAD_WRITE = rule(
    "SAS-IAM-003",
    "Role can write or manage permissions on every resource",
    Severity.HIGH,
    Threat.OVER_PRIVILEGE,
    "Actions at access level 'Permissions management' (high) or 'Write' (medium) are allowed on Resource '*', "
    "so the function can change any resource of those types in the account.",
    "Scope the Resource element to the ARNs the function owns.",
    _REFS_PRIV,
)
ESCALATION = rule(
    "SAS-IAM-004",
    "Role has a privilege-escalation path",
    Severity.HIGH,
    Threat.PRIVILEGE_ESCALATION_PATH,
    "The permissions of the role, combined across all its policies, complete a known privilege-escalation "
    "method (Rhino Security Labs catalogue, pathfinding.cloud lambda-001..006): code running in the function "
    "can obtain more privileges than the role was meant to have.",
    "Remove one permission of the path (usually iam:PassRole on '*', or the iam:/lambda: write action), or "
    "scope it to named resources with conditions.",
    _REFS_PRIV,
)
EXFILTRATION = rule(
    "SAS-IAM-005",
    "Role can read data or secrets account-wide",
    Severity.MEDIUM,
    Threat.OVER_PRIVILEGE,
    "The role can read every object, secret, parameter or key of a kind (s3:GetObject, "
    "secretsmanager:GetSecretValue, ssm:GetParameter, kms:Decrypt on '*'): one code-injection bug in the "
    "function exfiltrates them all.",
    "Scope data-reading actions to the buckets, secrets and keys the function uses.",
    _REFS_PRIV,
)
UNRESOLVED_POLICY = rule(
    "SAS-IAM-006",
    "Role permissions could not be fully resolved",
    Severity.INFO,
    Threat.INCOMPLETE_ANALYSIS,
    "Part of the role's permissions comes from something the template does not contain (a customer-managed "
    "policy ARN, a role defined elsewhere, an unresolvable expression). Those permissions were not judged.",
    "Define the role and its policies in the same template, or review the external policy separately.",
    (),
)
PUBLIC_AND_PRIVILEGED = rule(
    "SAS-IAM-010",
    "Public entry point runs with a privileged role",
    Severity.CRITICAL,
    Threat.PRIVILEGE_ESCALATION_PATH,
    "Anyone on the internet can invoke this function without credentials, and its role is privileged "
    "(administrator, an escalation path, service-wide or account-wide data access). One injection bug in the "
    "handler hands that role to an anonymous attacker.",
    "Require authentication on the entry point, and reduce the role to least privilege; either alone lowers "
    "the risk, both are needed.",
    ("OWASP Serverless Top 10 SAS-2", "OWASP Serverless Top 10 SAS-4", "MITRE ATLAS AML.T0049"),
)


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
    f"The runtime is past its provider's deprecation date (table dated {TABLE_DATE.isoformat()}) "
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
