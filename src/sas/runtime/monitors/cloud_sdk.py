"""The cloud-SDK monitor: every AWS API call the function makes, judged before it is sent.

Why not only a botocore ``before-call`` event handler: handlers live on each client's event emitter, so
they miss every client created before the Shield (the usual ``s3 = boto3.client("s3")`` at module level,
above the Shield). Wrapping ``botocore.client.BaseClient._make_api_call`` once sees every client, old and
new, at the same point ``before-call`` fires (before the request is signed and sent), with the service, the
operation name and the parameters. botocore is never imported by this module: the wrapper is installed when
botocore is already loaded, or on the first invocation after the function imports it.

A call is recorded in the invocation summary; it is a violation (alert; blocked in enforce mode with
:class:`~sas.runtime.monitors.audit.PolicyViolation`) when it matches ``[runtime.sdk] sensitive`` (IAM,
AssumeRole, Lambda code changes, secrets...) and is not listed in ``expected``, when it reads a secret not in
``secrets``, or when ``expected`` is set and the call is not in it.
"""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Callable
from typing import Any

from sas.runtime.monitors.audit import PolicyViolation, Violation
from sas.runtime.policy import RuntimePolicy
from sas.taxonomy import Severity, Threat


class _WrapState:
    active: SdkMonitor | None = None
    installed: bool = False


_STATE = _WrapState()


def _matches(action: str, patterns: tuple[str, ...]) -> bool:
    lowered = action.lower()
    return any(fnmatch.fnmatchcase(lowered, p.lower()) for p in patterns)


def _secret_allowed(secret_id: str, allowed: tuple[str, ...]) -> bool:
    for entry in allowed:
        if secret_id == entry or fnmatch.fnmatchcase(secret_id, entry):
            return True
        # an ARN ends with ":secret:NAME-XXXXXX"; a name matches its ARN and the other way round
        if secret_id.startswith("arn:") and ":secret:" in secret_id:
            name = secret_id.split(":secret:", 1)[1]
            if name == entry or name.rsplit("-", 1)[0] == entry:
                return True
        if entry.startswith("arn:") and ":secret:" in entry:
            name = entry.split(":secret:", 1)[1]
            if secret_id == name or secret_id == name.rsplit("-", 1)[0]:
                return True
    return False


class SdkMonitor:
    def __init__(self, policy: RuntimePolicy, report: Callable[[Violation], None]) -> None:
        self.policy = policy
        self.report = report
        self.calls: list[str] = []  # this invocation's calls, drained by the Shield

    def judge(self, service: str, operation: str, params: Any) -> None:
        action = f"{service}:{operation}"
        self.calls.append(action)
        policy = self.policy
        expected = policy.sdk_expected
        explicitly_expected = bool(expected) and _matches(action, expected)
        reason = ""
        severity = Severity.MEDIUM
        details: dict[str, Any] = {"action": action}
        if action.lower() == "secretsmanager:getsecretvalue":
            secret = str(params.get("SecretId", "")) if isinstance(params, dict) else ""
            details["secret"] = secret
            if not _secret_allowed(secret, policy.sdk_secrets) and not (explicitly_expected and not policy.sdk_secrets):
                reason, severity = "secret outside the expected secrets", Severity.HIGH
        elif _matches(action, policy.sdk_sensitive) and not explicitly_expected:
            reason, severity = "sensitive call", Severity.HIGH
            if isinstance(params, dict) and params.get("RoleArn"):
                details["role"] = str(params["RoleArn"])
        elif expected and not explicitly_expected:
            reason = "call outside the expected set"
        if reason:
            details["reason"] = reason
            self.report(Violation("sdk-call", Threat.PRIVILEGE_ESCALATION, severity, details))
            if policy.enforce:
                raise PolicyViolation(f"blocked by runtime policy: {action}")

    def drain(self) -> list[str]:
        calls, self.calls = self.calls, []
        return calls


def _service_of(client: Any) -> str:
    try:
        model = client.meta.service_model
        return str(model.signing_name or model.endpoint_prefix or model.service_name)
    except AttributeError:
        return "unknown"


def install(monitor: SdkMonitor) -> bool:
    """Activate ``monitor``; wrap botocore if it is loaded. Returns whether the wrapper is in place."""
    _STATE.active = monitor
    return ensure_wrapped()


def ensure_wrapped() -> bool:
    """Wrap ``BaseClient._make_api_call`` once botocore is loaded (called again at each invocation start)."""
    if _STATE.installed:
        return True
    client_module = sys.modules.get("botocore.client")
    if client_module is None:
        return False
    base = client_module.BaseClient
    original = base._make_api_call

    def _make_api_call(self: Any, operation_name: str, api_params: Any) -> Any:
        monitor = _STATE.active
        if monitor is not None:
            monitor.judge(_service_of(self), operation_name, api_params)
        return original(self, operation_name, api_params)

    _make_api_call.__wrapped__ = original  # type: ignore[attr-defined]
    base._make_api_call = _make_api_call
    _STATE.installed = True
    return True


def deactivate(monitor: SdkMonitor | None = None) -> None:
    if monitor is None or _STATE.active is monitor:
        _STATE.active = None
