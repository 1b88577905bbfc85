"""Damaged and hostile model files found by mutation fuzzing: each is reported, never raised, hung or passed."""

from __future__ import annotations

import io
import json
import os
import pickle
import random
import struct
import zipfile
from pathlib import Path

import h5py
import joblib
import numpy as np
import pytest

from sas.scan.artifact import file_from_bytes
from sas.scan.context import ScanContext
from sas.scan.engine import scan
from sas.scan.models import torch_scan
from sas.scan.models.numpy_scan import NumpyAnalyzer
from sas.taxonomy import Severity


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, body in members.items():
            archive.writestr(zipfile.ZipInfo(name), body)
    return buf.getvalue()


def _central_version(data: bytes, version: int) -> bytes:
    """Set "version needed to extract" of every central directory entry."""
    out = bytearray(data)
    at = out.find(b"PK\x01\x02")
    while at >= 0:
        out[at + 6] = version
        at = out.find(b"PK\x01\x02", at + 4)
    return bytes(out)


def test_zip_with_unknown_extract_version_is_reported_not_raised(tmp_path: Path) -> None:
    checkpoint = _zip({"archive/data.pkl": pickle.dumps({"w": 1}, protocol=2), "archive/version": b"3\n"})
    path = tmp_path / "model.pt"
    path.write_bytes(_central_version(checkpoint, 255))  # zipfile: NotImplementedError("zip file version 25.5")
    result = scan(path)
    assert {f.rule_id for f in result.findings} & {"SAS-ARC-004", "SAS-SCAN-001", "SAS-SCAN-002"}


def test_zip_member_with_empty_name_does_not_raise_in_npz_check() -> None:
    data = _zip({"x.npy": b"\x93NUMPY", "": b"\x80\x02}q\x00."})
    ctx = ScanContext()
    # not a plain .npz (a member is not .npy): left to the walker, not an IndexError from ZipInfo.is_dir
    assert NumpyAnalyzer().analyze(file_from_bytes(data, "weights.npz"), ctx) is False


_SYSTEM_CALL = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."


def _damage_member_data(data: bytes, name: str, at: int = 0) -> bytes:
    """Overwrite four bytes of ``name``'s stored or compressed data, ``at`` bytes in."""
    out = bytearray(data)
    start = out.find(b"PK\x03\x04")
    while start >= 0:
        name_len = int.from_bytes(out[start + 26 : start + 28], "little")
        extra_len = int.from_bytes(out[start + 28 : start + 30], "little")
        if out[start + 30 : start + 30 + name_len] == name.encode():
            body = start + 30 + name_len + extra_len + at
            out[body : body + 4] = b"\xff\xff\xff\xff"
            return bytes(out)
        start = out.find(b"PK\x03\x04", start + 4)
    raise AssertionError(name)


def _checkpoint_with_damaged_later_member(compress: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("archive/data.pkl", _SYSTEM_CALL)
        archive.writestr("archive/version", b"3\n")
        archive.writestr("archive/extra.pkl", b"\x80\x02}q\x00." * 50, compress_type=compress)
    return _damage_member_data(buf.getvalue(), "archive/extra.pkl")


def test_broken_deflate_in_torch_member_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(_checkpoint_with_damaged_later_member(zipfile.ZIP_DEFLATED))  # zlib.error on read
    found = {(f.rule_id, f.location.path) for f in scan(path).findings}
    assert ("SAS-SCAN-001", "model.pt!archive/extra.pkl") in found


def test_damaged_later_torch_member_does_not_hide_the_payload_before_it(tmp_path: Path) -> None:
    for compress in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):  # a bad CRC-32, a broken deflate stream
        path = tmp_path / "model.pt"
        path.write_bytes(_checkpoint_with_damaged_later_member(compress))
        critical = [f for f in scan(path).findings if f.severity is Severity.CRITICAL]
        assert [f.location.path for f in critical] == ["model.pt!archive/data.pkl"], compress


def test_broken_deflate_in_npz_member_is_reported_not_raised(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "x.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }" + bytes(32)
        )
    path = tmp_path / "arrays.npz"
    path.write_bytes(_damage_member_data(buf.getvalue(), "x.npy"))
    found = {(f.rule_id, f.location.path) for f in scan(path).findings}
    assert ("SAS-SCAN-002", "arrays.npz!x.npy") in found


