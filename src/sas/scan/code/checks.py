"""AST checks over one Python source file, with a light taint from the handler's event or request.

Sources: the parameters of entry points (Lambda ``handler(event, context)``, Azure ``main(req: func.HttpRequest)``
and v2 ``@app.route``/``@app.*_trigger(arg_name=...)`` functions, GCP ``@functions_framework.http``/``cloud_event``,
Flask/FastAPI route functions), parameters named like an event or request in any function, Flask's global
``request`` and Powertools' ``app.current_event``.

Propagation is flow-insensitive and mostly intra-procedural: within one function (and into the closures it
defines), a name is tainted once anything tainted is assigned to it anywhere (assignment, augmented
assignment, ``for`` target, ``with ... as``, walrus, comprehension, ``x.append(tainted)``). An expression is
tainted when it reads a tainted name: attribute access, subscripts, method calls on tainted objects, calls
with a tainted argument (``json.loads``, ``base64.b64decode``, ``BytesIO``...), f-strings, concatenation and
``%``/``format``. A few calls end taint (``int``, ``len``, ``os.path.basename``, ``shlex.quote``, hashing,
``uuid``). Across functions, only calls by name to module-level functions pass taint to their parameters
(a few rounds, for chains of helpers). Limits, on purpose: no methods or calls through variables, no
attributes of ``self``, no return values (a helper's result is tainted only because a call with a tainted
argument is), containers are tainted as a whole, and branch conditions (allow-list checks) are not
understood; a subscript of an untainted table with a tainted key is untainted (the table chooses).

The module never imports or runs the code it reads.
"""

from __future__ import annotations

import ast
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sas.scan.code import rules as R
from sas.scan.code import secrets
from sas.scan.rules import Rule
from sas.taxonomy import Severity

# ---------------------------------------------------------------- vocabularies

# parameter names that mark request data in any function (a helper the handler passes its event to);
# "body" and "payload" are too common in library code to mean that on their own
EVENT_PARAM_NAMES = frozenset({"event", "evt", "cloud_event", "cloudevent", "raw_event"})
REQUEST_PARAM_NAMES = frozenset({"request", "req", "http_request", "httprequest"})
CONTEXT_PARAM_NAMES = frozenset({"context", "ctx", "_context", "_ctx", "lambda_context", "_lambda_context"})
TAINT_ANNOTATIONS = (
    "HttpRequest",
    "Request",
    "QueueMessage",
    "EventHubEvent",
    "ServiceBusMessage",
    "EventGridEvent",
    "InputStream",
    "CloudEvent",
    "WebSocket",
    "APIGatewayProxyEvent",
    "APIGatewayProxyEventV2",
    "LambdaFunctionUrlEvent",
    "ALBEvent",
    "SQSEvent",
    "SNSEvent",
    "S3Event",
    "EventBridgeEvent",
    "KinesisStreamEvent",
)
GCP_DECORATORS = frozenset({"functions_framework.http", "functions_framework.cloud_event", "functions_framework.typed"})
ROUTE_METHODS = frozenset(
    {"route", "get", "post", "put", "patch", "delete", "head", "options", "api_route", "websocket", "http"}
)
REQUEST_GLOBALS = frozenset({"flask.request", "quart.request", "bottle.request", "werkzeug.request"})

SANITIZERS = frozenset(
    {
        "int",
        "float",
        "bool",
        "len",
        "abs",
        "round",
        "hash",
        "id",
        "isinstance",
        "callable",
        "os.path.basename",
        "posixpath.basename",
        "ntpath.basename",
        "werkzeug.utils.secure_filename",
        "secure_filename",
        "shlex.quote",
        "pipes.quote",
        "uuid.uuid4",
        "uuid.uuid5",
        "uuid.UUID",
        "math.isfinite",
    }
)
SANITIZER_PREFIXES = ("hashlib.", "hmac.", "uuid.")
BOOL_METHODS = frozenset({"startswith", "endswith", "count", "find", "rfind", "index", "rindex", "__len__"})

MUTABLE_FACTORIES = frozenset(
    {
        "dict",
        "list",
        "set",
        "bytearray",
        "collections.defaultdict",
        "collections.OrderedDict",
        "collections.deque",
        "collections.Counter",
        "collections.ChainMap",
        "weakref.WeakValueDictionary",
    }
)
MUTATORS = frozenset(
    {"append", "extend", "add", "update", "insert", "setdefault", "appendleft", "extendleft", "__setitem__", "push"}
)

# deserializers that run code; value: the condition under which the call is unsafe (None: always)
DESERIALIZERS: dict[str, str | None] = {
    "pickle.loads": None,
    "pickle.load": None,
    "pickle.Unpickler": None,
    "_pickle.loads": None,
    "_pickle.load": None,
    "cPickle.loads": None,
    "cPickle.load": None,
    "joblib.load": None,
    "sklearn.externals.joblib.load": None,
    "marshal.loads": None,
    "marshal.load": None,
    "dill.loads": None,
    "dill.load": None,
    "dill.Unpickler": None,
    "cloudpickle.loads": None,
    "cloudpickle.load": None,
    "pandas.read_pickle": None,
    "jsonpickle.decode": None,
    "shelve.open": None,
    "numpy.load": "allow_pickle",
    "torch.load": "weights_only",
    "yaml.load": "loader",
    "yaml.load_all": "loader",
    "yaml.unsafe_load": None,
    "yaml.unsafe_load_all": None,
    "yaml.full_load": None,
    "yaml.full_load_all": None,
}
SAFE_YAML_LOADERS = frozenset({"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"})

