"""Suspicious code in vendored modules: decode-then-exec chains, and network calls or credential harvesting
that run at import time.

Read through the ``ast`` module, never by running anything. A cheap byte-level pre-filter decides which files
are worth parsing at all (most of a large site-packages mentions none of the trigger words), so parsing cost
follows the suspicious files, not the package size.

* decode-then-exec: ``exec``/``eval``/``compile``/``types.FunctionType``/``marshal.loads`` applied to the
  output of a decoder (base64/base32/base85/hex, zlib/bz2/lzma/gzip decompression, ``marshal``,
  ``codecs.decode(..., "rot13")``), directly or through a variable assigned from one, anywhere in the file;
* import-time network: ``urlopen``, ``requests``/``httpx`` verbs, ``http.client`` connections, raw sockets,
  DNS look-ups, ``curl``/``wget`` through a shell, in statements that run when the module is imported
  (module level, class bodies, and the bodies of module-level functions called from there);
* import-time credential harvesting: reading ``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``/... from the
  environment, touching the container credentials endpoint (169.254.170.2) or the instance metadata service
  (169.254.169.254), ``/proc/self/environ`` or ``~/.aws/credentials``; copying the whole environment counts
  when the same import-time code also talks to the network.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# Literal tokens, searched with ``bytes.__contains__`` (memchr speed): regular-expression alternations over a
# whole site-packages cost seconds.
_DECODE_TOKENS = (
    b"b64decode",
    b"b32decode",
    b"b16decode",
    b"a85decode",
    b"b85decode",
    b"decodebytes",
    b"decompress",
    b"marshal",
    b"unhexlify",
    b"fromhex",
    b"rot13",
    b"rot_13",
    b"base64",
)
_EXEC_TOKENS = (b"exec(", b"eval(", b"compile(", b"FunctionType(", b"marshal.loads")
_CRED_TOKENS = (
    b"AWS_SECRET_ACCESS_KEY",
    b"AWS_SESSION_TOKEN",
    b"AWS_ACCESS_KEY_ID",
    b"AWS_CONTAINER_",
    b"169.254.170.2",
    b"169.254.169.254",
    b"/proc/self/environ",
    b".aws/credentials",
)
_NET_TOKENS = (
    b"urlopen(",
    b"urlretrieve(",
    b".get(",
    b".post(",
    b"HTTPConnection(",
    b"HTTPSConnection(",
    b"create_connection(",
    b"gethostbyname",
    b"getaddrinfo(",
    b".connect((",
    b"curl ",
    b"wget ",
)
_NET_CLIENT_TOKENS = (b"requests", b"httpx", b"urllib", b"http.client", b"socket", b"curl", b"wget")

CREDENTIAL_NAMES = frozenset(
    {
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECURITY_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AZURE_CLIENT_SECRET",
        "GOOGLE_APPLICATION_CREDENTIALS",
    }
)
_CREDENTIAL_STRINGS = ("169.254.170.2", "169.254.169.254", "/proc/self/environ", ".aws/credentials")

_DECODER_NAMES = frozenset(
    {
        "b64decode",
        "b32decode",
        "b16decode",
        "a85decode",
        "b85decode",
        "urlsafe_b64decode",
        "standard_b64decode",
        "decodebytes",
        "decodestring",
        "unhexlify",
        "a2b_base64",
        "a2b_hex",
        "fromhex",
        "decompress",
    }
)
_EXECUTORS = frozenset({"exec", "eval", "compile", "FunctionType", "execfile"})
_NETWORK_CALLS = frozenset(
    {
        "urlopen",
        "urlretrieve",
        "create_connection",
        "gethostbyname",
        "gethostbyname_ex",
        "getaddrinfo",
        "HTTPConnection",
        "HTTPSConnection",
    }
)
_HTTP_CLIENTS = frozenset({"requests", "httpx", "urllib3", "session", "Session", "http"})
_HTTP_VERBS = frozenset({"get", "post", "put", "patch", "delete", "head", "request", "urlopen", "stream"})


@dataclass(frozen=True, slots=True)
class Suspicion:
    kind: str  # "decode-exec" | "network" | "credentials"
    line: int
    evidence: str


def worth_parsing(data: bytes) -> bool:
    """Whether ``data`` mentions anything the AST checks look for."""
    # short necessary substrings first: each is one C-level scan, and most files fail all of them
    if (b"AWS_" in data or b"169.254." in data or b"/environ" in data or b".aws/" in data) and any(
        t in data for t in _CRED_TOKENS
    ):
        return True
    if (b"exec" in data or b"eval(" in data or b"compile(" in data or b"marshal" in data) and (
        any(t in data for t in _EXEC_TOKENS) and any(t in data for t in _DECODE_TOKENS)
    ):
        return True
    return (b"http" in data or b"socket" in data or b"curl" in data or b"wget" in data or b"url" in data) and any(
        t in data for t in _NET_TOKENS
    )


def inspect_source(data: bytes) -> list[Suspicion]:
    """The suspicious constructs in one Python source file (empty when it does not parse: not our job)."""
    if not worth_parsing(data):
        return []
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    found = list(_decode_exec(tree))
    found += _import_time(tree)
    return found


def _dotted(node: ast.AST) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    elif isinstance(node, ast.Call):
        parts.append(_dotted(node.func) + "()")
    return ".".join(reversed(parts))


def _last(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _is_decoder(call: ast.Call) -> bool:
    name = _dotted(call.func)
    last = _last(name)
    if last in _DECODER_NAMES:
        return True
    if last == "loads" and name.split(".")[0] == "marshal":
        return True
    if last == "decode":  # codecs.decode(x, "rot13"/"base64"/"hex"/"zlib"), or bytes.decode of such codecs
        for arg in list(call.args[1:] if name.startswith("codecs") else call.args) + [k.value for k in call.keywords]:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                codec = arg.value.lower().replace("-", "_")
                if codec in ("rot13", "rot_13", "base64", "base_64", "hex", "zlib", "bz2", "uu", "base64_codec"):
                    return True
    return False


def _contains_decoder(node: ast.AST, tainted: set[str]) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and _is_decoder(sub):
            return True
        if isinstance(sub, ast.Name) and sub.id in tainted:
            return True
    return False


def _scopes(tree: ast.AST) -> Iterator[list[ast.AST]]:
    """The nodes of each scope (module, each function), nested function bodies excluded."""
    todo: list[ast.AST] = [tree]
    while todo:
        scope = todo.pop()
        own: list[ast.AST] = []
        stack = list(ast.iter_child_nodes(scope))
        while stack:
            node = stack.pop()
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                todo.append(node)
                continue
            own.append(node)
            stack.extend(ast.iter_child_nodes(node))
        yield own


def _decode_exec(tree: ast.AST) -> Iterator[Suspicion]:
    for own in _scopes(tree):
        calls = [n for n in own if isinstance(n, ast.Call)]
        executors = []
        for call in calls:
            name = _dotted(call.func)
            last = _last(name)
            if last in _EXECUTORS or (last == "loads" and name.startswith("marshal")):
                executors.append(call)
        if not executors:
            continue
        tainted: set[str] = set()
        assigns = [n for n in own if isinstance(n, ast.Assign | ast.AnnAssign | ast.AugAssign) and n.value is not None]
        for _ in range(2):  # a decoded value passed through one more variable is still followed
            for node in assigns:
                if node.value is not None and _contains_decoder(node.value, tainted):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    tainted.update(name for t in targets for name in _bound_names(t))
        for call in executors:
            args = list(call.args) + [k.value for k in call.keywords]
            if any(_contains_decoder(arg, tainted) for arg in args):
                yield Suspicion("decode-exec", call.lineno, ast.unparse(call)[:160])


def _bound_names(target: ast.AST) -> Iterator[str]:
    """Names an assignment target binds (``a``, ``a, b``, ``*a``), not names read inside ``x[i]`` or ``x.y``."""
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, ast.Tuple | ast.List):
        for element in target.elts:
            yield from _bound_names(element)
    elif isinstance(target, ast.Starred):
        yield from _bound_names(target.value)


def _is_main_guard(test: ast.expr) -> bool:
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


def _import_time_statements(tree: ast.Module) -> Iterator[ast.stmt]:
    """Statements that run on ``import``: module level and class bodies, plus module-level functions they call."""
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    seen: set[str] = set()
    stack: list[ast.stmt] = list(reversed(tree.body))
    while stack:
        stmt = stack.pop()
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(stmt, ast.If) and _is_main_guard(stmt.test):
            continue
        yield stmt
        children: list[ast.stmt] = []
        for field_name in ("body", "orelse", "finalbody"):
            children += [s for s in getattr(stmt, field_name, []) or [] if isinstance(s, ast.stmt)]
        for handler in getattr(stmt, "handlers", []) or []:
            children += handler.body
        stack.extend(reversed(children))
        for sub in _shallow_walk(stmt):
            called = sub.func.id if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) else ""
            if called in functions and called not in seen:
                seen.add(called)
                stack.extend(reversed(functions[called].body))


def _shallow_walk(stmt: ast.stmt) -> Iterable[ast.AST]:
    """Expression nodes of one statement, without descending into nested statements or function bodies."""
    todo: list[ast.AST] = [
        child for child in ast.iter_child_nodes(stmt) if not isinstance(child, ast.stmt | ast.excepthandler)
    ]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.Lambda):
            continue
        todo.extend(ast.iter_child_nodes(node))


def _import_time(tree: ast.Module) -> list[Suspicion]:
    network: list[Suspicion] = []
    credentials: list[Suspicion] = []
    environment_copies: list[Suspicion] = []
    for stmt in _import_time_statements(tree):
        for node in _shallow_walk(stmt):
            if isinstance(node, ast.Call):
                name = _dotted(node.func)
                last = _last(name)
                head = name.split(".")[0]
                text = None
                if last in _NETWORK_CALLS or (last in _HTTP_VERBS and head in _HTTP_CLIENTS):
                    text = ast.unparse(node)[:160]
                elif last == "connect" and node.args and isinstance(node.args[0], ast.Tuple):
                    text = ast.unparse(node)[:160]  # socket.connect((host, port))
                elif last in ("system", "popen", "run", "call", "check_output", "Popen", "check_call") and any(
                    isinstance(c, ast.Constant) and isinstance(c.value, str) and re.search(r"\b(curl|wget)\b", c.value)
                    for c in ast.walk(node)
                ):
                    text = ast.unparse(node)[:160]
                if text is not None:
                    network.append(Suspicion("network", node.lineno, text))
                    if any(_endpoint_string(arg) for arg in [*node.args, *(k.value for k in node.keywords)]):
                        credentials.append(Suspicion("credentials", node.lineno, text))
                reads_secret = last in ("get", "getenv", "pop") and node.args and _credential_constant(node.args[0])
                opens_secret = last == "open" and node.args and _endpoint_string(node.args[0])
                if reads_secret or opens_secret:
                    credentials.append(Suspicion("credentials", node.lineno, ast.unparse(node)[:160]))
                elif (name in ("dict", "str", "repr", "json.dumps") and node.args and _is_environ(node.args[0])) or (
                    last in ("copy", "items") and isinstance(node.func, ast.Attribute) and _is_environ(node.func.value)
                ):
                    environment_copies.append(Suspicion("credentials", node.lineno, ast.unparse(node)[:160]))
            elif isinstance(node, ast.Subscript) and _is_environ(node.value) and _credential_constant(node.slice):
                credentials.append(Suspicion("credentials", node.lineno, ast.unparse(node)[:160]))
    if network:
        credentials += environment_copies
    return _first_per_line(network)[:5] + _first_per_line(credentials)[:5]


def _first_per_line(items: list[Suspicion]) -> list[Suspicion]:
    seen: set[int] = set()
    out: list[Suspicion] = []
    for item in items:
        if item.line not in seen:
            seen.add(item.line)
            out.append(item)
    return out


def _endpoint_string(node: ast.AST) -> bool:
    return any(
        isinstance(sub, ast.Constant)
        and isinstance(sub.value, str)
        and any(s in sub.value for s in _CREDENTIAL_STRINGS)
        for sub in ast.walk(node)
    )


def _is_environ(node: ast.AST) -> bool:
    return _dotted(node) in ("os.environ", "environ", "os.environb")


def _credential_constant(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in CREDENTIAL_NAMES