def _safetensors(header: dict[str, object], data: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + data


def test_safetensors_shape_past_float_range_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    # 2**1100 elements: the size message divided it as a float (OverflowError); a thousand 4000-digit dims
    # made the product itself slow to compute
    for shape in ([2**1100], [10**4000] * 200):
        path.write_bytes(_safetensors({"w": {"dtype": "F32", "shape": shape, "data_offsets": [0, 4]}}, bytes(4)))
        (finding,) = scan(path).findings
        assert finding.rule_id == "SAS-ST-002" and "needs more than" in finding.message
        assert len(finding.message) < 500


def _npy(descr: str, data: bytes) -> bytes:
    header = ("{'descr': " + descr + ", 'fortran_order': False, 'shape': (1,), }").ljust(117) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + data


@pytest.mark.parametrize("descr", ["'object'", "'i4,O'", "{'xO': 1}", "['xO']", "('object', (2,))"])
def test_npy_object_dtype_spelled_otherwise_is_still_scanned_as_pickle(tmp_path: Path, descr: str) -> None:
    # np.load builds each of these into a dtype holding objects and so unpickles the data; the scanner only
    # recognised the 'O' spelling and passed the payload as numeric data
    path = tmp_path / "array.npy"
    path.write_bytes(_npy(descr, _SYSTEM_CALL))
    rules = {(f.rule_id, f.severity) for f in scan(path).findings}
    assert ("SAS-PKL-001", Severity.CRITICAL) in rules and ("SAS-NPY-001", Severity.MEDIUM) in rules


class _SystemCall:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, ("echo pwned",)


@pytest.mark.parametrize("descr", [b"i4,O", b"object"])
def test_joblib_object_array_with_otherwise_spelled_dtype_is_still_scanned(tmp_path: Path, descr: bytes) -> None:
    # numpy builds an object-holding dtype from either, so joblib unpickles the array data; the scanner read
    # "i4,O" as 4-byte ints (skipped the payload as raw data) and gave up on "object"
    buf = io.BytesIO()
    joblib.dump({"a": np.array([_SystemCall()], dtype=object)}, buf)
    path = tmp_path / "model.joblib"
    path.write_bytes(buf.getvalue().replace(b"\x8c\x02O8", b"\x8c" + bytes([len(descr)]) + descr, 1))
    assert Severity.CRITICAL in {f.severity for f in scan(path).findings}


def _gguf_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def _gguf_with_templates(*pairs: tuple[str, str]) -> bytes:
    kvs = b"".join(_gguf_string(key) + struct.pack("<I", 8) + _gguf_string(value) for key, value in pairs)
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(pairs)) + kvs


def test_gguf_repeated_chat_template_key_does_not_hide_the_first_copy(tmp_path: Path) -> None:
    # the later copy replaced the earlier one, so a hostile template followed by a benign one under the same
    # key passed clean; loaders that take the first copy render the hostile one
    hostile = "{{ cycler.__init__.__globals__.os.popen('id').read() }}"
    benign = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    path = tmp_path / "model.gguf"
    path.write_bytes(_gguf_with_templates(("tokenizer.chat_template", hostile), ("tokenizer.chat_template", benign)))
    findings = scan(path).findings
    assert Severity.CRITICAL in {f.severity for f in findings}
    assert any(f.rule_id == "SAS-GGUF-004" and "repeated" in f.message for f in findings)


