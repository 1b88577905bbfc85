"""One regression test per known pickle-scanner bypass family (ANCHORS.md), each payload built in code."""

from __future__ import annotations

import marshal
import os
import pickle
import pickletools
from collections.abc import Callable

import pytest

from sas.scan.models.pickle_policy import PicklePolicy
from sas.scan.models.pickle_scan import MEMO_CAP, PickleReport
from sas.taxonomy import Severity

CRITICAL = Severity.CRITICAL
HIGH = Severity.HIGH

Analyse = Callable[..., PickleReport]


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_reduce_os_system_every_protocol(payloads, analyse: Analyse, protocol: int) -> None:
    data = pickle.dumps(payloads.reduce_class(os.system, "id"), protocol=protocol)
    report = analyse(data)
    assert report.worst == CRITICAL
    assert any("system" in h.evidence and h.rule.id == "SAS-PKL-001" for h in report.hits)


def test_memo_built_global(analyse: Analyse) -> None:
    # "os" and "system" are memoized first, then fetched back with BINGET as STACK_GLOBAL operands.
    data = b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94N0h\x00h\x01\x93\x8c\x02id\x85R."
    report = analyse(data)
    assert report.worst == CRITICAL
    assert "os.system('id')" in {h.evidence for h in report.hits}


def test_memo_put_overwrite_keeps_len_memo_arithmetic(analyse: Analyse) -> None:
    # BINPUT 1 before MEMOIZE: the real loader's MEMOIZE key is len(memo) (=2 here, not 1). A scanner that
    # counts MEMOIZE calls would resolve BINGET 2 to "builtins" and miss the os.system call.
    data = (
        b"\x80\x04\x8c\x08builtins\x94"  # key 0
        b"\x8c\x02os"
        b"q\x01"  # BINPUT 1
        b"\x8c\x06system\x94"  # MEMOIZE -> key 2
        b"0"  # POP
        b"h\x01h\x02\x93\x8c\x02id\x85R."
    )
    report = analyse(data)
    assert report.worst == CRITICAL
    assert any(h.evidence.startswith("os.system") for h in report.hits)


def test_stack_global_operands_built_at_runtime(analyse: Analyse) -> None:
    # The module name is the result of a call (str('os')), not a literal: the target is unknowable statically.
    data = b"\x80\x04\x8c\x08builtins\x8c\x03str\x93\x8c\x02os\x85R\x8c\x06system\x93\x8c\x02id\x85R."
    report = analyse(data)
    assert report.worst is not None and report.worst >= HIGH
    assert "STACK_GLOBAL with non-literal operands" in {h.evidence for h in report.hits}
    assert "REDUCE on computed callable" in {h.evidence for h in report.hits}


def test_inst_opcode(analyse: Analyse) -> None:
    data = b"(S'id'\nios\nsystem\n."
    report = analyse(data)
    assert report.worst == CRITICAL


def test_obj_opcode(analyse: Analyse) -> None:
    data = b"(cos\nsystem\nS'id'\no."
    report = analyse(data)
    assert report.worst == CRITICAL


def test_newobj_on_code_running_class(payloads, analyse: Analyse) -> None:
    data = b"\x80\x04\x8c\nsubprocess\x8c\x05Popen\x93\x8c\x02id\x85\x81."
    report = analyse(data)
    assert report.worst == CRITICAL


def test_newobj_ex_on_code_running_class(analyse: Analyse) -> None:
    data = b"\x80\x04\x8c\nsubprocess\x8c\x05Popen\x93\x8c\x02id\x85}\x92."
    assert analyse(data).worst == CRITICAL


def test_several_pickles_in_one_stream(payloads, analyse: Analyse) -> None:
    data = pickle.dumps({"weights": [1.0, 2.0]}) + pickle.dumps(payloads.reduce_class(os.system, "id"))
    report = analyse(data)
    assert report.pickles == 2
    assert report.worst == CRITICAL
    assert "SAS-PKL-009" in {h.rule.id for h in report.hits}


def test_payload_followed_by_garbage(payloads, scan_file, helpers) -> None:
    data = pickle.dumps(payloads.reduce_class(os.system, "id"))[:-1] + b"\xff\xfe not a pickle any more"
    result = scan_file("model.pkl", data)
    assert result.worst() == CRITICAL
    assert "SAS-SCAN-001" in helpers.rule_ids(result)


