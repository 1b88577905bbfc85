"""Hard-coded credentials: well-known token formats in the raw text, secret-named literals in the AST.

Token formats are matched on the source text, comments included (a key in a comment is as leaked as one in
code). The name-based check needs the AST (which literal is assigned to which name) and an entropy floor, so
that ``password_field = "password"`` or ``token_url = "https://..."`` stay quiet. Evidence never holds the
secret itself: a report is often more widely shared than the code.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# (label, literal markers, pattern). A pattern runs only when one of its markers occurs in the text: substring
# search is far faster than the regex engine trying each alternative at every position.
TOKEN_PATTERNS: tuple[tuple[str, tuple[str, ...], re.Pattern[str]], ...] = (
    ("AWS access key id", ("AKIA", "ASIA", "ABIA", "ACCA"), re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b")),
    (
        "private key",
        ("PRIVATE KEY",),
        # the header alone is what key parsers compare against; a leaked key has its base64 body after it
        re.compile(
            r"-----BEGIN (?:RSA |DSA |EC |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----"
            r"(?:\s|\\n|\\r|[A-Za-z-]+: [^\n]*\n)*[A-Za-z0-9+/=]{40,}"
        ),
    ),
    (
        "GitHub token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
        re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}\b"),
    ),
    ("GitHub fine-grained token", ("github_pat_",), re.compile(r"\bgithub_pat_[A-Za-z0-9_]{60,255}\b")),
    ("Slack token", ("xox",), re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,250}\b")),
    (
        "Slack webhook",
        ("hooks.slack.com",),
        re.compile(r"https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]{20,}"),
    ),
    ("Stripe live key", ("_live_",), re.compile(r"\b(?:sk|rk)_live_[A-Za-z0-9]{20,247}\b")),
    ("Google API key", ("AIza",), re.compile(r"\bAIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])")),
    ("Hugging Face token", ("hf_",), re.compile(r"\bhf_[A-Za-z0-9]{34,40}\b")),
    (
        "OpenAI key",
        ("T3BlbkFJ",),
        re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}T3BlbkFJ[A-Za-z0-9_\-]{20,}"),
    ),
    ("Anthropic key", ("sk-ant-",), re.compile(r"\bsk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_\-]{80,}")),
)

_SECRET_NAME = re.compile(
    r"(?i)(?:passw(?:or)?d|passwd|pwd|secret|token|api_?key|apikey|access_?key|private_?key|credential|"
    r"auth_?key|signing_?key|client_?secret|conn(?:ection)?_?str(?:ing)?)"
)
# names that hold something about a secret, not the secret
_NOT_SECRET_NAME = re.compile(
    r"(?i)(?:_(?:url|uri|endpoint|name|arn|id|ids|path|file|field|type|env|var|header|len|length|prefix|param|"
    r"key_name|kind|label|version|ttl|expiry|expires|count|size|format|regex|pattern|location|region)$|^is_|^has_)"
)
_AWS_SECRET_NAME = re.compile(r"(?i)aws_?secret(?:_?access)?_?key")
_AWS_SECRET_VALUE = re.compile(r"^[A-Za-z0-9/+]{40}$")
_PLACEHOLDER = re.compile(
    r"(?i)(?:xxx|changeme|change_me|example|your[_-]|dummy|placeholder|redacted|\*\*\*|<[^>]*>|\$\{|\{\{|todo|"
    r"fixme|secret_here|insert|replace)"
)


@dataclass(frozen=True, slots=True)
class SecretHit:
    line: int
    column: int
    label: str
    redacted: str
    named: bool  # found by name and entropy rather than by a token format


def redact(secret: str) -> str:
    if len(secret) <= 8:
        return f"{secret[:2]}… ({len(secret)} chars)"
    return f"{secret[:4]}…{secret[-2:]} ({len(secret)} chars)"


def shannon_entropy(text: str) -> float:
    counts: dict[str, int] = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def token_hits(text: str) -> Iterator[SecretHit]:
    for label, markers, pattern in TOKEN_PATTERNS:
        if not any(marker in text for marker in markers):
            continue
        # line and column counted on from the previous match: from the top of the text each time, a 2 MB line
        # of repeated token prefixes (thousands of matches) took seconds per pattern
        line, line_start, seen = 1, 0, 0
        for match in pattern.finditer(text):
            value = match.group(0)
            context = text[max(0, match.start() - 40) : match.end() + 40]
            if "EXAMPLE" in value or "example" in context.lower():
                continue  # AWS's documented AKIAIOSFODNN7EXAMPLE and friends
            newlines = text.count("\n", seen, match.start())
            if newlines:
                line += newlines
                line_start = text.rfind("\n", seen, match.start()) + 1
            seen = match.start()
            yield SecretHit(line, match.start() - line_start + 1, label, redact(value), named=False)


def _looks_secret(value: str) -> bool:
    if len(value) < 8 or len(value) > 512 or any(ch.isspace() for ch in value):
        return False
    if _PLACEHOLDER.search(value) or value.startswith(("http://", "https://", "/", "arn:")):
        return False
    classes = sum((any(c.islower() for c in value), any(c.isupper() for c in value), any(c.isdigit() for c in value)))
    classes += any(not c.isalnum() for c in value)
    return classes >= 2 and shannon_entropy(value) >= 3.0


def _target_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        return node.slice.value  # os.environ["API_TOKEN"] = "..." and config["password"] = "..."
    return None


def _secret_name(name: str | None) -> bool:
    return bool(name and _SECRET_NAME.search(name) and not _NOT_SECRET_NAME.search(name))


def named_hits(nodes: Iterable[ast.AST]) -> Iterator[SecretHit]:
    """Literal strings bound to secret-looking names: assignments, keyword arguments, dict entries, defaults."""

    def pairs() -> Iterator[tuple[str | None, ast.expr]]:
        for node in nodes:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    yield _target_name(target), node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                yield _target_name(node.target), node.value
            elif isinstance(node, ast.keyword) and node.arg:
                yield node.arg, node.value
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and isinstance(key.value, str):
                        yield key.value, value
            elif isinstance(node, ast.arguments):
                positional = node.posonlyargs + node.args
                for arg, default in zip(positional[len(positional) - len(node.defaults) :], node.defaults, strict=True):
                    yield arg.arg, default
                for arg, kw_default in zip(node.kwonlyargs, node.kw_defaults, strict=True):
                    if kw_default is not None:
                        yield arg.arg, kw_default

    for name, value in pairs():
        if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
            continue
        if name and _AWS_SECRET_NAME.search(name) and _AWS_SECRET_VALUE.match(value.value):
            label = "AWS secret access key"
            yield SecretHit(value.lineno, value.col_offset + 1, label, redact(value.value), named=False)
        elif _secret_name(name) and _looks_secret(value.value):
            yield SecretHit(
                value.lineno, value.col_offset + 1, f"literal assigned to {name}", redact(value.value), True
            )
