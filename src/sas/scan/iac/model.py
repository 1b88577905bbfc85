"""The normalised deployment model every IaC parser produces and every check reads.

One :class:`FunctionSpec` per function, whatever the cloud or the format it was declared in. Each value
carries the file and line it came from (:class:`Src`), so that a finding points at the line to change.
A value the template does not fix statically (a parameter without a default, an SSM lookup, an attribute
of another resource) is an explicit :class:`Unknown`: checks treat it as "cannot tell", never as a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Src:
    """Where a value was written: a path relative to the scan target, and a 1-based line when known."""

    path: str
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Unknown:
    """A value that cannot be resolved statically; ``expr`` is what was written (``${ssm:/x}``, ``!GetAtt R.Arn``)."""

    expr: str

    def __str__(self) -> str:
        return f"<unknown: {self.expr}>"


@dataclass(frozen=True, slots=True)
class Sourced(Generic[T]):
    """A value (or :class:`Unknown`) with its source."""

    value: T | Unknown
    src: Src

    @property
    def known(self) -> bool:
        return not isinstance(self.value, Unknown)


@dataclass(frozen=True, slots=True)
class Statement:
    """One IAM policy statement, normalised: every list is a tuple of strings (or Unknown entries)."""

    effect: str  # "Allow" | "Deny"
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    conditions: str = ""  # compact text of the Condition block; empty when absent
    src: Src = field(default_factory=lambda: Src(""))
    origin: str = ""  # which policy it came from ("inline MyPolicy", "SAM S3ReadPolicy", "managed ...")
    unresolved: bool = False  # some action or resource could not be resolved statically


@dataclass(frozen=True, slots=True)
class RoleSpec:
    """An execution identity and every policy attached to it (combined before any judgement)."""

    name: str
    src: Src
    statements: tuple[Statement, ...] = ()
    managed_policies: tuple[Sourced[str], ...] = ()  # AWS-managed ARNs, GCP roles, Azure role names
    boundary: Sourced[str] | None = None  # permissions boundary, noted (it caps, it never grants)
    external: bool = False  # the role is defined elsewhere (an ARN or name given to the template)


@dataclass(frozen=True, slots=True)
class Trigger:
    """An entry point and how it is authenticated.

    ``kind``: function-url, rest-api, http-api, permission, azure-http, gcp-http, event (queues, schedules...).
    ``auth``: what guards it (``NONE``, ``AWS_IAM``, ``COGNITO``, ``JWT``, ``function``, ``allUsers``...), or
    Unknown. ``public`` is True when anyone on the internet can invoke it without credentials.
    """

    kind: str
    src: Src
    auth: str | Unknown = "NONE"
    public: bool | None = False  # None: cannot tell statically
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LayerRef:
    """A layer (or extension) reference; ``account`` and ``version`` are parsed out of an ARN when present."""

    ref: str | Unknown
    src: Src
    account: str | None = None  # 12-digit account id written literally; None when own-account or unknown
    version: str | None = None  # None when the ARN is unversioned or the version cannot be resolved
    own: bool = False  # built in this template (a Ref to a LayerVersion resource or the pseudo account id)


@dataclass(frozen=True, slots=True)
class EnvVar:
    """An environment variable or app setting. ``reference`` names a resource attribute it is wired to."""

    name: str
    value: str | Unknown
    src: Src
    reference: str = ""  # e.g. "aws_iam_access_key.deploy.secret", "!GetAtt Key.SecretAccessKey"


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """One deployed function, normalised across clouds and formats."""

    name: str
    platform: str  # "aws" | "azure" | "gcp"
    src: Src
    fmt: str  # "sam", "cloudformation", "serverless", "terraform", "function.json", "python-v2"
    runtime: Sourced[str] | None = None
    handler: Sourced[str] | None = None
    memory_mb: Sourced[int] | None = None
    timeout_s: Sourced[int] | None = None
    ephemeral_mb: Sourced[int] | None = None
    reserved_concurrency: Sourced[int] | None = None  # AWS reserved concurrency, GCP max instances
    environment: tuple[EnvVar, ...] = ()
    layers: tuple[LayerRef, ...] = ()
    package: Sourced[str] | None = None  # code location or image URI
    package_type: str = "Zip"
    triggers: tuple[Trigger, ...] = ()
    role: RoleSpec | None = None
    tracing: Sourced[str] | None = None  # "Active", "PassThrough", or absent
    dead_letter: Sourced[str] | None = None
    code_signing: Sourced[str] | None = None  # "Enforce", "Warn", or absent
    vpc: bool = False
    service_account: Sourced[str] | None = None  # GCP runtime identity; absent means the default one
    extra: tuple[tuple[str, str], ...] = ()  # parser-specific facts worth showing as evidence


@dataclass(frozen=True, slots=True)
class ParseIssue:
    """Something a parser could not read or resolve; becomes a finding (malformed) or a note (unresolved)."""

    src: Src
    message: str
    fatal: bool = False  # the file could not be parsed at all


@dataclass(frozen=True, slots=True)
class Deployment:
    """Everything one parser got out of one file (or one project folder for Terraform and Azure)."""

    fmt: str
    path: str
    functions: tuple[FunctionSpec, ...] = ()
    issues: tuple[ParseIssue, ...] = ()
    # settings-level facts that are not per function (Azure local.settings.json, layer permissions...)
    exposures: tuple[Trigger, ...] = ()
    settings: tuple[EnvVar, ...] = ()
    roles: tuple[RoleSpec, ...] = ()  # roles not (or not yet) attached to a function, still judged