def test_garbage_then_payload_is_found_by_resync(payloads, analyse: Analyse) -> None:
    data = pickle.dumps([1, 2]) + b"\x00\xff junk \x01" + pickle.dumps(payloads.reduce_class(os.system, "id"))
    report = analyse(data)
    assert report.error is not None
    assert report.worst == CRITICAL


def test_extension_registry_opcodes(analyse: Analyse) -> None:
    for data in (b"\x80\x02\x82\x01)R.", b"\x80\x02\x83\x01\x02)R.", b"\x80\x02\x84\x01\x02\x03\x04)R."):
        report = analyse(data)
        assert report.worst is not None and report.worst >= HIGH
        assert "SAS-PKL-005" in {h.rule.id for h in report.hits}


def test_build_on_imported_object(analyse: Analyse) -> None:
    # BUILD straight onto a class rewrites its attributes (monkey-patching on load).
    data = b"\x80\x04\x8c\x0bcollections\x8c\x0bOrderedDict\x93}\x8c\x07__len__\x8c\x01x\x73b."
    report = analyse(data)
    assert "SAS-PKL-006" in {h.rule.id for h in report.hits}


# Code-running callables that short deny-lists miss, plus the classics; each called through REDUCE.
CODE_RUNNERS = [
    ("runpy", "_run_code"),
    ("runpy", "run_path"),
    ("timeit", "timeit"),
    ("pdb", "run"),
    ("pip", "main"),
    ("pip._internal.cli.main", "main"),
    ("numpy.testing._private.utils", "runstring"),
    ("numpy", "testing._private.utils.runstring"),
    ("numpy._pytesttester", "PytestTester"),
    ("marshal", "loads"),
    ("types", "FunctionType"),
    ("operator", "methodcaller"),
    ("operator", "attrgetter"),
    ("functools", "partial"),
    ("functools", "reduce"),
    ("pickle", "loads"),
    ("_pickle", "loads"),
    ("dill", "loads"),
    ("cloudpickle", "loads"),
    ("ctypes", "CDLL"),
    ("ctypes", "cdll.LoadLibrary"),
    ("webbrowser", "open"),
    ("builtins", "eval"),
    ("builtins", "exec"),
    ("builtins", "getattr"),
    ("builtins", "__import__"),
    ("builtins", "open"),
    ("builtins", "breakpoint"),
    ("__builtin__", "eval"),
    ("importlib", "import_module"),
    ("pkgutil", "resolve_name"),
    ("pydoc", "locate"),
    ("code", "InteractiveInterpreter"),
    ("subprocess", "check_output"),
    ("posix", "system"),
    ("nt", "system"),
    ("pty", "spawn"),
    ("asyncio.subprocess", "create_subprocess_shell"),
    ("multiprocessing.util", "spawnv_passfds"),
    ("socket", "create_connection"),
    ("shutil", "rmtree"),
    ("sys", "exit"),
    ("torch.hub", "load"),
    ("torch", "hub.load"),
    ("torch", "load"),
    ("torch.fx.graph_module", "reduce_graph_module"),
    ("numpy", "load"),
    ("joblib", "load"),
    ("sklearn.utils._testing", "assert_run_python_script_without_output"),
    ("scipy.io", "loadmat"),
    ("yaml", "unsafe_load"),
    ("logging.config", "listen"),
    ("builtins", "object.__subclasses__"),
    ("collections", "OrderedDict.__init__.__globals__"),
    ("mypackage.util", "load_anything"),
    ("numpy", "memmap"),
    ("numpy", "os.remove"),
    ("torch", "sys.modules.get"),
    ("sklearn.base", "copy.builtins.eval"),
    ("keras.src.models.model", "Model._unpickle_model"),
    ("keras.src.models.sequential", "Sequential._unpickle_model"),
]


@pytest.mark.parametrize(("module", "name"), CODE_RUNNERS, ids=[f"{m}.{n}" for m, n in CODE_RUNNERS])
@pytest.mark.parametrize("protocol", [2, 4])
def test_code_running_callables_are_critical(payloads, analyse: Analyse, module: str, name: str, protocol: int) -> None:
    report = analyse(payloads.call(module, name, "x", protocol=protocol))
    assert report.worst == CRITICAL, (module, name, [h.message for h in report.hits])


