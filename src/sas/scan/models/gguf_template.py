"""Static analysis of Jinja chat templates (GGUF ``tokenizer.chat_template``, tokenizer configs).

A chat template is code: llama-cpp-python rendered it with an unsandboxed ``jinja2.Environment``
(CVE-2024-34359), and from a template ``cycler.__init__.__globals__.os.popen(...)`` runs a shell. Nothing is
rendered here. The template is tokenised by a small Jinja lexer written for the purpose (expression and
statement blocks, string literals with their escapes decoded, names, operators), because a rendering or even
a parsing library would be more than we need and jinja2's parser is not a dependency of the scanner. The
checks look for what SSTI payloads must use and ordinary chat templates never do: dunder attributes and
names, name-mangled privates (``self._TemplateReference__context``), frame and function internals, OS and
import machinery, the ``attr`` filter fed a computed name, and string building that hides underscores
(``"\\x5f"``, ``"%c"|format(95)``). Names ordinary templates use (``namespace``, ``raise_exception``,
``strftime_now``, ``loop``, ``message['role'] == 'system'``) are never flagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from sas.taxonomy import Severity


class HitKind(Enum):
    INTERNALS = "internals"  # reaches Python object internals: critical
    DANGEROUS = "dangerous"  # names OS, process or import machinery: high
    GADGET = "gadget"  # sandbox-escape gadgets or obfuscation without a visible payload: medium or high


@dataclass(frozen=True, slots=True)
class TemplateHit:
    kind: HitKind
    severity: Severity
    token: str
    offset: int
    why: str


# Attribute names that only matter to reach interpreter internals.
_INTERNAL_ATTRS = frozenset(
    {
        "mro",
        "func_globals",
        "func_code",
        "im_func",
        "f_globals",
        "f_locals",
        "f_back",
        "f_builtins",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "ag_frame",
        "tb_frame",
        "co_code",
        "co_consts",
    }
)
_INTERNAL_SUBSTRINGS = (
    "__class__",
    "__subclasses__",
    "__globals__",
    "__builtins__",
    "__import__",
    "__mro__",
    "__base__",
    "__bases__",
    "__init__",
    "__dict__",
    "__getattribute__",
    "__code__",
    "__func__",
    "__self__",
    "__reduce__",
    "__loader__",
    "__spec__",
    "_TemplateReference__context",
)
# Modules and callables that run commands or import code; flagged as names, attributes, calls or attr() args.
_DANGEROUS_MODULES = frozenset(
    {"os", "subprocess", "sys", "builtins", "importlib", "posix", "nt", "pty", "socket", "ctypes", "shutil", "runpy"}
)
_DANGEROUS_CALLABLES = frozenset(
    {
        "popen",
        "system",
        "spawn",
        "spawnl",
        "spawnv",
        "spawnve",
        "execl",
        "execv",
        "execve",
        "execvp",
        "eval",
        "exec",
        "compile",
        "getattr",
        "setattr",
        "globals",
        "locals",
        "vars",
        "import_module",
        "load_module",
        "check_output",
        "check_call",
        "Popen",
        "getoutput",
        "fork",
        "kill",
        "remove",
        "unlink",
        "rmtree",
        "listdir",
        "environ",
        "getenv",
        "open",
        "read_text",
        "write_text",
    }
)
# Callables whose names are also ordinary words (``message.system``): flagged only when called.
_AMBIGUOUS = frozenset({"system", "open", "remove", "unlink", "kill", "fork", "compile", "vars", "environ"})
# Jinja globals that SSTI chains pivot through; chat templates have no use for them.
_GADGET_NAMES = frozenset(
    {"cycler", "joiner", "lipsum", "self", "config", "request", "url_for", "get_flashed_messages", "g"}
)
_DUNDER = re.compile(r"^__\w+__$")
_PARTIAL_DUNDER = re.compile(r"^(?:__[A-Za-z]\w*|\w*[A-Za-z]__)$")  # "__cla" / "ss__", joined later

_BLOCK = re.compile(r"\{\{|\{%|\{#")
_CLOSE = {"{{": "}}", "{%": "%}", "{#": "#}"}
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<number>\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\*\*|//|==|!=|<=|>=|[-+*/%~|.,:;()\[\]{}<>=!?])
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{1,3}|N\{[^}]*\}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    text: str  # for strings: the decoded value
    offset: int
    escaped: bool = False  # a string literal that used character escapes


class _HitFn(Protocol):
    def __call__(self, kind: HitKind, severity: Severity, tok: _Tok, why: str, token: str | None = None) -> None: ...


def tokenize(template: str) -> list[_Tok]:
    """Tokens of every ``{{ }}`` and ``{% %}`` block (comments and ``raw`` blocks skipped), in order.
    A ``None`` kind token named ``end`` separates blocks so that patterns never span two of them."""
    out: list[_Tok] = []
    pos = 0
    raw = False
    while True:
        match = _BLOCK.search(template, pos)
        if match is None:
            break
        opener = match.group()
        start = match.end()
        close = _find_close(template, start, _CLOSE[opener])
        end = len(template) if close < 0 else close
        body = template[start:end]
        pos = end + 2 if close >= 0 else len(template)
        if opener == "{#":
            continue
        stripped = body.strip("-+ \t\r\n")
        if opener == "{%" and re.match(r"endraw\b", stripped):
            raw = False
            continue
        if raw:
            continue
        if opener == "{%" and re.match(r"raw\b", stripped):
            raw = True
            continue
        out.extend(_lex(body, start))
        out.append(_Tok("end", "", end))
    return out


def _find_close(template: str, start: int, close: str) -> int:
    """The closing delimiter, skipping over string literals (a ``}}`` inside quotes does not close)."""
    i = start
    quote = ""
    n = len(template)
    while i < n:
        ch = template[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif template.startswith(close, i):
            return i
        i += 1
    return -1


def _lex(body: str, base: int) -> list[_Tok]:
    toks: list[_Tok] = []
    for m in _TOKEN.finditer(body):
        kind = m.lastgroup or "other"
        if kind == "ws":
            continue
        text = m.group()
        if kind == "string":
            value, escaped = _unescape(text[1:-1])
            toks.append(_Tok("string", value, base + m.start(), escaped))
        else:
            toks.append(_Tok(kind, text, base + m.start()))
    return toks


def _unescape(text: str) -> tuple[str, bool]:
    """Decode Python-style escapes as Jinja does; report whether any character escape (\\x, \\u, octal,
    \\N) was used, since chat templates only ever need \\n and quotes."""
    escaped = False

    def sub(m: re.Match[str]) -> str:
        nonlocal escaped
        code = m.group(1)
        if code[0] in "xuU":
            escaped = True
            return chr(int(code[1:], 16))
        if code[0] in "01234567" and (len(code) > 1 or code != "0"):
            escaped = True
            return chr(int(code, 8))
        if code.startswith("N{"):
            escaped = True
            return "?"
        return _SIMPLE_ESCAPES.get(code, "\\" + code)

    return _ESCAPE.sub(sub, text), escaped


def analyze_template(template: str) -> list[TemplateHit]:
    """Findings for one template, most severe first; an ordinary chat template gives none above low."""
    toks = tokenize(template)
    bound = _bound_names(toks)
    hits: list[TemplateHit] = []

    def hit(kind: HitKind, severity: Severity, tok: _Tok, why: str, token: str | None = None) -> None:
        hits.append(TemplateHit(kind, severity, token or tok.text, tok.offset, why))

    for i, tok in enumerate(toks):
        prev = toks[i - 1] if i else None
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        after_dot = prev is not None and prev.kind == "op" and prev.text == "."
        called = nxt is not None and nxt.kind == "op" and nxt.text == "("
        if tok.kind == "name":
            name = tok.text
            if _DUNDER.match(name) or "__" in name.strip("_") or name in _INTERNAL_ATTRS:
                hit(HitKind.INTERNALS, Severity.CRITICAL, tok, f"reaches Python internals through {name!r}")
            elif after_dot and name.startswith("_"):
                hit(HitKind.INTERNALS, Severity.HIGH, tok, f"reads the private attribute {name!r}")
            elif name in _DANGEROUS_MODULES and name not in bound and not _is_key_or_kwarg(toks, i):
                hit(HitKind.DANGEROUS, Severity.HIGH, tok, f"names the {name!r} module")
            elif name in _DANGEROUS_CALLABLES and (
                (after_dot and (called or name not in _AMBIGUOUS)) or (called and name in {"eval", "exec", "getattr"})
            ):
                hit(HitKind.DANGEROUS, Severity.HIGH, tok, f"calls or reads {name!r}")
            elif name in _GADGET_NAMES and not after_dot and not _is_key_or_kwarg(toks, i) and not _is_target(toks, i):
                hit(HitKind.GADGET, Severity.MEDIUM, tok, f"uses the template global {name!r}, an SSTI pivot")
            elif name == "attr" and prev is not None and prev.text == "|":
                _attr_filter(toks, i, hit)
        elif tok.kind == "string":
            _string(tok, prev, nxt, hit)
    _concatenations(toks, hit)
    hits.sort(key=lambda h: (-h.severity.rank, h.offset))
    return hits


def _bound_names(toks: list[_Tok]) -> set[str]:
    """Names the template binds itself (``{% set sys = ... %}``, ``{% for os, x in ... %}``): variables, not
    modules, wherever they are read."""
    bound: set[str] = set()
    for i, tok in enumerate(toks):
        if tok.kind == "name" and tok.text in ("set", "for", "with") and (i == 0 or toks[i - 1].kind == "end"):
            j = i + 1
            while j < len(toks) and toks[j].kind == "name" and toks[j].text != "in":
                bound.add(toks[j].text)
                if j + 1 < len(toks) and toks[j + 1].text == ",":
                    j += 2
                else:
                    break
    return bound


def _is_key_or_kwarg(toks: list[_Tok], i: int) -> bool:
    nxt = toks[i + 1] if i + 1 < len(toks) else None
    return nxt is not None and nxt.kind == "op" and nxt.text in ("=", ":")


def _is_target(toks: list[_Tok], i: int) -> bool:
    """``{% set self = ... %}`` or ``{% for g in ... %}`` bind the name rather than read a global."""
    prev = toks[i - 1] if i else None
    return prev is not None and prev.kind == "name" and prev.text in ("set", "for", "macro")


def _attr_filter(toks: list[_Tok], i: int, hit: _HitFn) -> None:
    args = toks[i + 1 : i + 5]
    if len(args) >= 3 and args[0].text == "(" and args[1].kind == "string" and args[2].text == ")":
        return  # a literal name: checked as a string
    hit(HitKind.GADGET, Severity.HIGH, toks[i], "the attr filter is given a computed attribute name", "attr")


def _string(tok: _Tok, prev: _Tok | None, nxt: _Tok | None, hit: _HitFn) -> None:
    value = tok.text
    used_as_name = prev is not None and (prev.text == "[" or (prev.text == "(" and nxt is not None and nxt.text == ")"))
    if any(s in value for s in _INTERNAL_SUBSTRINGS) or _DUNDER.match(value.strip()):
        hit(HitKind.INTERNALS, Severity.CRITICAL, tok, f"string {value[:40]!r} names a Python internal", value[:80])
    elif used_as_name and (value in _INTERNAL_ATTRS or value.startswith("_")):
        hit(HitKind.INTERNALS, Severity.CRITICAL, tok, f"looks up the internal attribute {value[:40]!r}", value[:80])
    elif used_as_name and (value in _DANGEROUS_MODULES or value in _DANGEROUS_CALLABLES - {"system", "open"}):
        hit(HitKind.DANGEROUS, Severity.HIGH, tok, f"looks up {value[:40]!r} by name", value[:80])
    elif re.search(r"\b(?:import\s+(?:os|subprocess|sys)|os\.(?:system|popen)|subprocess\.)", value):
        hit(HitKind.DANGEROUS, Severity.HIGH, tok, "string holds Python code that runs commands", value[:80])
    elif tok.escaped and re.search(r"[A-Za-z_]", value):
        hit(HitKind.GADGET, Severity.HIGH, tok, "string literal spells letters with character escapes", value[:80])
    elif "%c" in value:
        hit(HitKind.GADGET, Severity.HIGH, tok, "string builds characters with %c formatting", value[:80])
    elif _PARTIAL_DUNDER.match(value):
        hit(HitKind.GADGET, Severity.HIGH, tok, f"string {value[:40]!r} is half of a dunder name", value[:80])


def _concatenations(toks: list[_Tok], hit: _HitFn) -> None:
    """Fold ``"__cla" ~ "ss__"`` and ``"__cla" + "ss__"`` chains of literals and check the result."""
    i = 0
    while i < len(toks):
        if toks[i].kind != "string":
            i += 1
            continue
        parts = [toks[i].text]
        j = i
        while j + 2 < len(toks) and toks[j + 1].text in ("~", "+") and toks[j + 2].kind == "string":
            parts.append(toks[j + 2].text)
            j += 2
        if len(parts) > 1:
            joined = "".join(parts)
            if not any(s in p for p in parts for s in _INTERNAL_SUBSTRINGS) and (
                any(s in joined for s in _INTERNAL_SUBSTRINGS) or _DUNDER.match(joined)
            ):
                hit(
                    HitKind.INTERNALS,
                    Severity.CRITICAL,
                    toks[i],
                    "concatenated strings spell a Python internal",
                    joined,
                )
            elif joined in _DANGEROUS_MODULES or joined in {"popen", "system", "eval", "exec"}:
                hit(HitKind.DANGEROUS, Severity.HIGH, toks[i], f"concatenated strings spell {joined!r}", joined)
        i = j + 1
