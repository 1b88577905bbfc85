"""Container image tarballs: the file system their layers build, as one tree.

Two layouts are read, both produced without a Docker engine by any registry tool:

- ``docker save``: ``manifest.json`` lists images, each with ``Layers`` (paths of layer tars inside the
  tarball: ``<id>/layer.tar`` in old versions, ``blobs/sha256/<hex>`` in new ones);
- OCI image layout: ``oci-layout`` and ``index.json`` point (possibly through an image index) to a
  manifest whose ``layers`` are blobs under ``blobs/<algorithm>/<hex>``.

Layers are tars, plain or compressed (gzip, zstd...; recognised by content). They apply in order: a later
layer's file replaces an earlier one at the same path, ``.wh.<name>`` deletes ``<name>`` from the layers
below, and ``.wh..wh..opq`` hides everything below in its folder. The merged view is produced by reading the
layers from the top down and skipping what is already shadowed, so each layer is read once and nothing is
extracted. Links inside an image are not reported as leaving the tree: in a container, ``/`` is the
image's own root.
"""

from __future__ import annotations

import json
import posixpath
from typing import TYPE_CHECKING, Any

from sas.scan.archive_rules import NOT_ANALYSED
from sas.scan.archive_streams import (
    ArchiveLimitError,
    CorruptStreamError,
    Ledger,
    Slice,
    UnsupportedCompression,
    buffered,
    decompressed,
    describe,
)
from sas.scan.archive_tar import accept_tar_member, tar_entries, tar_member_file
from sas.scan.artifact import HEAD_BYTES, Opener, read_exactly
from sas.scan.magic import COMPRESSED, Kind, sniff

if TYPE_CHECKING:
    import tarfile
    from typing import BinaryIO

    from sas.scan.archives import Walker

_JSON_MAX = 16 * 1024 * 1024  # manifests and indexes are small; a huge one is not read
_INDEX_DEPTH = 4  # image index -> image index -> ... -> manifest
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"


def walk_image(walker: Walker, archive: str, depth: int, open_source: Opener) -> bool:
    """Walk the merged file system of the image in the tar ``open_source`` yields (seekable, shared).

    Returns False when the tar is not an image after all (then the caller walks it as a plain tar).
    """
    members: dict[str, tarfile.TarInfo] = {}
    links: dict[str, str] = {}
    for entry in tar_entries(walker, archive, open_source, seekable=True, strict_end=False):
        name = _norm(entry.info.name)
        if entry.info.isreg():
            members[name] = entry.info
        elif entry.info.issym() or entry.info.islnk():
            links[name] = entry.info.linkname
    # docker save (before Docker 25) stores a layer shared by two images once and links the other name to it.
    for name in links:
        target = _resolve(name, links, members)
        if target is not None:
            members[name] = members[target]

    def read_json(name: str) -> Any:
        info = members.get(name)
        if info is None or info.size > _JSON_MAX:
            return None
        with buffered(Slice(open_source(), info.offset_data, info.size, owns=False)) as fh:
            try:
                return json.loads(read_exactly(fh, info.size))
            except (ValueError, UnicodeDecodeError) as exc:
                walker.report_corrupt(f"{archive}!{name}", f"not valid JSON ({describe(exc)})")
                return None

    layers = _docker_layers(read_json) if "manifest.json" in members else None
    if layers is None and "index.json" in members:
        layers = _oci_layers(read_json)
    if layers is None:
        return False
    walker.ctx.note(f"{archive}: container image, {len(layers)} layers merged")
    _merge(walker, archive, depth, open_source, members, layers)
    return True


def _docker_layers(read_json: Any) -> list[str] | None:
    manifest = read_json("manifest.json")
    if not isinstance(manifest, list) or not manifest or not isinstance(manifest[0], dict):
        return None
    layers = manifest[0].get("Layers")
    if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
        return None
    return [_norm(x) for x in layers]


def _oci_layers(read_json: Any) -> list[str] | None:
    document = read_json("index.json")
    for _ in range(_INDEX_DEPTH):
        if not isinstance(document, dict):
            return None
        if isinstance(document.get("layers"), list):
            out = []
            for layer in document["layers"]:
                blob = _blob_path(layer)
                if blob is None:
                    return None
                out.append(blob)
            return out
        manifests = document.get("manifests")
        if not isinstance(manifests, list) or not manifests:
            return None
        chosen = _pick_platform(manifests)
        blob = _blob_path(chosen)
        if blob is None:
            return None
        document = read_json(blob)
    return None


def _pick_platform(manifests: list[Any]) -> Any:
    """The linux/amd64 manifest of a multi-platform index (Lambda's default), else the first one."""
    for item in manifests:
        platform = item.get("platform") if isinstance(item, dict) else None
        if isinstance(platform, dict) and platform.get("os") == "linux" and platform.get("architecture") == "amd64":
            return item
    return manifests[0]


