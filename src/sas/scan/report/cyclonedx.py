"""CycloneDX 1.6 JSON: an ML-aware SBOM of what the scanned package ships.

Written through ``cyclonedx-python-lib`` (the OWASP project's own library, in the ``scan`` extra) rather than by
hand: it owns the schema details (bom-refs, serial numbers, the 1.6 field set) and ships the JSON schemas the
tests validate against. It is imported inside :func:`render`, so other report formats never pay for it.

What goes in: the scan target as ``metadata.component``; our tool in ``metadata.tools``; every inventoried
Python package as a ``library`` with its purl (built from name and version when the analyzer gave none) and
SHA-256 where known; every model file as a ``machine-learning-model`` with its SHA-256, format and size; layers
and other inventoried files as ``file`` components. Findings are not part of an SBOM and stay in the other
formats; the document only carries their counts as properties.
"""

from __future__ import annotations

import re
from typing import Any

from sas import __version__
from sas.scan.findings import Component, ScanResult

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PEP503 = re.compile(r"[-_.]+")


def _purl(component: Component) -> Any:
    from packageurl import PackageURL

    if component.purl:
        try:
            return PackageURL.from_string(component.purl)
        except ValueError:
            pass  # fall back to what name and version say
    name = _PEP503.sub("-", component.name).lower()
    return PackageURL(type="pypi", name=name, version=component.version or None)


def _model_name(component: Component) -> str:
    """The file's name: a decompressed stream is reported as ``model.joblib![zlib]``, named ``[zlib]``."""
    if component.name.startswith("[") and "!" in component.path:
        outer = component.path.rsplit("!", 1)[0]
        return outer.rsplit("!", 1)[-1].rsplit("/", 1)[-1]
    return component.name


def _component(component: Component, bom_ref: str) -> Any:
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.component import Component as CdxComponent
    from cyclonedx.model.component import ComponentType

    hashes = []
    if _SHA256.match(component.sha256.lower()):
        hashes.append(HashType(alg=HashAlgorithm.SHA_256, content=component.sha256.lower()))
    properties = [Property(name="sas:path", value=component.path)] if component.path else []
    if component.size:
        properties.append(Property(name="sas:size", value=str(component.size)))
    if component.format:
        properties.append(Property(name="sas:format", value=component.format))
    if component.kind == "python-package":
        return CdxComponent(
            type=ComponentType.LIBRARY,
            name=component.name,
            version=component.version or None,
            purl=_purl(component),
            hashes=hashes,
            properties=properties,
            bom_ref=bom_ref,
        )
    if component.kind == "model":
        return CdxComponent(
            type=ComponentType.MACHINE_LEARNING_MODEL,
            name=_model_name(component),
            version=component.version or None,
            hashes=hashes,
            properties=properties,
            bom_ref=bom_ref,
        )
    properties.append(Property(name="sas:kind", value=component.kind))
    return CdxComponent(
        type=ComponentType.FILE,
        name=component.name,
        version=component.version or None,
        hashes=hashes,
        properties=properties,
        bom_ref=bom_ref,
    )


def render(result: ScanResult) -> str:
    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component as CdxComponent
    from cyclonedx.model.component import ComponentType
    from cyclonedx.output.json import JsonV1Dot6

    bom = Bom()
    target = CdxComponent(type=ComponentType.APPLICATION, name=result.target or "target", bom_ref="sas:target")
    bom.metadata.component = target
    bom.metadata.tools.components.add(
        CdxComponent(
            type=ComponentType.APPLICATION,
            group="serverless-ai-shield",
            name="sas",
            version=__version__,
            bom_ref="sas:tool",
        )
    )
    worst = result.worst()
    bom.metadata.properties.update(
        [
            Property(name="sas:files", value=str(result.stats.files)),
            Property(name="sas:findings", value=str(len(result.findings))),
            Property(name="sas:worst-severity", value=worst.value if worst else "none"),
            Property(name="sas:errors", value=str(len(result.errors))),
        ]
    )
    seen: set[str] = set()
    members = []
    for component in result.components:
        bom_ref = f"sas:{component.kind}:{component.path or component.name}"
        if component.kind == "python-package":
            bom_ref += f"@{component.version}"
        if bom_ref in seen:
            continue  # the same file reported twice (two analyzers, or a layer and its merged view)
        seen.add(bom_ref)
        member = _component(component, bom_ref)
        bom.components.add(member)
        members.append(member)
    bom.register_dependency(target, members)
    text: str = JsonV1Dot6(bom).output_as_string(indent=2)
    return text + "\n"
