"""Secrets in environment variables and app settings: known token formats, telling names, entropy.

A value that is a reference (``{{resolve:secretsmanager:...}}``, ``${ssm:...}``, ``@Microsoft.KeyVault(...)``,
an ARN, ``var.x``) is how secrets should be passed and is never flagged.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

TOKEN_FORMATS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("AWS access key id", re.compile(r"\b(AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b")),
    ("private key", re.compile(r"-----BEGIN ([A-Z ]+ )?PRIVATE KEY-----")),
    ("GitHub token", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b")),
    ("Slack token", re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}")),
    ("Stripe live key", re.compile(r"\b[sr]k_live_[A-Za-z0-9]{16,}")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("Anthropic API key", re.compile(r"\bsk-ant-[A-Za-z0-9_-]{20,}")),
    ("OpenAI API key", re.compile(r"\bsk-(proj-)?[A-Za-z0-9_-]{20,}")),
    ("Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")),
    ("SendGrid key", re.compile(r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}")),
    ("JSON web token", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")),
    ("Azure storage account key", re.compile(r"AccountKey=[A-Za-z0-9+/=]{40,}")),
    ("Azure shared access signature", re.compile(r"(SharedAccessKey=|[?&]sig=)[A-Za-z0-9%+/=]{20,}")),
    ("password in URL", re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]{3,}@")),
)
SECRET_NAME = re.compile(
    r"(SECRET|PASSW(OR)?D|PASSWD|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL|CLIENT_?SECRET|AUTH_?KEY"
    r"|CONNECTION_?STRING|CONN_?STR|SIGNING_?KEY|WEBHOOK)",
    re.IGNORECASE,
)
REFERENCE = re.compile(
    r"^\s*(\{\{resolve:|\$\{(ssm|env|opt|self|file|cf|s3|aws|sls|param|var|local|data|module|secretsmanager)"
    r"|@Microsoft\.KeyVault\(|arn:|projects/[^/]+/secrets/|var\.|local\.|data\.|module\.|<unknown)",
    re.IGNORECASE,
)
PLACEHOLDER = re.compile(r"^(|x+|\*+|none|null|true|false|changeme|change_me|todo|tbd|example|dummy|test|<.*>)$", re.I)


@dataclass(frozen=True, slots=True)
class SecretHit:
    kind: str  # what was recognised
    confidence: str  # "format" | "name" | "entropy"
    redacted: str


def redact(value: str) -> str:
    if len(value) <= 8:
        return "*" * len(value)
    return f"{value[:4]}…{value[-2:]} ({len(value)} chars)"


def entropy(value: str) -> float:
    counts = Counter(value)
    total = len(value)
    return -sum(c / total * math.log2(c / total) for c in counts.values())


def find_secret(name: str, value: str) -> SecretHit | None:
    """Why ``name=value`` looks like a plaintext secret, or None."""
    text = value.strip()
    for kind, pattern in TOKEN_FORMATS:
        if pattern.search(text):
            return SecretHit(kind, "format", redact(text))
    if REFERENCE.match(text) or PLACEHOLDER.match(text):
        return None
    named = SECRET_NAME.search(name) and len(text) >= 8 and " " not in text and not text.startswith(("/", "./"))
    if named and not re.fullmatch(r"[A-Z][A-Z0-9_]*", text):  # the name of another variable is not a value
        return SecretHit(f"value of {name}", "name", redact(text))
    if len(text) >= 24 and " " not in text and "/" not in text.strip("/=") and entropy(text) >= 4.2:
        classes = sum(bool(re.search(p, text)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))
        if classes >= 3:
            return SecretHit("high-entropy string", "entropy", redact(text))
    return None
