"""Text for people's terminals: control characters made visible.

File names, HTTP headers, client and request ids reach the tables ``sas`` prints, and an attacker chooses them:
an escape sequence in one can recolour the terminal, set its title or rewrite what is on screen, a newline can
forge a row, and a bidirectional override can reverse what a line reads as. Every text that came from outside
goes through :func:`visible` before it is printed for a person (machine formats, JSON and SARIF, keep it as it
is, escaped by their own encoders). A floor module: the scanner and the forensics tools both print such text.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the Unicode format characters that reorder or hide text (bidi marks, embeddings,
# overrides and isolates; the Arabic letter mark)
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def visible(text: str) -> str:
    """``text`` with each unsafe character written as its escape (``\\n``, ``\\x1b``, ``\\u202e``)."""
    return _UNSAFE.sub(_escape, text)