def _blob_path(descriptor: Any) -> str | None:
    if not isinstance(descriptor, dict) or not isinstance(descriptor.get("digest"), str):
        return None
    algorithm, _, digest = descriptor["digest"].partition(":")
    if not digest or "/" in digest or "/" in algorithm or ".." in digest:
        return None
    return f"blobs/{algorithm}/{digest}"


def _merge(
    walker: Walker,
    archive: str,
    depth: int,
    open_source: Opener,
    members: dict[str, tarfile.TarInfo],
    layers: list[str],
) -> None:
    shadowing: set[str] = set()  # files (and links) of the layers above: they replace what lies below
    deleted: set[str] = set()  # whited-out paths: gone, with everything under them
    opaque: set[str] = set()  # folders made opaque above: their lower content is hidden
    for layer in reversed(layers):
        layer_display = f"{archive}!{layer}"
        info = members.get(layer)
        if info is None:
            walker.finding(
                NOT_ANALYSED, layer_display, f"image layer {layer} is listed but not in {archive}", "missing-layer"
            )
            continue
        source = _layer_source(walker, layer_display, open_source, info)
        if source is None:
            continue
        open_layer, seekable = source
        files: set[str] = set()
        whiteouts: set[str] = set()
        opaques: set[str] = set()
        try:
            for entry in tar_entries(walker, layer_display, open_layer, seekable=seekable, strict_end=False):
                path = _norm(entry.info.name)
                if not path:
                    continue
                parent, _, base = path.rpartition("/")
                if base == _OPAQUE:
                    opaques.add(parent)
                    continue
                if base.startswith(_WHITEOUT):
                    whiteouts.add(f"{parent}/{base[len(_WHITEOUT) :]}" if parent else base[len(_WHITEOUT) :])
                    continue
                if _hidden(path, shadowing, deleted, opaque):
                    continue
                if not entry.info.isdir():
                    files.add(path)
                display = f"{archive}!{path}"
                if ".." in entry.info.name.split("/"):
                    walker.check_member_name(entry.info.name, display)
                if entry.info.isreg() and accept_tar_member(walker, entry, display):
                    walker.handle(tar_member_file(walker, entry, display, depth))
        except ArchiveLimitError:
            return
        except CorruptStreamError as exc:
            walker.report_corrupt(layer_display, str(exc))
        shadowing |= files
        deleted |= whiteouts
        opaque |= opaques


def _layer_source(
    walker: Walker, display: str, open_source: Opener, info: tarfile.TarInfo
) -> tuple[Opener, bool] | None:
    start, size = info.offset_data, info.size

    def raw() -> BinaryIO:
        return buffered(Slice(open_source(), start, size, owns=False))

    with raw() as fh:
        head = read_exactly(fh, HEAD_BYTES)
    kind = sniff(head)
    if kind is Kind.TAR or not head:
        stream = raw()  # one shared random-access view of the layer for its tar reader and its members
        return (lambda: stream), True
    if kind in COMPRESSED:
        ledger = Ledger()

        def unpacked() -> BinaryIO:
            return decompressed(kind, raw(), walker.budget, display, size, walker.report_corrupt, ledger)

        try:
            unpacked().close()
        except UnsupportedCompression as exc:
            walker.finding(NOT_ANALYSED, display, f"image layer {display} was not analysed: {exc}", kind.value)
            return None
        return unpacked, False
    walker.report_corrupt(display, f"image layer is not a tar (content looks like {kind.value})")
    return None


def _hidden(path: str, shadowing: set[str], deleted: set[str], opaque: set[str]) -> bool:
    if path in shadowing or path in deleted:
        return True
    parts = path.split("/")
    for i in range(1, len(parts)):
        ancestor = "/".join(parts[:i])
        if ancestor in deleted or ancestor in opaque or ancestor in shadowing:
            return True
    return "" in opaque  # an opaque marker at the image root hides every lower file


def _resolve(name: str, links: dict[str, str], members: dict[str, tarfile.TarInfo]) -> str | None:
    """The regular member a link in the image tarball leads to (relative symlinks, hard links), or None."""
    for _ in range(8):
        if name in members:
            return name
        target = links.get(name)
        if target is None:
            return None
        parent = name.rpartition("/")[0]
        joined = posixpath.normpath(posixpath.join(parent, target)) if not target.startswith("/") else target
        hard = _norm(target)
        name = hard if hard in members else _norm(joined)
    return None


def _norm(name: str) -> str:
    """Layer and manifest paths as the container sees them: no leading ``./`` or ``/``."""
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/").rstrip("/")