ALWAYS_SHELL = frozenset(
    {
        "os.system",
        "os.popen",
        "subprocess.getoutput",
        "subprocess.getstatusoutput",
        "commands.getoutput",
        "commands.getstatusoutput",
        "asyncio.create_subprocess_shell",
    }
)
SUBPROCESS = frozenset(
    {
        "subprocess.run",
        "subprocess.call",
        "subprocess.check_call",
        "subprocess.check_output",
        "subprocess.Popen",
        "asyncio.create_subprocess_exec",
    }
)
EXEC_PREFIXES = ("os.exec", "os.spawn", "os.posix_spawn")
DYNAMIC_CODE = frozenset({"eval", "exec", "compile", "builtins.eval", "builtins.exec", "builtins.compile"})

# HTTP fetches: qualified name -> index of the URL argument
FETCHERS: dict[str, int] = {
    **{f"requests.{m}": 0 for m in ("get", "post", "put", "patch", "delete", "head", "options")},
    "requests.request": 1,
    **{f"httpx.{m}": 0 for m in ("get", "post", "put", "patch", "delete", "head", "options")},
    "httpx.request": 1,
    "httpx.stream": 1,
    "urllib.request.urlopen": 0,
    "urllib.request.Request": 0,
    "urllib.request.urlretrieve": 0,
    "urllib3.request": 1,
    "aiohttp.request": 1,
    "http.client.HTTPConnection": 0,
    "http.client.HTTPSConnection": 0,
    "socket.create_connection": 0,
    "pandas.read_csv": 0,
    "pandas.read_json": 0,
}
CLIENT_FACTORIES = frozenset(
    {
        "requests.Session",
        "requests.session",
        "httpx.Client",
        "httpx.AsyncClient",
        "urllib3.PoolManager",
        "aiohttp.ClientSession",
    }
)
CLIENT_METHODS: dict[str, int] = {
    **{m: 0 for m in ("get", "post", "put", "patch", "delete", "head", "options")},
    "request": 1,
    "stream": 1,
    "urlopen": 1,
}
_FIXED_HOST = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#{}\s]+[/?#]")

# file-system calls: qualified name -> indexes of path arguments
PATH_CALLS: dict[str, tuple[int, ...]] = {
    "open": (0,),
    "io.open": (0,),
    "codecs.open": (0,),
    "os.open": (0,),
    "os.remove": (0,),
    "os.unlink": (0,),
    "os.rmdir": (0,),
    "os.removedirs": (0,),
    "os.mkdir": (0,),
    "os.makedirs": (0,),
    "os.listdir": (0,),
    "os.scandir": (0,),
    "os.rename": (0, 1),
    "os.replace": (0, 1),
    "os.chmod": (0,),
    "os.truncate": (0,),
    "os.symlink": (0, 1),
    "shutil.copy": (0, 1),
    "shutil.copy2": (0, 1),
    "shutil.copyfile": (0, 1),
    "shutil.copytree": (0, 1),
    "shutil.move": (0, 1),
    "shutil.rmtree": (0,),
    "tarfile.open": (0,),
    "zipfile.ZipFile": (0,),
    "flask.send_file": (0,),
}
PATH_KEYWORDS = frozenset({"file", "path", "filename", "src", "dst", "name", "fp"})
PATH_METHODS = frozenset(
    {"open", "read_text", "read_bytes", "write_text", "write_bytes", "unlink", "rmdir", "touch", "mkdir", "iterdir"}
)

LOG_FUNCTIONS = frozenset(
    {"print", *(f"logging.{m}" for m in ("debug", "info", "warning", "warn", "error", "exception", "critical", "log"))}
)
LOG_METHODS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical", "log", "fatal"})
WHOLE_BODY_METHODS = frozenset({"get_json", "get_body", "get_data", "json", "to_json"})
WHOLE_BODY_KEYS = frozenset({"body", "headers", "multiValueHeaders", "queryStringParameters", "requestContext"})


# ---------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Hit:
    rule: Rule
    line: int
    column: int
    message: str
    evidence: str
    severity: Severity | None = None
    files: tuple[str, ...] = ()  # file names a loader call reads, for linking it to the scanned model file


@dataclass
class ModuleInfo:
    aliases: dict[str, str] = field(default_factory=dict)  # local name -> qualified name
    mutable_globals: set[str] = field(default_factory=set)
    clients: set[str] = field(default_factory=set)  # module-level HTTP client objects
    request_globals: set[str] = field(default_factory=set)  # names bound to flask.request and the like
    values: dict[str, ast.expr] = field(default_factory=dict)  # module-level NAME = expression
    mentions_tmp: bool = False  # some string literal starts with /tmp (gates the /tmp residue check)


