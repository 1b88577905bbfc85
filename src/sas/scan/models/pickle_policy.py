"""Which pickle globals are ordinary, which run code, and which we cannot vouch for.

The policy is data, kept apart from the opcode analyzer so that it can be reviewed on its own. A global is
judged on its full dotted path (``module + "." + qualname``): protocol 4 resolves dotted qualnames by
attribute traversal, so ``("torch", "hub.load")`` and ``("torch.hub", "load")`` are the same thing and must
get the same verdict.

Order of judgement (first match wins):

1. the user's deny list (``[scan.pickle] deny``): dangerous;
2. the built-in exact allow list, then the user's exact allow entries: allowed;
3. a ``__dunder__`` component anywhere in the qualname (``object.__subclasses__``, ``f.__globals__``):
   dangerous, because dunder traversal is how a pickle escapes an allowed class;
4. the built-in code-running deny list (modules and names, with the reason each one runs code);
5. loader/executor-shaped function names (``load``, ``loads``, ``runstring``, ``exec_*``...) even in
   otherwise trusted namespaces: dangerous, so that a re-export we did not list is still caught;
6. the user's ``module.*`` allow patterns;
7. trusted namespaces (see below): allowed;
8. everything else: unknown (at least a medium finding; the user can allow it in config).

Trusted namespaces, and why not ``sklearn.*`` blindly: scikit-learn, SciPy, NumPy, torch.nn/optim, XGBoost,
LightGBM and Keras artifacts reference hundreds of classes, and the list changes every release. A class
constructor in those libraries stores parameters or rebuilds arrays; none runs code. So a *class* (a
CamelCase last component, no dotted qualname) under a trusted prefix is allowed, while *functions* are
allowed only when listed explicitly (gathered by pickling every estimator of ``sklearn.utils.all_estimators``
at protocols 2, 4 and 5 and reviewing the globals they use) or under a few math-only namespaces
(``numpy`` top level, ``torch.nn.functional``). The few places in those libraries that do run code or load
nested payloads (``sklearn.utils._testing``, ``numpy.testing``, ``numpy.load``, ``torch.hub``,
``torch.fx.graph_module``, ``scipy.io``...) are on the deny list, which is checked first.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache


class Level(IntEnum):
    ALLOWED = 0
    UNKNOWN = 1
    DANGEROUS = 2


@dataclass(frozen=True, slots=True)
class Verdict:
    level: Level
    reason: str = ""
    stdlib: bool = False  # an unknown global from the standard library (more likely a gadget than a model class)


# --- code-running globals: "module.*" (the module and everything below it) or an exact dotted path -------------
# Each entry says, in a few words, how it runs code or reaches what does.
DENY: dict[str, str] = {
    # processes and the OS
    "os.*": "operating-system calls (system, popen, exec*, spawn*, file writes)",
    "posix.*": "operating-system calls (os under another name)",
    "nt.*": "operating-system calls (os under another name on Windows)",
    "posixpath.*": "os.path under another name",
    "ntpath.*": "os.path under another name",
    "subprocess.*": "runs processes",
    "_posixsubprocess.*": "runs processes (fork_exec)",
    "commands.*": "runs shell commands (Python 2)",
    "popen2.*": "runs processes (Python 2)",
    "pty.*": "spawns processes with a terminal",
    "platform.*": "runs helper commands (_syscmd_*)",
    "multiprocessing.*": "starts processes and unpickles their data",
    "_multiprocessing.*": "process primitives",
    "concurrent.futures.*": "starts processes and threads",
    "asyncio.*": "event loop: subprocesses, sockets (asyncio.subprocess, create_subprocess_shell)",
    "signal.*": "installs signal handlers",
    "_thread.*": "starts threads running arbitrary callables",
    "threading.*": "starts threads running arbitrary callables",
    "atexit.*": "registers callables to run at exit",
    "sys.*": "interpreter internals (modules, hooks, exit)",
    "gc.*": "reaches every live object",
    "_winapi.*": "Windows process API",
    "msvcrt.*": "Windows C runtime",
    "winreg.*": "Windows registry",
    # dynamic code
    "builtins.eval": "evaluates Python source",
    "builtins.exec": "executes Python source",
    "builtins.execfile": "executes a Python file",
    "builtins.compile": "compiles Python source",
    "builtins.__import__": "imports any module",
    "builtins.getattr": "reaches any attribute (getattr(os, 'system'))",
    "builtins.setattr": "overwrites attributes of modules and classes",
    "builtins.delattr": "removes attributes of modules and classes",
    "builtins.globals": "reaches the module namespace",
    "builtins.locals": "reaches the frame namespace",
    "builtins.vars": "reaches object namespaces",
    "builtins.open": "opens files",
    "builtins.input": "reads from the terminal",
    "builtins.breakpoint": "starts a debugger (arbitrary code)",
    "builtins.help": "starts pydoc, which may run a pager command",
    "builtins.exit": "exits the interpreter",
    "builtins.quit": "exits the interpreter",
    "builtins.reload": "re-executes a module",
    "builtins.apply": "calls any callable (Python 2)",
    "builtins.memoryview": "raw memory access",
    "types.*": "builds functions, code objects, modules and methods (types.FunctionType, CodeType)",
    "marshal.*": "loads code objects",
    "runpy.*": "runs modules and scripts",
    "timeit.*": "executes statements given as strings",
    "pdb.*": "debugger: runs statements given as strings",
    "bdb.*": "debugger: runs statements given as strings",
    "code.*": "interactive interpreter: runs source given as strings",
    "codeop.*": "compiles Python source",
    "trace.*": "runs statements given as strings",
    "profile.*": "runs statements given as strings",
    "cProfile.*": "runs statements given as strings",
    "doctest.*": "executes docstring examples",
    "pydoc.*": "locates any object by name and runs pagers",
    "pkgutil.*": "resolves any name to an object (resolve_name) and imports modules",
    "importlib.*": "imports any module",
    "imp.*": "imports any module",
    "zipimport.*": "imports modules from archives",
    "inspect.*": "reaches frames and source",
    "ctypes.*": "calls native code",
    "_ctypes.*": "calls native code",
    "cffi.*": "calls native code",
    "site.*": "runs .pth start-up hooks",
    "sysconfig.*": "interpreter configuration",
    "ensurepip.*": "installs packages",
    "pip.*": "installs packages (runs setup code)",
    "setuptools.*": "builds and installs packages",
    "distutils.*": "builds packages, spawns compilers",
    "pkg_resources.*": "loads entry points",
    "venv.*": "creates environments, runs pip",
    "logging.config.*": "listen() and dictConfig() resolve and call any factory",
    "operator.attrgetter": "reaches any attribute (attrgetter('system'))",
    "operator.methodcaller": "calls any method by name",
    "operator.itemgetter": "reaches items of globals and __dict__",
    "operator.call": "calls any callable",
    "_operator.attrgetter": "reaches any attribute",
    "_operator.methodcaller": "calls any method by name",
    "_operator.itemgetter": "reaches items of globals and __dict__",
    "_operator.call": "calls any callable",
    "functools.partial": "binds arguments to any callable for a later call",
    "functools.partialmethod": "binds arguments to any method",
    "functools.reduce": "calls any callable repeatedly",
    "_functools.*": "functools internals (partial, reduce)",
    "functools.singledispatch": "wraps any callable",
    "functools.wraps": "wraps any callable",
    "functools.update_wrapper": "wraps any callable",
    "copyreg.add_extension": "rewires the extension registry (EXT opcodes)",
    # nested deserialisation: the outer pickle hides the inner payload from scanners
    "pickle.*": "nested unpickling (pickle.loads of an inner payload)",
    "_pickle.*": "nested unpickling",
    "cPickle.*": "nested unpickling (Python 2)",
    "pickletools.*": "pickle internals",
    "shelve.*": "pickle-backed databases",
    "dill.*": "nested deserialisation that rebuilds functions and code",
    "cloudpickle.*": "nested deserialisation that rebuilds functions and code",
    "joblib.load": "nested joblib/pickle load",
    "joblib.numpy_pickle.load": "nested joblib/pickle load",
    "joblib.numpy_pickle.loads": "nested joblib/pickle load",
    "joblib.numpy_pickle_compat.*": "nested legacy joblib load",
    "joblib.parallel.*": "runs callables in worker processes",
    "joblib.Parallel": "runs callables in worker processes",
    "joblib.memory.*": "caches and reloads pickles from disk",
    "yaml.*": "YAML loaders construct arbitrary Python objects",
    "jsonpickle.*": "rebuilds arbitrary Python objects",
    # files and network
    "io.*": "opens files",
    "_io.*": "opens files",
    "codecs.open": "opens files",
    "tempfile.*": "creates files",
    "shutil.*": "copies, moves and deletes files",
    "glob.*": "lists files",
    "fileinput.*": "opens files",
    "sqlite3.*": "opens databases, loads extensions",
    "dbm.*": "opens databases",
    "socket.*": "opens network connections",
    "_socket.*": "opens network connections",
    "socketserver.*": "serves network connections",
    "ssl.*": "opens network connections",
    "select.*": "network multiplexing",
    "selectors.*": "network multiplexing",
    "http.*": "HTTP clients and servers",
    "urllib.*": "fetches URLs",
    "urllib2.*": "fetches URLs (Python 2)",
    "ftplib.*": "FTP client",
    "smtplib.*": "sends mail",
    "telnetlib.*": "telnet client",
    "xmlrpc.*": "remote procedure calls",
    "webbrowser.*": "opens URLs with the system browser (runs a command)",
    "requests.*": "fetches URLs",
    "httpx.*": "fetches URLs",
    "aiohttp.*": "fetches URLs",
    "boto3.*": "cloud API calls with the function's credentials",
    "botocore.*": "cloud API calls with the function's credentials",
    # code-running corners of the ML libraries
    "numpy.testing.*": "test helpers that run code strings and processes (runstring, assert_no_warnings...)",
    "numpy._pytesttester.*": "runs pytest",
    "numpy.load": "loads pickled object arrays",
    "numpy.save": "writes files",
    "numpy.savez": "writes files",
    "numpy.savez_compressed": "writes files",
    "numpy.savetxt": "writes files",
    "numpy.fromfile": "reads files",
    "numpy.loadtxt": "reads files, calls converters",
    "numpy.genfromtxt": "reads files, calls converters",
    "numpy.fromregex": "reads files",
    "numpy.DataSource": "fetches URLs",
    "numpy.lib.*": "file I/O helpers (npyio, format.read_array with pickles, DataSource)",
    "numpy.f2py.*": "compiles and imports extension modules",
    "numpy.distutils.*": "builds packages, spawns compilers",
    "numpy.ctypeslib.*": "loads native libraries",
    "numpy.show_config": "prints configuration",
    "numpy.core.records.fromfile": "reads files",
    "numpy._core.records.fromfile": "reads files",
    "numpy.rec.fromfile": "reads files",
    "scipy.io.*": "reads and writes files (loadmat, mmread...)",
    "scipy.datasets.*": "downloads data",
    "scipy.misc.*": "loads bundled pickles",
    "scipy.weave.*": "compiles and runs C code",
    "scipy._lib._testutils.*": "runs pytest",
    "scipy._lib._ccallback.*": "wraps native function pointers",
    "scipy.LowLevelCallable": "wraps native function pointers",
    "sklearn.utils._testing.*": "test helpers that run Python scripts (assert_run_python_script_without_output)",
    "sklearn.utils.estimator_checks.*": "runs estimator test suites",
    "sklearn.utils._joblib.*": "re-exports joblib.load",
    "sklearn.utils.parallel.*": "runs callables in worker processes",
    "sklearn.utils._show_versions.*": "inspects the environment",
    "sklearn.datasets.*": "downloads and caches data (fetch_*), loads files",
    "sklearn.externals.*": "vendored helpers (joblib in old releases)",
    "sklearn.conftest.*": "test configuration",
    "torch.hub.*": "downloads and runs hubconf.py from a repository",
    "torch.load": "nested torch.load (pickle)",
    "torch.serialization.load": "nested torch.load (pickle)",
    "torch.serialization._load": "nested torch.load (pickle)",
    "torch.serialization._legacy_load": "nested torch.load (pickle)",
    "torch.jit.*": "loads and compiles TorchScript",
    "torch.package.*": "imports code shipped inside a package archive",
    "torch.fx.graph_module._forward_from_src": "execs generated source",
    "torch.fx.graph_module.reduce_graph_module": "execs the pickled import block and forward source",
    "torch.fx.graph_module.reduce_package_graph_module": "execs pickled source",
    "torch.fx.graph_module.reduce_deploy_graph_module": "execs pickled source",
    "torch.fx.graph_module._exec_with_source": "execs source",
    "torch.utils.cpp_extension.*": "compiles and loads native extensions",
    "torch.utils.collect_env.*": "runs commands",
    "torch.utils.benchmark.*": "timeit: executes statements given as strings",
    "torch.utils.bottleneck.*": "runs scripts under a profiler",
    "torch.utils.data.datapipes.*": "datapipes wrap arbitrary callables and files",
    "torch.multiprocessing.*": "starts processes",
    "torch.distributed.*": "RPC and stores: network and remote calls",
    "torch.testing.*": "test helpers that run processes",
    "torch._dynamo.*": "compiles and runs code",
    "torch._inductor.*": "compiles and runs native code",
    "torch.compile": "compiles and runs code",
    "torch.ops.*": "loads native operator libraries",
    "torch._ops.*": "loads native operator libraries",
    "torch.classes.*": "loads native classes",
    "torch.library.*": "registers native operators",
    "torch._C._jit_*": "TorchScript internals",
    "torch._utils._rebuild_device_tensor_from_cpu_tensor": "",
    "keras.saving.*": "loads models that may hold Lambda layers",
    "keras.src.saving.*": "loads models that may hold Lambda layers",
    "keras.src.models.model.Model._unpickle_model": "nested .keras load (Lambda layers run code)",
    "keras.layers.Lambda": "wraps arbitrary Python code",
    "keras.src.layers.core.lambda_layer.Lambda": "wraps arbitrary Python code",
    "keras.src.utils.python_utils.func_load": "rebuilds functions from marshalled code",
    "keras.utils.python_utils.func_load": "rebuilds functions from marshalled code",
    "keras.models.load_model": "loads models that may hold Lambda layers",
    "keras.utils.get_file": "downloads files",
    "tensorflow.*": "TensorFlow ops read and write files and run py_func",
}

# Prefix patterns the deny list above carries for Python 2 spellings and loader-shaped names in any module.
_LOADER_NAME = re.compile(
    r"^(load|loads|load_[a-z0-9_]*|[a-z0-9_]*_load|unsafe_load|full_load|exec[a-z0-9_]*|eval[a-z0-9_]*|"
    r"system|popen[a-z0-9_]*|spawn[a-z0-9_]*|run_?string|run_?path|run_?module|runcode|runsource|"
    r"call_?subprocess|check_output|check_call|getoutput|getstatusoutput|import_module|__import__|"
    r"urlopen|urlretrieve|get_file|fetch_[a-z0-9_]*|compile_?source|_?unpickle[a-z0-9_]*)$"
)

# --- exact allow list: what ordinary artifacts reference, checked against real pickles -------------------------
_NUMPY_SCALARS = [
    "bool_",
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "intc",
    "uintc",
    "intp",
    "uintp",
    "int_",
    "uint",
    "longlong",
    "ulonglong",
    "short",
    "ushort",
    "byte",
    "ubyte",
    "float16",
    "float32",
    "float64",
    "float_",
    "half",
    "single",
    "double",
    "longdouble",
    "complex64",
    "complex128",
    "complex_",
    "csingle",
    "cdouble",
    "clongdouble",
    "str_",
    "bytes_",
    "unicode_",
    "string_",
    "object_",
    "void",
    "datetime64",
    "timedelta64",
    "generic",
    "number",
    "integer",
    "floating",
    "complexfloating",
    "matrix",
    "recarray",
    "record",
    "memmap",
    "ndarray",
    "dtype",
    "chararray",
]

_TORCH_STORAGES = [
    "Float",
    "Double",
    "Half",
    "BFloat16",
    "Long",
    "Int",
    "Short",
    "Char",
    "Byte",
    "Bool",
    "ComplexFloat",
    "ComplexDouble",
    "QInt8",
    "QUInt8",
    "QInt32",
    "QUInt4x2",
    "QUInt2x4",
    "Untyped",
    "Typed",
]

ALLOW: frozenset[str] = frozenset(
    [
        # builtins that only build plain values
        *(
            f"builtins.{n}"
            for n in [
                "set",
                "frozenset",
                "list",
                "dict",
                "tuple",
                "bytearray",
                "bytes",
                "str",
                "int",
                "float",
                "complex",
                "bool",
                "slice",
                "range",
                "object",
                "Ellipsis",
                "NotImplemented",
                "NoneType",
                "print",
            ]
        ),
        *(
            f"builtins.{n}"
            for n in [
                "Exception",
                "ValueError",
                "KeyError",
                "TypeError",
                "IndexError",
                "RuntimeError",
                "AttributeError",
                "ArithmeticError",
                "ZeroDivisionError",
                "OverflowError",
                "NotImplementedError",
                "UserWarning",
                "Warning",
                "DeprecationWarning",
            ]
        ),
        "_codecs.encode",  # protocol 2 writes bytes as _codecs.encode(text, "latin1")
        "copyreg._reconstructor",
        "copyreg.__newobj__",
        "copyreg.__newobj_ex__",
        "copy_reg._reconstructor",
        "collections.OrderedDict",
        "collections.defaultdict",
        "collections.deque",
        "collections.Counter",
        "collections.ChainMap",
        "collections.UserDict",
        "collections.UserList",
        "collections.UserString",
        "datetime.datetime",
        "datetime.date",
        "datetime.time",
        "datetime.timedelta",
        "datetime.timezone",
        "datetime.tzinfo",
        "decimal.Decimal",
        "fractions.Fraction",
        "uuid.UUID",
        "uuid.SafeUUID",
        "re._compile",
        "re.Pattern",
        "enum.Enum",
        "array.array",
        "array._array_reconstructor",
        "ipaddress.IPv4Address",
        "ipaddress.IPv6Address",
        "ipaddress.IPv4Network",
        "ipaddress.IPv6Network",
        "pathlib.Path",
        "pathlib.PosixPath",
        "pathlib.WindowsPath",
        "pathlib.PurePath",
        "pathlib.PurePosixPath",
        "pathlib.PureWindowsPath",
        "zoneinfo.ZoneInfo",
        "zoneinfo._common._unpickle",  # rebuilds a ZoneInfo from its key
        "types.SimpleNamespace",
        "io.BytesIO",  # in-memory buffers, no file access
        "_io.BytesIO",
        "io.StringIO",
        "_io.StringIO",
        "argparse.Namespace",
        # numpy: array and scalar reconstruction
        *(f"numpy.{n}" for n in _NUMPY_SCALARS),
        *(
            f"{m}.{n}"
            for m in ("numpy.core.multiarray", "numpy._core.multiarray")
            for n in ("_reconstruct", "scalar", "ndarray", "dtype")
        ),
        "numpy.matrixlib.defmatrix.matrix",
        "numpy.core.numeric._frombuffer",
        "numpy._core.numeric._frombuffer",
        "numpy.core._internal._reconstruct",
        "numpy.ma.core._mareconstruct",
        "numpy.ma.core.MaskedArray",
        "numpy.core._ufunc_reconstruct",  # arguments are checked by the analyzer (it imports by name)
        "numpy._core._ufunc_reconstruct",
        "numpy.random._pickle.__bit_generator_ctor",
        "numpy.random._pickle.__generator_ctor",
        "numpy.random._pickle.__randomstate_ctor",
        "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
        "numpy.random._mt19937.MT19937",
        "numpy.random._pcg64.PCG64",
        "numpy.random._pcg64.PCG64DXSM",
        "numpy.random._philox.Philox",
        "numpy.random._sfc64.SFC64",
        "numpy.random.mtrand.RandomState",
        "numpy.random.mtrand._rand",
        # scikit-learn functions that fitted estimators reference (score functions, Cython factories)
        "sklearn.cluster._kmeans._kmeans_single_lloyd",
        "sklearn.cluster._kmeans._kmeans_single_elkan",
        "sklearn.metrics._dist_metrics.newObj",
        "sklearn.neighbors._kd_tree.newObj",
        "sklearn.neighbors._ball_tree.newObj",
        "sklearn.neighbors._binary_tree.newObj",
        *(
            f"sklearn.feature_selection._univariate_selection.{n}"
            for n in ("f_classif", "f_regression", "chi2", "r_regression", "f_oneway")
        ),
        "sklearn.feature_selection._mutual_info.mutual_info_classif",
        "sklearn.feature_selection._mutual_info.mutual_info_regression",
        "sklearn.metrics._scorer._passthrough_scorer",
        "sklearn.utils._bunch.Bunch",
        # scipy helpers that sparse matrices and splines use
        "scipy._lib.array_api_compat.numpy._aliases.asarray",
        "scipy.sparse._csr.csr_matrix",
        "scipy.sparse._csc.csc_matrix",
        "scipy.sparse._coo.coo_matrix",
        "scipy.sparse._lil.lil_matrix",
        "scipy.sparse._dok.dok_matrix",
        "scipy.sparse._bsr.bsr_matrix",
        "scipy.sparse._dia.dia_matrix",
        "scipy.sparse._csr.csr_array",
        "scipy.sparse._csc.csc_array",
        "scipy.sparse._coo.coo_array",
        # torch: tensors, storages, parameters, dtypes
        *(
            f"torch._utils.{n}"
            for n in [
                "_rebuild_tensor",
                "_rebuild_tensor_v2",
                "_rebuild_tensor_v3",
                "_rebuild_parameter",
                "_rebuild_parameter_with_state",
                "_rebuild_sparse_tensor",
                "_rebuild_nested_tensor",
                "_rebuild_device_tensor_from_numpy",
                "_rebuild_meta_tensor_no_storage",
                "_rebuild_wrapper_subclass",
                "_rebuild_qtensor",
                "_rebuild_xla_tensor",
                "_rebuild_mtia_tensor",
                "_rebuild_typed_storage",
                "_rebuild_typed_storage_child",
                "_rebuild_from_type",
            ]
        ),
        "torch._tensor._rebuild_from_type",
        "torch._tensor._rebuild_from_type_v2",
        "torch.serialization._get_layout",
        "torch.nn.parameter.Parameter",
        "torch.nn.parameter.Buffer",
        "torch.nn.parameter.UninitializedParameter",
        "torch.nn.parameter.UninitializedBuffer",
        "torch.Size",
        "torch.device",
        "torch.Tensor",
        "torch._tensor.Tensor",
        "torch.storage._load_from_bytes",  # its payload is analysed as a nested checkpoint
        *(f"torch.{kind}Storage" for kind in _TORCH_STORAGES),
        *(f"torch.cuda.{kind}Storage" for kind in _TORCH_STORAGES),
        *(f"torch.{kind}Tensor" for kind in _TORCH_STORAGES),  # legacy checkpoints name tensor types
        "torch.storage.UntypedStorage",
        "torch.storage.TypedStorage",
        "torch.storage._StorageBase",
        "torch.return_types.*",
        *(
            f"torch.{n}"
            for n in [
                "float32",
                "float",
                "float64",
                "double",
                "float16",
                "half",
                "bfloat16",
                "uint8",
                "int8",
                "int16",
                "short",
                "int32",
                "int",
                "int64",
                "long",
                "bool",
                "complex64",
                "cfloat",
                "complex128",
                "cdouble",
                "complex32",
                "qint8",
                "quint8",
                "qint32",
                "quint4x2",
                "uint16",
                "uint32",
                "uint64",
                "float8_e4m3fn",
                "float8_e5m2",
                "float8_e4m3fnuz",
                "float8_e5m2fnuz",
                "strided",
                "sparse_coo",
                "sparse_csr",
                "_mkldnn",
                "contiguous_format",
                "channels_last",
                "channels_last_3d",
                "preserve_format",
                "per_tensor_affine",
                "per_channel_affine",
                "per_tensor_symmetric",
                "per_channel_symmetric",
            ]
        ),
        # joblib's array wrappers (the analyzer reads the raw array data that follows them)
        "joblib.numpy_pickle.NumpyArrayWrapper",
        "joblib.numpy_pickle_utils._ensure_native_byte_order",
        # pandas containers
        "pandas.core.frame.DataFrame",
        "pandas.core.series.Series",
        "pandas.core.internals.managers.BlockManager",
        "pandas.core.internals.managers.SingleBlockManager",
        "pandas.core.internals.blocks.new_block",
        "pandas.core.internals.blocks.Block",
        "pandas._libs.internals._unpickle_block",
        "pandas.core.indexes.base._new_Index",
        "pandas.core.indexes.base.Index",
        "pandas.core.indexes.range.RangeIndex",
        "pandas._libs.tslibs.timestamps._unpickle_timestamp",
        "pandas._libs.tslibs.timedeltas._timedelta_unpickle",
        "pandas.core.arrays.categorical.Categorical",
        "pandas._libs.arrays.__pyx_unpickle_NDArrayBacked",
    ]
)

# Where a CamelCase class name (or the exact functions above) is ordinary: model libraries' own classes.
TRUSTED_CLASS_PREFIXES: tuple[str, ...] = (
    "sklearn.",
    "scipy.",
    "numpy.",
    "torch.nn.",
    "torch.optim.",
    "torch.amp.",
    "torch.ao.nn.",
    "torch.ao.quantization.",
    "xgboost.",
    "lightgbm.",
    "catboost.",
    "keras.",
    "tf_keras.",
    "pandas.",
    "imblearn.",
    "category_encoders.",
    "statsmodels.",
    "joblib.numpy_pickle.",
    "collections.",
)

# Math-only namespaces where lowercase functions (activation functions, ufuncs) are also ordinary.
TRUSTED_FUNCTION_MODULES: frozenset[str] = frozenset(
    {"numpy", "torch.nn.functional", "torch.nn.init", "scipy.special", "scipy.stats", "math", "operator", "cmath"}
)

# Packages of math only, where functions and lowercase classes (scipy's ``norm_gen``, metric functions such as
# ``f1_score`` inside a scorer) are ordinary at any depth.
TRUSTED_FUNCTION_PACKAGES: tuple[str, ...] = (
    "scipy.stats.",
    "scipy.special.",
    "torch.nn.functional.",
    "sklearn.metrics.",
)

_DUNDER = re.compile(r"^__\w+__$")
_CLASS_NAME = re.compile(r"^_{0,2}[A-Z][A-Za-z0-9_]*$")
_ALLOWED_DUNDER_MODULES = frozenset({"__main__", "__builtin__", "__mp_main__"})
_STDLIB = frozenset(sys.stdlib_module_names)


def _pattern_matches(pattern: str, path: str) -> bool:
    if pattern.endswith(".*"):
        base = pattern[:-2]
        return path == base or path.startswith(base + ".")
    if pattern.endswith("*"):  # "torch._C._jit_*": a name prefix
        return path.startswith(pattern[:-1])
    return path == pattern


def _normalise(module: str, name: str) -> list[str]:
    """Full dotted paths a loader may resolve ``(module, name)`` to, Python 2 spellings included."""
    import _compat_pickle

    paths = [f"{module}.{name}"]
    mapped = _compat_pickle.NAME_MAPPING.get((module, name))
    if mapped is not None:
        paths.append(f"{mapped[0]}.{mapped[1]}")
    elif module in _compat_pickle.IMPORT_MAPPING:
        paths.append(f"{_compat_pickle.IMPORT_MAPPING[module]}.{name}")
    if module.startswith("numpy.core."):  # numpy 2 moved numpy.core to numpy._core; both load
        paths.append(f"numpy._core.{module[len('numpy.core.') :]}.{name}")
    return paths


class PicklePolicy:
    """Judges pickle globals. Verdicts are cached per (module, name)."""

    def __init__(self, allow: Iterable[str] = (), deny: Iterable[str] = (), *, torchscript: bool = False) -> None:
        allow = tuple(allow)
        self.allow = allow
        # TorchScript archives are read by torch's C++ unpickler, which resolves ``__torch__.*`` to classes
        # compiled from the archive's code/ folder and knows a few list builders; it imports no Python module.
        self.torchscript = torchscript
        self.user_deny = tuple(deny)
        self.user_allow_exact = frozenset(a for a in allow if not a.endswith("*"))
        self.user_allow_patterns = tuple(a for a in allow if a.endswith("*"))
        self._cache: dict[tuple[str, str], Verdict] = {}

    def for_torchscript(self) -> PicklePolicy:
        """The same policy for pickles inside a TorchScript archive."""
        return PicklePolicy(self.allow, self.user_deny, torchscript=True)

    def judge(self, module: str, name: str) -> Verdict:
        key = (module, name)
        verdict = self._cache.get(key)
        if verdict is None:
            # A Python 2 spelling (__builtin__, copy_reg) and its Python 3 target are the same object: the most
            # permissive reading is the real one, unless any reading is dangerous.
            verdicts = [self._judge_path(path, module, name) for path in _normalise(module, name)]
            worst = max(verdicts, key=lambda v: v.level)
            verdict = worst if worst.level == Level.DANGEROUS else min(verdicts, key=lambda v: v.level)
            if len(self._cache) < 100_000:
                self._cache[key] = verdict
        return verdict

    def _judge_path(self, path: str, module: str, name: str) -> Verdict:
        for pattern in self.user_deny:
            if _pattern_matches(pattern, path):
                return Verdict(Level.DANGEROUS, f"denied by configuration ({pattern})")
        if path in ALLOW or path in self.user_allow_exact:
            return Verdict(Level.ALLOWED)
        if self.torchscript and (
            path.startswith(_TORCHSCRIPT_ALLOW) and not any(_DUNDER.match(p) for p in path.split(".")[1:])
        ):
            return Verdict(Level.ALLOWED)
        parts = path.split(".")
        if any(_DUNDER.match(p) for p in parts if p not in _ALLOWED_DUNDER_MODULES):
            return Verdict(Level.DANGEROUS, "dunder attribute traversal (reaches interpreter internals)")
        reason = _deny_reason(path)
        if reason is not None:
            return Verdict(Level.DANGEROUS, reason)
        inner = name.split(".")[:-1]  # protocol 4 qualnames traverse attributes: torch + "os.system"
        reached = next((p for p in inner if p in _DENIED_MODULE_NAMES), None)
        if reached is not None:
            return Verdict(Level.DANGEROUS, f"reaches the {reached} module through attribute traversal")
        last = parts[-1]
        if _LOADER_NAME.match(last):
            return Verdict(Level.DANGEROUS, f"loader or executor function ({last})")
        for pattern in self.user_allow_patterns:
            if _pattern_matches(pattern, path):
                return Verdict(Level.ALLOWED)
        if any(_pattern_matches(a, path) for a in _ALLOW_PATTERNS):
            return Verdict(Level.ALLOWED)
        if "." not in name and "<" not in name:
            if _CLASS_NAME.match(name) and path.startswith(TRUSTED_CLASS_PREFIXES) and not _test_module(module):
                return Verdict(Level.ALLOWED)
            if module in TRUSTED_FUNCTION_MODULES or module.startswith(TRUSTED_FUNCTION_PACKAGES):
                return Verdict(Level.ALLOWED)
            if name.startswith("__pyx_unpickle_") and path.startswith(TRUSTED_CLASS_PREFIXES):
                return Verdict(Level.ALLOWED)  # Cython's generated state restorers
        top = module.split(".", 1)[0]
        return Verdict(Level.UNKNOWN, "not on the allow list", stdlib=top in _STDLIB)


_DENIED_MODULE_NAMES = frozenset(
    {p[:-2] for p in DENY if p.endswith(".*") and "." not in p[:-2]} | {"builtins", "__builtin__", "os", "sys"}
)
_TORCHSCRIPT_ALLOW = ("__torch__.", "torch.jit._pickle.")
_ALLOW_PATTERNS: tuple[str, ...] = tuple(a for a in ALLOW if a.endswith("*"))


def _test_module(module: str) -> bool:
    parts = module.split(".")
    return any(p in ("tests", "testing", "_testing", "conftest") for p in parts)


@lru_cache(maxsize=4096)
def _deny_reason(path: str) -> str | None:
    for pattern, reason in DENY.items():
        if _pattern_matches(pattern, path):
            return reason or "code-running or nested-loading global"
    return None


# Ordinary as values (joblib records ``numpy.memmap`` as an array's subclass) but harmful when called.
DANGEROUS_IF_CALLED: dict[str, str] = {
    "numpy.memmap": "creates or overwrites files (mode='w+')",
    "numpy.core.memmap.memmap": "creates or overwrites files (mode='w+')",
    "numpy._core.memmap.memmap": "creates or overwrites files (mode='w+')",
}


def is_nested_loader(path: str) -> bool:
    """Globals whose first argument is itself a serialized payload we can analyse (pickle.loads, torch bytes)."""
    return path in NESTED_LOADERS


NESTED_LOADERS: frozenset[str] = frozenset(
    {
        "pickle.loads",
        "pickle._loads",
        "_pickle.loads",
        "cPickle.loads",
        "dill.loads",
        "cloudpickle.loads",
        "torch.storage._load_from_bytes",
    }
)
