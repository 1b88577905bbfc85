"""IAM policy documents (already evaluated) into :class:`~sas.scan.iac.model.Statement` records.

Shared by every AWS parser: CloudFormation/SAM inline policies, serverless.yml statements, Terraform
``jsonencode`` policies and ``aws_iam_policy_document``. Anything unresolvable inside a statement marks it
``unresolved``; a wildcard is never invented for it.
"""

from __future__ import annotations

import json
from typing import Any

from sas.scan.iac.model import Src, Statement, Unknown
from sas.scan.iac.yamlsrc import line_of


def _strings(value: Any) -> tuple[tuple[str, ...], bool]:
    """A string-or-list field as strings; the flag says something in it was not a plain string."""
    if value is None:
        return (), False
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    unresolved = False
    for item in items:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, int | float) and not isinstance(item, bool):
            out.append(str(item))
        else:
            unresolved = True  # never turned into a pattern: an unknown is not a wildcard
    return tuple(out), unresolved


def _condition_text(cond: Any) -> str:
    if not cond:
        return ""
    try:
        return json.dumps(cond, sort_keys=True, default=str)[:200]
    except (TypeError, ValueError):
        return str(cond)[:200]


def statements(doc: Any, path: str, line: int | None, origin: str) -> list[Statement]:
    """Statements of a policy document (``{"Statement": [...]}``, one statement, or a JSON string)."""
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except ValueError:
            return [Statement("Allow", src=Src(path, line), origin=origin, unresolved=True)]
    if isinstance(doc, Unknown) or doc is None:
        return [Statement("Allow", src=Src(path, line), origin=f"{origin} ({doc})", unresolved=True)]
    raw = doc.get("Statement", doc) if isinstance(doc, dict) else doc
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for index, item in enumerate(items):
        item_line = line_of(raw, index) if isinstance(raw, list) else line
        if not isinstance(item, dict):
            out.append(Statement("Allow", src=Src(path, item_line or line), origin=origin, unresolved=True))
            continue
        out.append(statement(item, path, item_line or line, origin))
    return out


def statement(item: dict[Any, Any], path: str, line: int | None, origin: str) -> Statement:
    """One statement dict (CloudFormation spelling: Effect, Action, NotAction, Resource, ...)."""
    get = {str(k).lower(): v for k, v in item.items()}
    effect = get.get("effect", "Allow")
    actions, u1 = _strings(get.get("action"))
    not_actions, u2 = _strings(get.get("notaction"))
    resources, u3 = _strings(get.get("resource"))
    not_resources, u4 = _strings(get.get("notresource"))
    effect_text = effect if isinstance(effect, str) else "Allow"
    return Statement(
        effect="Deny" if effect_text.lower() == "deny" else "Allow",
        actions=actions,
        not_actions=not_actions,
        resources=resources,
        not_resources=not_resources,
        conditions=_condition_text(get.get("condition")),
        src=Src(path, line),
        origin=origin,
        unresolved=u1 or u2 or u3 or u4 or not isinstance(effect, str),
    )