def test_hdf5_global_heap_with_zero_size_entry_is_reported_not_hung(tmp_path: Path) -> None:
    # libhdf5 decodes the collection holding model_config in a loop that never advances past a free-space
    # entry of size 0: reading the attribute hung the scan for ever, in C
    buf = io.BytesIO()
    with h5py.File(buf, "w") as h5:
        h5.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"layers": []}})
    data = bytearray(buf.getvalue())
    heap = data.find(b"GCOL\x01\x00\x00\x00")
    first_size = int.from_bytes(data[heap + 24 : heap + 32], "little")
    after_first = heap + 16 + 16 + -(-first_size // 8) * 8
    data[after_first : after_first + 16] = bytes(16)  # object index 0, size 0
    path = tmp_path / "model.h5"
    path.write_bytes(bytes(data))
    (finding,) = scan(path).findings
    assert finding.rule_id == "SAS-SCAN-001" and "global heap" in finding.message


# --- a bounded, seeded mutation run over every model format ---


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _ld(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _seeds() -> dict[str, bytes]:
    """One small valid (or valid and hostile) file per format, built here."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    seeds: dict[str, bytes] = {
        "model.pkl": pickle.dumps({"w": [1.5, 2, "x"], "b": (b"yy", None)}, protocol=2),
        "evil.pkl": _SYSTEM_CALL,
    }
    torch_zip = io.BytesIO()
    with zipfile.ZipFile(torch_zip, "w") as archive:
        archive.writestr("archive/data.pkl", _SYSTEM_CALL)
        archive.writestr("archive/version", b"3\n")
        archive.writestr("archive/data/0", bytes(16))
    seeds["model.pt"] = torch_zip.getvalue()
    for name, array in (("a.npy", np.arange(6.0)), ("o.npy", np.array([1, "x"], dtype=object))):
        buf = io.BytesIO()
        np.save(buf, array, allow_pickle=True)
        seeds[name] = buf.getvalue()
    buf = io.BytesIO()
    np.savez_compressed(buf, x=np.arange(5), o=np.array([None, 2], dtype=object))
    seeds["a.npz"] = buf.getvalue()
    buf = io.BytesIO()
    joblib.dump({"arr": np.arange(4.0), "s": "ok"}, buf)
    seeds["m.joblib"] = buf.getvalue()
    seeds["m.safetensors"] = _safetensors(
        {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}, "__metadata__": {"f": "np"}}, bytes(16)
    )
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 2])
    weight = numpy_helper.from_array(np.ones((2, 2), np.float32), "W")
    graph = helper.make_graph([helper.make_node("MatMul", ["X", "W"], ["Y"])], "g", [x], [y], [weight])
    seeds["m.onnx"] = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    assert isinstance(onnx.load_from_string(seeds["m.onnx"]), onnx.ModelProto)
    seeds["m.gguf"] = _gguf_with_templates(("tokenizer.chat_template", "{{ cycler.__init__.__globals__ }}"))
    keras = io.BytesIO()
    with zipfile.ZipFile(keras, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.5.0"}))
        layer = {"class_name": "Dense", "module": "keras.layers", "config": {"units": 1}}
        archive.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {"layers": [layer]}}))
    seeds["m.keras"] = keras.getvalue()
    buf = io.BytesIO()
    with h5py.File(buf, "w") as h5:
        h5.attrs["model_config"] = json.dumps({"class_name": "Lambda", "config": {"function": "x"}})
    seeds["m.h5"] = buf.getvalue()
    node = _ld(1, b"pf") + _ld(2, b"PyFunc") + _ld(5, _ld(1, b"token") + _ld(2, _ld(2, b"pyfunc_0")))
    meta = _ld(1, _ld(4, b"serve")) + _ld(2, _ld(1, node) + _ld(4, b"\x08\x90\x0e"))
    seeds["saved_model.pb"] = b"\x08\x01" + _ld(2, meta)
    return seeds


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """One random damage past the first 16 bytes (the magic that routes a file to its analyzer stays)."""
    out = bytearray(data)
    at = rng.randrange(16, len(out))
    how = rng.randrange(6)
    if how == 0:
        out[at] ^= 1 << rng.randrange(8)
    elif how == 1:
        del out[at:]
    elif how == 2:
        out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif how == 3:
        del out[at : at + rng.randint(1, 32)]
    elif how == 4:
        out[at:at] = out[at : at + rng.randint(1, 64)]
    else:
        width = rng.choice([2, 4, 8])
        value = rng.choice([0, 1, 0x7F, 0x80, (1 << (8 * width)) - 1, 1 << (8 * width - 1)])
        out[at : at + width] = value.to_bytes(width, "little")
    return bytes(out)


def test_seeded_mutants_of_every_format_are_scanned_or_reported(tmp_path: Path) -> None:
    rng = random.Random(20261121)
    seeds = _seeds()
    names = sorted(seeds)
    for i in range(650):  # 50 per format
        name = names[i % len(names)]
        mutant = _mutate(seeds[name], rng)
        folder = tmp_path / str(i)
        folder.mkdir()
        (folder / name).write_bytes(mutant)
        result = scan(folder / name)  # must not raise
        assert not any("Traceback" in str(e) for e in result.errors), (name, i)
        scanned = any(c.path == name for c in result.components)
        assert scanned or result.findings, (name, i, mutant)


def test_onnx_external_location_longer_than_the_read_cap_is_not_judged_by_its_prefix(tmp_path: Path) -> None:
    # the location was read up to 4096 bytes and only that prefix checked, so '..' parts placed after 4096
    # bytes of './' passed as a path inside the model folder (a loader that normalises the path climbs out)
    from onnx import TensorProto, helper, numpy_helper

    tensor = numpy_helper.from_array(np.ones(2, np.float32), "W")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "./" * 2100 + "../../etc/passwd"
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2])
    graph = helper.make_graph([helper.make_node("Add", ["X", "W"], ["Y"])], "g", [x], [x], [tensor])
    path = tmp_path / "model.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    assert [f.rule_id for f in scan(path).findings] == ["SAS-ONNX-001"]


def test_torchscript_code_past_the_read_cap_is_reported_not_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # only the first 8 MiB of a code member were checked, so a call placed after 8 MiB of comments passed
    monkeypatch.setattr(torch_scan, "_CODE_CAP", 1 << 16)  # the same cut, without 8 MiB of test data
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({}, protocol=2))
        archive.writestr("archive/version", b"3\n")
        archive.writestr("archive/code/__torch__/m.py", b"#" * (1 << 16) + b"\ny = os.system('id')\n")
    path = tmp_path / "ts.pt"
    path.write_bytes(buf.getvalue())
    assert [f.rule_id for f in scan(path).findings if f.location.path == "ts.pt!archive/code/__torch__/m.py"] == [
        "SAS-SCAN-001"
    ]


def test_gguf_chat_template_array_of_empty_strings_is_bounded(tmp_path: Path) -> None:
    # each element became a template to analyse: 8 MB of empty strings took seconds and ~150 MB, and the cost
    # grew with the file
    key = b"tokenizer.chat_template"
    count = 200_000
    head = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key
    path = tmp_path / "model.gguf"
    path.write_bytes(head + struct.pack("<IIQ", 9, 8, count) + bytes(8 * count))
    (finding,) = scan(path).findings
    assert finding.rule_id == "SAS-SCAN-001" and f"array of {count} templates" in finding.message