def test_marshal_and_function_type(analyse: Analyse) -> None:
    code = marshal.dumps(compile("import os; os.system('id')", "<x>", "exec"))
    data = (
        b"\x80\x04\x8c\x05types\x8c\x0cFunctionType\x93"
        b"\x8c\x07marshal\x8c\x05loads\x93C" + bytes([len(code)]) + code + b"\x85R"
        b"}\x86R)R."
    )
    report = analyse(data)
    evidence = {h.evidence.split("(")[0] for h in report.hits if h.severity == CRITICAL}
    assert {"types.FunctionType", "marshal.loads"} <= evidence


def test_pickle_loads_inner_payload_is_analysed(payloads, analyse: Analyse) -> None:
    inner = pickle.dumps(payloads.reduce_class(os.system, "id"))
    outer = pickle.dumps(payloads.reduce_class(pickle.loads, inner))
    report = analyse(outer)
    assert report.worst == CRITICAL
    assert report.nested, "the embedded pickle was not analysed"
    label, inner_report = report.nested[0]
    assert "loads" in label
    assert inner_report.worst == CRITICAL


def test_numpy_ufunc_reconstruct_import_gadget(payloads, analyse: Analyse) -> None:
    # numpy's _ufunc_reconstruct(module, name) imports any module: an allowed global used as an importer.
    report = analyse(payloads.call("numpy.core", "_ufunc_reconstruct", "os", "system"))
    assert report.worst == CRITICAL
    benign = analyse(payloads.call("numpy.core", "_ufunc_reconstruct", "numpy", "log1p"))
    assert benign.worst is None


def test_dangerous_global_passed_as_a_value(analyse: Analyse) -> None:
    # collections.defaultdict(os.system): os.system is never called by the pickle itself but by the dict later.
    data = b"\x80\x04\x8c\x0bcollections\x8c\x0bdefaultdict\x93\x8c\x02os\x8c\x06system\x93\x85R."
    report = analyse(data)
    assert report.worst == HIGH
    assert "SAS-PKL-002" in {h.rule.id for h in report.hits}


def test_evicted_memo_operand_fails_closed(analyse: Analyse) -> None:
    # Fill the memo far past its cap, memoize "os" last, and fetch it back as a STACK_GLOBAL operand: the
    # analyzer no longer holds that entry, and must say the target is unknown rather than guess.
    count = 3 * MEMO_CAP
    data = b"\x80\x04(" + b"\x8c\x01a\x94" * count + b"\x8c\x02os\x94" + b"1"
    data += b"j" + count.to_bytes(4, "little") + b"\x8c\x06system\x93\x8c\x02id\x85R."
    report = analyse(data)
    assert report.worst is not None and report.worst >= HIGH
    assert "STACK_GLOBAL with non-literal operands" in {h.evidence for h in report.hits}


def test_text_protocol_global_with_dotted_module(analyse: Analyse) -> None:
    assert analyse(b"cos.path\nos.system\n(S'id'\ntR.").worst == CRITICAL


def test_user_deny_list_makes_a_global_dangerous(payloads, analyse: Analyse) -> None:
    data = payloads.call("collections", "OrderedDict")
    assert analyse(data).worst is None
    assert analyse(data, PicklePolicy(deny=["collections.*"])).worst == CRITICAL


def test_user_allow_list_silences_own_classes(payloads, analyse: Analyse) -> None:
    data = payloads.call("myproject.models", "Net")
    assert analyse(data).worst == Severity.MEDIUM
    assert analyse(data, PicklePolicy(allow=["myproject.*"])).worst is None
    assert analyse(data, PicklePolicy(allow=["myproject.models.Net"])).worst is None
    # a pattern allow never overrides the built-in deny list
    assert analyse(payloads.call("os", "system"), PicklePolicy(allow=["os.*"])).worst == CRITICAL


def test_unknown_stdlib_function_called_is_high(payloads, analyse: Analyse) -> None:
    assert analyse(payloads.call("textwrap", "dedent", "x")).worst == HIGH
    assert analyse(payloads.call("thirdparty.mod", "Thing", "x")).worst == Severity.MEDIUM


def test_genops_agrees_on_opcode_count(payloads, analyse: Analyse) -> None:
    data = pickle.dumps({"a": [1, 2.5, "x" * 300, b"y" * 70_000, (None, True)], "b": {1, 2}}, protocol=5)
    assert analyse(data).opcodes == sum(1 for _ in pickletools.genops(data))