def _evidence(node: ast.AST, limit: int = 200) -> str:
    try:
        text = ast.unparse(node)
    except (ValueError, RecursionError, AttributeError):  # unparse of odd trees
        text = type(node).__name__
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def qualname(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """The dotted name a call target resolves to through the module's imports (``np.load`` -> ``numpy.load``)."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        base = qualname(node.value, aliases)
        return f"{base}.{node.attr}" if base else None
    if isinstance(node, ast.Call):
        base = qualname(node.func, aliases)
        first = node.args[0] if node.args else None
        module = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
        if base in ("__import__", "builtins.__import__", "importlib.import_module") and module:
            return module  # __import__("os").system(...) is os.system(...)
        if base in ("getattr", "builtins.getattr") and len(node.args) >= 2:
            attr = node.args[1]
            target = qualname(node.args[0], aliases)
            if target and isinstance(attr, ast.Constant) and isinstance(attr.value, str):
                return f"{target}.{attr.value}"  # getattr(pickle, "loads")(data) is pickle.loads(data)
        return f"{base}()" if base else None
    return None


def _module_info(tree: ast.Module, nodes: Iterable[ast.AST]) -> ModuleInfo:
    info = ModuleInfo()
    for node in nodes:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str) and node.value.startswith("/tmp"):  # noqa: S108
                info.mentions_tmp = True
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    info.aliases[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    info.aliases.setdefault(top, top)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if alias.name != "*":
                    info.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for stmt in tree.body:  # loads = pickle.loads; sh = __import__("os").system
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Name | ast.Attribute | ast.Call):
            qual = qualname(stmt.value, info.aliases)
            if qual and not qual.endswith("()") and (qual in DESERIALIZERS or "." in qual or qual in DYNAMIC_CODE):
                for target in stmt.targets:
                    if isinstance(target, ast.Name) and target.id not in info.aliases:
                        info.aliases[target.id] = qual
    for name, qual in info.aliases.items():
        if qual in REQUEST_GLOBALS:
            info.request_globals.add(name)
    for stmt in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets, value = [stmt.target], stmt.value
        if value is None:
            continue
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        for name in names:
            info.values[name] = value
        if _is_mutable(value, info.aliases):
            info.mutable_globals.update(names)
        if isinstance(value, ast.Call) and qualname(value.func, info.aliases) in CLIENT_FACTORIES:
            info.clients.update(names)
    return info


def _is_mutable(value: ast.expr, aliases: dict[str, str]) -> bool:
    if isinstance(value, ast.Dict | ast.List | ast.Set | ast.DictComp | ast.ListComp | ast.SetComp):
        return True
    return isinstance(value, ast.Call) and qualname(value.func, aliases) in MUTABLE_FACTORIES


# ---------------------------------------------------------------- scopes


_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields(cls: type) -> tuple[str, ...]:
    fields = _FIELDS.get(cls)
    if fields is None:
        # expression contexts (Load/Store) are nodes too: skipping them halves the walk
        fields = tuple(f for f in getattr(cls, "_fields", ()) if f not in ("ctx", "type_comment", "type_ignores"))
        _FIELDS[cls] = fields
    return fields


@dataclass
class Scope:
    """One function (or the module) and the nodes it owns, without the bodies of the functions it defines."""

    node: ast.Module | ast.FunctionDef | ast.AsyncFunctionDef
    nodes: list[ast.AST] = field(default_factory=list)
    children: list[Scope] = field(default_factory=list)


def build_scopes(tree: ast.Module) -> Scope:
    """Index the tree in one iterative walk (the stdlib's generators cost several times more)."""
    root = Scope(tree)
    stack: list[tuple[ast.AST, Scope]] = [(stmt, root) for stmt in reversed(tree.body)]
    while stack:
        node, scope = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            child = Scope(node)
            scope.children.append(child)
            # decorators and defaults are evaluated in the enclosing scope
            scope.nodes.append(node.args)
            defaults = [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
            stack.extend((d, scope) for d in [*node.decorator_list, *defaults])
            stack.extend((stmt, child) for stmt in reversed(node.body))
            continue
        scope.nodes.append(node)
        for name in _fields(type(node)):
            value = getattr(node, name, None)
            if isinstance(value, ast.AST):
                stack.append((value, scope))
            elif isinstance(value, list):
                stack.extend((item, scope) for item in reversed(value) if isinstance(item, ast.AST))
    return root


def all_nodes(scope: Scope) -> Iterator[ast.AST]:
    yield from scope.nodes
    for child in scope.children:
        yield from all_nodes(child)


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.arg]:
    a = fn.args
    out = [*a.posonlyargs, *a.args, *a.kwonlyargs]
    if a.vararg:
        out.append(a.vararg)
    if a.kwarg:
        out.append(a.kwarg)
    return out


def _annotation_text(arg: ast.arg) -> str:
    if arg.annotation is None:
        return ""
    text = _evidence(arg.annotation)
    return text.strip("'\"")


def entry_sources(fn: ast.FunctionDef | ast.AsyncFunctionDef, info: ModuleInfo) -> tuple[set[str], set[str]]:
    """(tainted parameter names, parameters that hold the whole event) of one function."""
    params = [p for p in _params(fn) if p.arg not in ("self", "cls")]
    names = [p.arg for p in params]
    positional = [p.arg for p in [*fn.args.posonlyargs, *fn.args.args] if p.arg not in ("self", "cls")]
    tainted: set[str] = set()
    whole: set[str] = set()
    for deco in fn.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        qual = qualname(target, info.aliases) or ""
        last = qual.rsplit(".", 1)[-1]
        if qual in GCP_DECORATORS or (qual.startswith("functions_framework.") and positional):
            if positional:
                tainted.add(positional[0])
                whole.add(positional[0])
        elif isinstance(deco, ast.Call) and isinstance(target, ast.Attribute) and last in ROUTE_METHODS:
            tainted.update(names)  # route functions: every parameter comes from the path, query or body
        elif isinstance(deco, ast.Call) and last.endswith("_trigger") and last not in ("timer_trigger", "schedule"):
            for kw in deco.keywords:
                if kw.arg == "arg_name" and isinstance(kw.value, ast.Constant) and kw.value.value in names:
                    tainted.add(str(kw.value.value))
                    whole.add(str(kw.value.value))
    for p in params:
        annotation = _annotation_text(p)
        if annotation and annotation.rsplit(".", 1)[-1].split("[", 1)[0] in TAINT_ANNOTATIONS:
            tainted.add(p.arg)
            whole.add(p.arg)
    if len(positional) >= 2 and positional[1] in CONTEXT_PARAM_NAMES:
        tainted.add(positional[0])  # Lambda (and GCP background) signature: handler(event, context)
        whole.add(positional[0])
    if positional and (fn.name in ("handler", "lambda_handler") or fn.name.endswith("_handler")):
        tainted.add(positional[0])
        whole.add(positional[0])
    if fn.name.startswith("test_") or any("fixture" in _evidence(d) for d in fn.decorator_list):
        return tainted, whole  # pytest's `request` fixture is not an HTTP request
    for name in names:
        lowered = name.lower()
        if lowered in EVENT_PARAM_NAMES or lowered in REQUEST_PARAM_NAMES:
            tainted.add(name)
            if lowered in EVENT_PARAM_NAMES:
                whole.add(name)
    return tainted, whole


# ---------------------------------------------------------------- taint


_MAX_RECHECKS = 20  # a binding whose names keep turning tainted but which stays clean (a sanitizer call)


class Taint:
    """Which names of one scope carry request data (fixpoint over its bindings)."""

    def __init__(self, scope: Scope, info: ModuleInfo, sources: Iterable[str], inherited: Iterable[str] = ()):
        self.info = info
        self.names: set[str] = set(sources) | set(inherited)
        self.clients: set[str] = set(info.clients)
        self._nodes = scope.nodes
        self._memo: dict[int, bool] | None = None
        self._solve()
        self._memo = {}  # names are final: results can be cached per node

    def _bindings(self) -> Iterator[tuple[ast.expr, ast.expr]]:
        for node in self._nodes:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    yield target, node.value
            elif isinstance(node, ast.AnnAssign | ast.AugAssign) and node.value is not None:
                yield node.target, node.value
            elif isinstance(node, ast.For | ast.AsyncFor):
                yield node.target, node.iter
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                yield node.optional_vars, node.context_expr
            elif isinstance(node, ast.NamedExpr):
                yield node.target, node.value
            elif isinstance(node, ast.comprehension):
                yield node.target, node.iter
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in MUTATORS
                and isinstance(node.func.value, ast.Name)
            ):
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    yield node.func.value, arg  # a local list or dict filled with request data

    def _solve(self) -> None:
        bindings = list(self._bindings())
        for target, value in bindings:
            if isinstance(value, ast.Call) and qualname(value.func, self.info.aliases) in CLIENT_FACTORIES:
                self.clients.update(_target_names(target))
        # A worklist, not repeated passes over every binding: a crafted handler of reversed assignment chains
        # (a2 = a1; a1 = a0; a0 = event) made each of 20 passes re-check the whole file (38 s for 2 MB).
        # A binding is checked again only when a name it reads becomes tainted, at most _MAX_RECHECKS times.
        waiting: dict[str, list[int]] = {}
        checks = [0] * len(bindings)  # -1 once the binding is tainted
        queue = deque(range(len(bindings)))
        while queue:
            index = queue.popleft()
            if not 0 <= checks[index] < _MAX_RECHECKS:
                continue
            target, value = bindings[index]
            checks[index] += 1
            if self.expr(value):
                checks[index] = -1
                new = _target_names(target, containers=True) - self.names
                self.names |= new
                for name in new:
                    queue.extend(waiting.pop(name, ()))
            elif checks[index] == 1:
                for name in {n.id for n in ast.walk(value) if isinstance(n, ast.Name)} - self.names:
                    waiting.setdefault(name, []).append(index)

    def expr(self, node: ast.AST | None) -> bool:
        """Whether ``node`` carries request data."""
        if node is None:
            return False
        if self._memo is None:
            return self._expr(node)
        key = id(node)
        cached = self._memo.get(key)
        if cached is None:
            cached = self._memo[key] = self._expr(node)
        return cached

    def _expr(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.names or node.id in self.info.request_globals
        if isinstance(node, ast.Attribute):
            if node.attr == "current_event":  # Powertools event handler resolvers
                return True
            return self.expr(node.value)
        if isinstance(node, ast.Subscript):
            return self.expr(node.value)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.JoinedStr):
            return any(self.expr(v) for v in node.values)
        if isinstance(node, ast.FormattedValue):
            return self.expr(node.value)
        if isinstance(node, ast.BinOp):
            return self.expr(node.left) or self.expr(node.right)
        if isinstance(node, ast.BoolOp):
            return any(self.expr(v) for v in node.values)
        if isinstance(node, ast.IfExp):
            return self.expr(node.body) or self.expr(node.orelse)
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return any(self.expr(e) for e in node.elts)
        if isinstance(node, ast.Dict):
            return any(self.expr(v) for v in node.values) or any(self.expr(k) for k in node.keys if k is not None)
        if isinstance(node, ast.Starred | ast.Await | ast.NamedExpr):
            return self.expr(node.value)
        if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp):
            return self.expr(node.elt) or any(self.expr(g.iter) for g in node.generators)
        if isinstance(node, ast.DictComp):
            return self.expr(node.key) or self.expr(node.value) or any(self.expr(g.iter) for g in node.generators)
        return False  # constants, comparisons, lambdas, unary (numeric) operations

    def _call(self, node: ast.Call) -> bool:
        qual = qualname(node.func, self.info.aliases) or ""
        if qual in SANITIZERS or qual.startswith(SANITIZER_PREFIXES):
            return False
        if isinstance(node.func, ast.Attribute):
            if node.func.attr in BOOL_METHODS or node.func.attr.startswith("is"):
                return False
            if self.expr(node.func.value):
                return True  # event.get("body"), req.get_json(), body.decode()
        return any(self.expr(a) for a in node.args) or any(self.expr(k.value) for k in node.keywords)


