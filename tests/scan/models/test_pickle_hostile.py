"""Hostile and broken pickle input: always a finding or nothing, never a traceback or a hang."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zipfile

from hypothesis import given, settings
from hypothesis import strategies as st

from sas.scan.models.pickle_policy import PicklePolicy
from sas.scan.models.pickle_scan import scan_stream
from sas.taxonomy import Severity


def test_truncated_pickle(payloads, scan_file, helpers) -> None:
    data = pickle.dumps({"w": list(range(100))}, protocol=4)[:-20]
    result = scan_file("model.pkl", data)
    assert "SAS-SCAN-001" in helpers.rule_ids(result)
    assert not result.errors


def test_truncated_payload_still_reports_what_was_seen(payloads, analyse) -> None:
    data = pickle.dumps(payloads.reduce_class(os.system, "id"), protocol=4)
    report = analyse(data[:-3])  # cut before REDUCE: the import was already seen
    assert report.error is not None
    assert report.worst is not None and report.worst >= Severity.HIGH


def test_empty_pkl_file(scan_file) -> None:
    result = scan_file("model.pkl", b"")
    assert [f.rule_id for f in result.findings] == ["SAS-SCAN-003"]  # reported once, by name/content check


def test_text_file_named_pkl(scan_file) -> None:
    result = scan_file("model.pkl", b"hello, this is not a pickle\nat all\n")
    assert [f.rule_id for f in result.findings] == ["SAS-SCAN-003"]


def test_other_format_named_sav_is_left_alone(scan_file) -> None:
    # .sav is also IDL's format (scipy.io.readsav): content that is not a pickle at all is not a finding
    result = scan_file("model.sav", b"SR\x00\x04\x00\x00\x00\x0a not a pickle\n")
    assert result.findings == ()


def test_data_after_the_last_pickle(payloads, analyse, scan_file, helpers) -> None:
    assert analyse(pickle.dumps([1, 2]) + b"\n\n").error is None  # padding only
    result = scan_file("model.pkl", pickle.dumps([1, 2]) + b"\xff trailing junk")
    assert [f.rule_id for f in result.findings] == ["SAS-SCAN-002"]
    hidden = pickle.dumps([1, 2]) + b"\xff junk " + pickle.dumps(payloads.reduce_class(os.system, "id"))
    assert scan_file("model.pkl", hidden).worst() == Severity.CRITICAL


def test_sniffing_evasion_prefix_is_still_analysed(scan_file) -> None:
    # "N0" (push None, pop) before the payload defeats magic-byte sniffing; the .pkl name still gets it read.
    result = scan_file("model.pkl", b"N0cos\nsystem\n(S'id'\ntR.")
    assert result.worst() == Severity.CRITICAL


def test_random_bytes_named_joblib(scan_file) -> None:
    result = scan_file("model.joblib", bytes(range(256)) * 40)
    assert result.findings
    assert not result.errors


def test_declared_length_beyond_end(analyse) -> None:
    report = analyse(b"\x80\x04\x8e" + (1 << 40).to_bytes(8, "little") + b"abc")
    assert report.error is not None and "truncated" in report.error


def test_deep_nesting_of_marks(analyse) -> None:
    data = b"\x80\x04" + b"(" * 200_000 + b"l" * 200_000 + b"."
    report = analyse(data)
    assert report.error is None
    assert report.pickles == 1


def test_huge_flat_stack_is_bounded(analyse) -> None:
    data = b"\x80\x04" + b"N" * 3_000_000 + b"\x93)R."
    report = analyse(data)
    assert report.worst is not None and report.worst >= Severity.HIGH


def test_unsupported_protocol(analyse) -> None:
    report = analyse(b"\x80\x09N.")
    assert report.error is not None


def test_malformed_text_arguments(analyse) -> None:
    for data in (b"I12x\n.", b"S'unterminated\n.", b"g999\n.", b"p-1\n.", b"cos\nsys"):
        report = analyse(data)
        assert report.error is not None


def test_big_bytes_payload_is_skipped_not_held() -> None:
    class Counting(io.RawIOBase):
        """20 MB pickle generated on the fly: a single BINBYTES8 payload."""

        def __init__(self) -> None:
            size = 20 << 20
            self.parts = [b"\x80\x04\x8e" + size.to_bytes(8, "little")]
            self.left = size
            self.tail = b"\x85."

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
            if self.parts:
                data = self.parts.pop()
            elif self.left:
                data = b"\0" * min(len(buffer), self.left)
                self.left -= len(data)
            else:
                data, self.tail = self.tail, b""
            n = min(len(buffer), len(data))
            buffer[:n] = data[:n]
            return n

    report = scan_stream(io.BufferedReader(Counting()), PicklePolicy())
    assert report.error is None and report.pickles == 1


def test_nested_archives(payloads, tmp_path) -> None:
    from sas.scan.engine import scan

    evil = pickle.dumps(payloads.reduce_class(os.system, "id"))
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("python/models/model.sav")
        info.size = len(evil)
        tar.addfile(info, io.BytesIO(evil))
    zip_path = tmp_path / "function.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr("layer.tar.gz", tar_buf.getvalue())
    result = scan(zip_path)
    critical = [f for f in result.findings if f.severity == Severity.CRITICAL]
    assert critical
    assert critical[0].location.path.startswith("function.zip!layer.tar.gz!")


_SEEDS = [
    pickle.dumps({"a": [1, 2.5, "x", b"y", None, True, (1, 2)], "s": {1}, "f": frozenset()}, protocol=p)
    for p in range(6)
] + [b"(S'id'\nios\nsystem\n.", b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94h\x00h\x01\x93\x8c\x02id\x85R."]


@settings(max_examples=300, deadline=None)
@given(seed=st.sampled_from(_SEEDS), flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6))
def test_mutated_pickles_never_raise(seed: bytes, flips: list[tuple[int, int]]) -> None:
    data = bytearray(seed)
    for where, value in flips:
        data[where % len(data)] = value
    report = scan_stream(io.BytesIO(bytes(data)), PicklePolicy())
    assert report.opcodes >= 0


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=400))
def test_random_bytes_never_raise(data: bytes) -> None:
    scan_stream(io.BytesIO(b"\x80\x04" + data), PicklePolicy())


def test_chains_of_tuples_and_calls_stay_small(analyse) -> None:
    import tracemalloc

    depth = 20_000  # unbounded, these chains would hold ~1.1 MB (tuples) and ~2.5 MB (calls)
    tuple_chain = b"\x80\x04N" + b"\x85" * depth + b"."
    call_chain = b"\x80\x04\x8c\x08builtins\x8c\x03set\x93\x94" + b"h\x00" * depth + b")R" + b"\x85R" * depth + b"."
    for data in (tuple_chain, call_chain):
        tracemalloc.start()
        report = analyse(data)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert report.pickles == 1 and report.error is None
        assert peak < 512 << 10, peak


def test_many_distinct_globals_still_report_the_dangerous_one(analyse) -> None:
    parts = [b"\x80\x02("]
    parts += [b"cmod%d\nName\n" % i for i in range(12_000)]
    parts.append(b"1cos\nsystem\n(S'id'\ntR.")
    report = analyse(b"".join(parts))
    assert report.worst == Severity.CRITICAL


def test_sniffing_evasion_with_any_name(scan_file) -> None:
    assert scan_file("weights.bin", b"N0cos\nsystem\n(S'id'\ntR.").worst() == Severity.CRITICAL
    assert scan_file("blob", b"K\x010\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R.").worst() == Severity.CRITICAL


def test_source_and_text_files_are_not_taken_for_pickles(scan_file) -> None:
    for name, text in [
        ("app.py", b"import os\nimport sys\n"),
        ("lib.py", b"class Foo:\n    pass\n"),
        ("notes.txt", b"cat\nfood is good\n"),
        ("data.csv", b"(1, 2)\n(3, 4)\n"),
    ]:
        result = scan_file(name, text)
        assert not [f for f in result.findings if f.rule_id.startswith(("SAS-PKL", "SAS-SCAN"))], (
            name,
            result.findings,
        )
