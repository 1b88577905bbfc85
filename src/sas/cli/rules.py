"""``sas rules``: list the rule catalogue."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("rules", help="list every rule sas scan can report")
    p.add_argument("--format", "-f", default="table", choices=["table", "json"])
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sas.scan.rules import catalogue

    rules = catalogue()
    if args.format == "json":
        out = [
            {
                "id": r.id,
                "title": r.title,
                "severity": r.severity.value,
                "category": r.category.value,
                "threat": r.threat.value,
                "description": r.description,
                "remediation": r.remediation,
                "references": [ref.label() for ref in r.references],
            }
            for r in rules
        ]
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return 0
    id_w = max(len(r.id) for r in rules)
    title_w = max(len(r.title) for r in rules)
    print(f"{'ID':<{id_w}}  {'SEVERITY':<8}  {'CATEGORY':<14}  {'THREAT':<28}  {'TITLE':<{title_w}}  REFERENCES")
    for r in rules:
        refs = ", ".join(ref.label() for ref in r.references)
        print(
            f"{r.id:<{id_w}}  {r.severity.value:<8}  {r.category.value:<14}  {r.threat.value:<28}  "
            f"{r.title:<{title_w}}  {refs}"
        )
    return 0