def _target_names(target: ast.expr, *, containers: bool = False) -> set[str]:
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, ast.Tuple | ast.List):
        out: set[str] = set()
        for elt in target.elts:
            out |= _target_names(elt, containers=containers)
        return out
    if isinstance(target, ast.Starred):
        return _target_names(target.value, containers=containers)
    if containers and isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
        return {target.value.id}  # d[k] = tainted: the whole dict is tainted from then on
    return set()


# ---------------------------------------------------------------- the checker


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _is_const(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def _arg(call: ast.Call, index: int, *keywords: str) -> ast.expr | None:
    if len(call.args) > index and not isinstance(call.args[index], ast.Starred):
        return call.args[index]
    for name in keywords:
        value = _kw(call, name)
        if value is not None:
            return value
    return None


def _fixed_host(url: ast.expr) -> bool:
    """The URL's scheme and host are literal; only its path or query vary."""
    first: ast.expr | None = url
    while isinstance(first, ast.BinOp):
        first = first.left
    if isinstance(first, ast.JoinedStr):
        first = first.values[0] if first.values else None
    if isinstance(first, ast.Call) and isinstance(first.func, ast.Attribute) and first.func.attr == "format":
        first = first.func.value
    return isinstance(first, ast.Constant) and isinstance(first.value, str) and bool(_FIXED_HOST.match(first.value))


def _mentions_tmp(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.startswith(("/tmp", "tmp/"))  # noqa: S108
        for n in ast.walk(node)
    )


class Checker:
    def __init__(self, tree: ast.Module, path: str):
        self.tree = tree
        self.path = path
        self.scopes = build_scopes(tree)
        self.info = _module_info(tree, all_nodes(self.scopes))
        self.hits: list[Hit] = []
        self._seen: set[tuple[str, int, int]] = set()

    def hit(
        self, rule: Rule, node: ast.AST, message: str, *, severity: Severity | None = None, files: tuple[str, ...] = ()
    ) -> None:
        line, col = getattr(node, "lineno", 0), getattr(node, "col_offset", 0) + 1
        if (rule.id, line, col) in self._seen:
            return
        self._seen.add((rule.id, line, col))
        self.hits.append(Hit(rule, line, col, message, _evidence(node), severity, files))

    def _file_names(self, node: ast.Call) -> tuple[str, ...]:
        """Literal file names in a loader call's path argument, through module-level constants (MODEL_PATH)."""
        out: list[str] = []
        todo: list[tuple[ast.AST, int]] = [(a, 0) for a in node.args[:1]]
        todo += [(k.value, 0) for k in node.keywords if k.arg in PATH_KEYWORDS or k.arg == "f"]
        while todo:
            expr, depth = todo.pop()
            for sub in ast.walk(expr):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    base = sub.value.rstrip("/").rsplit("/", 1)[-1]
                    if "." in base.strip(".") and len(base) < 256 and " " not in base:
                        out.append(base)
                elif isinstance(sub, ast.Name) and sub.id in self.info.values and depth < 3:
                    todo.append((self.info.values[sub.id], depth + 1))
        return tuple(dict.fromkeys(out))

    def run(self) -> list[Hit]:
        module_taint = Taint(self.scopes, self.info, ())
        self._check_scope(self.scopes, module_taint, set(), set(), None)
        self._propagate_calls()
        for child in self.scopes.children:
            self._function(child, set())
        return self.hits

    def _sources(self, scope: Scope) -> tuple[set[str], set[str]]:
        fn = scope.node
        assert isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        sources, whole = entry_sources(fn, self.info)
        extra, extra_whole = self._passed.get(id(scope), (set(), set()))
        return sources | extra, whole | extra_whole

    def _propagate_calls(self) -> None:
        """One step past intra-procedural: a module-level function called with request data gets it as parameters.

        ``handler`` passing ``event["body"]`` to ``decode(blob)`` taints ``blob``; repeated a few times, so that
        chains of helpers (handler -> parse -> decode) are followed. Methods, callbacks and calls through
        variables are not resolved.
        """
        module_level = {id(stmt) for stmt in self.scopes.node.body}
        functions = {
            c.node.name: c
            for c in self.scopes.children
            if isinstance(c.node, ast.FunctionDef | ast.AsyncFunctionDef) and id(c.node) in module_level
        }
        self._passed: dict[int, tuple[set[str], set[str]]] = {}
        if not functions:
            return
        scopes: list[Scope] = []
        todo = list(self.scopes.children)
        while todo:
            scope = todo.pop()
            scopes.append(scope)
            todo.extend(scope.children)
        for _ in range(4):
            changed = False
            for scope in scopes:
                sources, whole = self._sources(scope)
                taint = Taint(scope, self.info, sources)
                for node in scope.nodes:
                    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in functions:
                        changed |= self._pass_arguments(node, functions[node.func.id], taint, whole)
            if not changed:
                break

    def _pass_arguments(self, call: ast.Call, callee: Scope, taint: Taint, whole: set[str]) -> bool:
        fn = callee.node
        assert isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        positional = [p.arg for p in [*fn.args.posonlyargs, *fn.args.args]]
        named = {p.arg for p in _params(fn)}
        passed: list[tuple[str, ast.expr]] = []
        for index, arg in enumerate(call.args):
            if isinstance(arg, ast.Starred) or index >= len(positional):
                break
            passed.append((positional[index], arg))
        passed += [(kw.arg, kw.value) for kw in call.keywords if kw.arg in named]
        extra, extra_whole = self._passed.setdefault(id(callee), (set(), set()))
        before = len(extra) + len(extra_whole)
        for param, value in passed:
            if taint.expr(value):
                extra.add(param)
                if isinstance(value, ast.Name) and value.id in whole:
                    extra_whole.add(param)
        return len(extra) + len(extra_whole) != before

    def _function(self, scope: Scope, inherited: set[str]) -> None:
        fn = scope.node
        assert isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        sources, whole = self._sources(scope)
        taint = Taint(scope, self.info, sources, inherited)
        local = self._local_names(scope, fn)
        self._check_scope(scope, taint, whole, local, fn)
        for child in scope.children:
            self._function(child, taint.names)

    def _local_names(self, scope: Scope, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
        """Names bound in ``fn`` without a ``global`` declaration: they shadow module globals."""
        declared: set[str] = set()
        bound: set[str] = {p.arg for p in _params(fn)}
        for node in scope.nodes:
            if isinstance(node, ast.Global):
                declared.update(node.names)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                bound.add(node.id)
        return bound - declared

    def _check_scope(
        self,
        scope: Scope,
        taint: Taint,
        whole: set[str],
        local: set[str],
        fn: ast.FunctionDef | ast.AsyncFunctionDef | None,
    ) -> None:
        global_decl: set[str] = set()
        handles: set[str] = set()  # names of files opened for writing at a fixed /tmp path
        for node in scope.nodes:
            if isinstance(node, ast.Global):
                global_decl.update(node.names)
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                if self._fixed_tmp_open(node.context_expr):
                    handles |= _target_names(node.optional_vars)
            elif isinstance(node, ast.Assign) and self._fixed_tmp_open(node.value):
                for target in node.targets:
                    handles |= _target_names(target)
        for node in scope.nodes:
            if isinstance(node, ast.Call):
                self._call(node, taint, whole)
                if fn is not None:
                    self._cache_mutation_call(node, taint, local)
                    self._tmp_residue(node, taint, handles)
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "trust_remote_code" and _is_const(value, True):
                        self.hit(R.TRUST_REMOTE_CODE, node, "trust_remote_code=True passed in a keyword dict")
            elif fn is not None and isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
                self._cache_assignment(node, taint, local, global_decl)

    # -- request data left in /tmp under a fixed name
    def _fixed_tmp_path(self, node: ast.expr) -> bool:
        """A path built only from literals (through os.path.join, Path, /) that lies under /tmp."""
        under_tmp = False
        for sub in ast.walk(node):
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and sub.value.startswith("/tmp"):  # noqa: S108
                under_tmp = True
            elif isinstance(sub, ast.Name | ast.FormattedValue | ast.Subscript | ast.Attribute):
                if isinstance(sub, ast.Name | ast.Attribute) and self._is_path_builder(sub, node):
                    continue
                return False  # a variable part: a unique name (uuid, request id) or a request path (SAS-CODE-008)
        return under_tmp

    def _is_path_builder(self, sub: ast.AST, root: ast.expr) -> bool:
        return any(
            isinstance(call, ast.Call)
            and (call.func is sub or (isinstance(call.func, ast.Attribute) and call.func.value is sub))
            and (qualname(call.func, self.info.aliases) or "") in ("os.path.join", "pathlib.Path", "Path", "str")
            for call in ast.walk(root)
        )

    def _fixed_tmp_open(self, node: ast.expr) -> bool:
        if not isinstance(node, ast.Call) or (qualname(node.func, self.info.aliases) or "") not in ("open", "io.open"):
            return False
        mode = _arg(node, 1, "mode")
        writes = isinstance(mode, ast.Constant) and isinstance(mode.value, str) and any(c in mode.value for c in "wax")
        path = _arg(node, 0, "file")
        return writes and path is not None and self._fixed_tmp_path(path)

    def _tmp_residue(self, node: ast.Call, taint: Taint, handles: set[str]) -> None:
        if not self.info.mentions_tmp:
            return
        args = [*node.args, *(k.value for k in node.keywords)]
        receiver = node.func.value if isinstance(node.func, ast.Attribute) else None
        to_handle = (isinstance(receiver, ast.Name) and receiver.id in handles) or any(
            isinstance(a, ast.Name) and a.id in handles for a in args
        )
        to_path = (
            isinstance(node.func, ast.Attribute)
            and node.func.attr in ("write_text", "write_bytes")
            and receiver is not None
            and self._fixed_tmp_path(receiver)
        ) or any(self._fixed_tmp_path(a) for a in args if isinstance(a, ast.Constant | ast.Call | ast.BinOp))
        if not (to_handle or to_path) or self._fixed_tmp_open(node):
            return
        data = [a for a in args if not (isinstance(a, ast.Name) and a.id in handles)]
        if any(taint.expr(a) for a in data):
            self.hit(
                R.TMP_RESIDUE,
                node,
                "request data is written to a fixed /tmp path; the file outlives the invocation and the next caller "
                "of this warm instance can read or be served it",
            )

    # -- module state filled from request data
    def _cache_mutation_call(self, node: ast.Call, taint: Taint, local: set[str]) -> None:
        func = node.func
        if not (isinstance(func, ast.Attribute) and func.attr in MUTATORS and isinstance(func.value, ast.Name)):
            return
        name = func.value.id
        filled = any(taint.expr(a) for a in node.args) or any(taint.expr(k.value) for k in node.keywords)
        if name in self.info.mutable_globals and name not in local and filled:
            self.hit(
                R.GLOBAL_CACHE,
                node,
                f"module-level {name} is filled with request data ({func.attr}); it survives into the next "
                "invocation of this warm instance",
            )

    def _cache_assignment(
        self, node: ast.Assign | ast.AugAssign | ast.AnnAssign, taint: Taint, local: set[str], global_decl: set[str]
    ) -> None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        value = node.value
        for target in targets:
            if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                name = target.value.id
                filled = taint.expr(value) or taint.expr(target.slice)
                if name in self.info.mutable_globals and name not in local and filled:
                    self.hit(
                        R.GLOBAL_CACHE,
                        node,
                        f"module-level {name} is filled with request data; it survives into the next "
                        "invocation of this warm instance",
                    )
            elif isinstance(target, ast.Name) and target.id in global_decl and taint.expr(value):
                self.hit(
                    R.GLOBAL_CACHE,
                    node,
                    f"global {target.id} is set from request data; it survives into the next invocation",
                )

    # -- calls
    def _call(self, node: ast.Call, taint: Taint, whole: set[str]) -> None:
        qual = qualname(node.func, self.info.aliases) or ""
        method = node.func.attr if isinstance(node.func, ast.Attribute) else ""
        if _is_const(_kw(node, "trust_remote_code"), True):
            self.hit(
                R.TRUST_REMOTE_CODE, node, f"{qual or method}(trust_remote_code=True) runs code from the model repo"
            )
        if _is_const(_kw(node, "safe_mode"), False) or qual.endswith("enable_unsafe_deserialization"):
            self.hit(R.KERAS_UNSAFE, node, f"{qual or method} disables Keras safe mode: Lambda layers run on load")
        if qual in DESERIALIZERS:
            self._deserialize(node, qual, taint)
        elif qual in ALWAYS_SHELL or qual in SUBPROCESS or qual.startswith(EXEC_PREFIXES):
            self._shell(node, qual, taint)
        elif qual in DYNAMIC_CODE:
            self._dynamic_code(node, qual, taint)
        self._fetch(node, qual, method, taint)
        self._path(node, qual, method, taint)
        self._log(node, qual, method, taint, whole)

    def _deserialize(self, node: ast.Call, qual: str, taint: Taint) -> None:
        condition = DESERIALIZERS[qual]
        if condition == "allow_pickle":
            flag = _kw(node, "allow_pickle")
            if flag is None or _is_const(flag, False):
                return
        elif condition == "weights_only":
            if _is_const(_kw(node, "weights_only"), True):
                return
        elif condition == "loader":
            loader = _arg(node, 1, "Loader")
            if (
                loader is not None
                and (qualname(loader, self.info.aliases) or "").rsplit(".", 1)[-1] in SAFE_YAML_LOADERS
            ):
                return
        note = " (torch < 2.6 defaults to weights_only=False)" if qual == "torch.load" else ""
        if any(taint.expr(a) for a in node.args) or any(
            taint.expr(k.value) for k in node.keywords if k.arg not in ("Loader", "allow_pickle", "weights_only")
        ):
            self.hit(R.DESERIALIZE_REQUEST, node, f"{qual} is given request data: a crafted payload runs code{note}")
        else:
            self.hit(
                R.DESERIALIZE_FILE,
                node,
                f"{qual} can run code from what it loads{note}; make sure the file is scanned (sas scan checks model "
                f"files) and pinned (sas manifest)",
                files=self._file_names(node),
            )

    def _shell(self, node: ast.Call, qual: str, taint: Taint) -> None:
        command = _arg(node, 0, "args", "command", "cmd")
        shell = qual in ALWAYS_SHELL or not (_kw(node, "shell") is None or _is_const(_kw(node, "shell"), False))
        tainted = taint.expr(command) or (qual.startswith(EXEC_PREFIXES) and any(taint.expr(a) for a in node.args))
        if tainted and shell:
            self.hit(R.SHELL_REQUEST, node, f"{qual} runs a shell command built from request data (command injection)")
        elif tainted:
            self.hit(
                R.SHELL_REQUEST,
                node,
                f"{qual} gets request data in its argument list (argument injection)",
                severity=Severity.HIGH,
            )
        elif shell and command is not None and not isinstance(command, ast.Constant):
            self.hit(R.SHELL_USE, node, f"{qual} runs a shell with a command that is not a constant")

    def _dynamic_code(self, node: ast.Call, qual: str, taint: Taint) -> None:
        code = _arg(node, 0, "source", "object")
        if code is None or isinstance(code, ast.Constant):
            return
        if taint.expr(code):
            self.hit(R.EVAL_REQUEST, node, f"{qual} evaluates request data as code")
        else:
            self.hit(R.EVAL_USE, node, f"{qual} evaluates a string that is not a literal")

    def _fetch(self, node: ast.Call, qual: str, method: str, taint: Taint) -> None:
        index: int | None = FETCHERS.get(qual)
        if index is None and method in CLIENT_METHODS and isinstance(node.func, ast.Attribute):
            receiver = node.func.value
            receiver_qual = qualname(receiver, self.info.aliases) or ""
            is_client = (isinstance(receiver, ast.Name) and receiver.id in taint.clients) or (
                receiver_qual.endswith("()") and receiver_qual[:-2] in CLIENT_FACTORIES
            )
            if is_client:
                index = CLIENT_METHODS[method]
        if index is None:
            return
        url = _arg(node, index, "url")
        if url is not None and taint.expr(url) and not _fixed_host(url):
            self.hit(R.SSRF, node, f"{qual or method} fetches a URL taken from the request")

    def _path(self, node: ast.Call, qual: str, method: str, taint: Taint) -> None:
        candidates: list[ast.expr] = []
        if qual in PATH_CALLS:
            candidates = [node.args[i] for i in PATH_CALLS[qual] if i < len(node.args)]
            candidates += [k.value for k in node.keywords if k.arg in PATH_KEYWORDS]
        elif isinstance(node.func, ast.Attribute) and qual not in DESERIALIZERS:
            if method in PATH_METHODS and taint.expr(node.func.value) and not self._request_object(node.func.value):
                candidates = [node.func.value]
            elif method == "save" and node.args:
                candidates = [node.args[0]]  # uploaded_file.save(path), model.save(path)
        for candidate in candidates:
            if taint.expr(candidate):
                where = " under /tmp" if _mentions_tmp(candidate) else ""
                self.hit(R.PATH_TRAVERSAL, node, f"{qual or method} uses a file path{where} built from request data")
                return

    def _request_object(self, node: ast.expr) -> bool:
        return isinstance(node, ast.Name) and (
            node.id.lower() in REQUEST_PARAM_NAMES or node.id in self.info.request_globals
        )

    def _log(self, node: ast.Call, qual: str, method: str, taint: Taint, whole: set[str]) -> None:
        if _is_const(_kw(node, "log_event"), True):
            self.hit(R.LOG_EVENT, node, "log_event=True writes every whole event to the logs")
            return
        is_log = qual in LOG_FUNCTIONS or (
            method in LOG_METHODS
            and isinstance(node.func, ast.Attribute)
            and "log" in (qualname(node.func.value, self.info.aliases) or "").lower()
        )
        if not is_log:
            return
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            if self._whole_event(arg, taint, whole):
                self.hit(R.LOG_EVENT, node, f"{qual or method} writes the whole event or request body to the logs")
                return

    def _whole_event(self, node: ast.AST, taint: Taint, whole: set[str]) -> bool:
        if isinstance(node, ast.Name):
            return node.id in whole
        if isinstance(node, ast.Subscript):
            key = node.slice
            return (
                isinstance(key, ast.Constant)
                and key.value in WHOLE_BODY_KEYS
                and isinstance(node.value, ast.Name)
                and node.value.id in whole
            )
        if isinstance(node, ast.Attribute):
            return node.attr in ("body", "json", "data", "headers") and self._request_like(node.value, whole)
        if isinstance(node, ast.Call):
            qual = qualname(node.func, self.info.aliases) or ""
            if qual in ("json.dumps", "str", "repr", "pprint.pformat"):
                return any(self._whole_event(a, taint, whole) for a in node.args)
            if isinstance(node.func, ast.Attribute):
                if node.func.attr in WHOLE_BODY_METHODS and self._request_like(node.func.value, whole):
                    return True
                if (
                    node.func.attr == "get"
                    and node.args
                    and self._whole_event(ast.Subscript(value=node.func.value, slice=node.args[0]), taint, whole)
                ):
                    return True
            return False
        if isinstance(node, ast.JoinedStr):
            return any(
                isinstance(v, ast.FormattedValue) and self._whole_event(v.value, taint, whole) for v in node.values
            )
        if isinstance(node, ast.BinOp):
            return self._whole_event(node.left, taint, whole) or self._whole_event(node.right, taint, whole)
        return False

    def _request_like(self, node: ast.expr, whole: set[str]) -> bool:
        return isinstance(node, ast.Name) and (node.id in whole or self._request_object(node))


def check_tree(tree: ast.Module, path: str) -> list[Hit]:
    checker = Checker(tree, path)
    hits = checker.run()
    for s in secrets.named_hits(all_nodes(checker.scopes)):
        if s.named:
            hits.append(Hit(R.SECRET_ASSIGNMENT, s.line, s.column, f"{s.label} looks like a real secret", s.redacted))
        else:
            hits.append(Hit(R.SECRET_TOKEN, s.line, s.column, f"{s.label} in the source", f"{s.label}: {s.redacted}"))
    return hits


def check_text(text: str) -> list[Hit]:
    return [
        Hit(R.SECRET_TOKEN, s.line, s.column, f"{s.label} in the source", f"{s.label}: {s.redacted}")
        for s in secrets.token_hits(text)
    ]
