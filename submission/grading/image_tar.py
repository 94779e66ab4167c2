"""Reading one file of an image saved with ``docker save``, without Docker: what ``enqueue`` needs to learn
a submission's profile from its ``aicrowd.json`` on a host that has no Docker daemon.

A saved image is a tar holding ``manifest.json`` (its layers, bottom first) and each layer as a tar of
its own (Docker's legacy layout and the OCI layout both list them there). The file is taken from the
topmost layer that has it, unless a layer above deleted it (a ``.wh.`` whiteout, or an opaque folder).
Only tar headers are read while searching: a layer of gigabytes is skipped over, not read.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from pathlib import Path

from ..errors import ConfigError

MANIFEST = "manifest.json"
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


def _layers(outer: tarfile.TarFile, where: str) -> list[str]:
    try:
        handle = outer.extractfile(MANIFEST)
        manifest = json.loads(handle.read()) if handle else None
    except (KeyError, json.JSONDecodeError, UnicodeDecodeError):
        manifest = None
    if not isinstance(manifest, list) or not manifest or not isinstance(manifest[0].get("Layers"), list):
        raise ConfigError(f"{where}: no {MANIFEST} listing layers; is it a `docker save` tarball (python -m "
                          "submission docker build --save FILE)?")
    return manifest[0]["Layers"]


def _hiding(inner: str) -> set[str]:
    """The whiteouts that delete ``inner`` from the layers below: of the file, of a parent, a parent made opaque."""
    names, path = set(), inner
    while path:
        folder, name = posixpath.split(path)
        names |= {posixpath.join(folder, WHITEOUT + name), posixpath.join(folder, OPAQUE)}
        path = folder
    return names


def _look_in_layer(layer: tarfile.TarFile, inner: str) -> tuple[str, bytes | None] | None:
    """('file', bytes) when the layer has ``inner``; ('deleted', None) when it hides it from the layers
    below; None when it says nothing about it."""
    hiding, deleted = _hiding(inner), False
    for member in layer:
        path = posixpath.normpath(member.name.lstrip("/")).removeprefix("./")
        if path == inner and member.isfile():
            handle = layer.extractfile(member)
            return "file", handle.read() if handle else b""
        deleted = deleted or path in hiding
    return ("deleted", None) if deleted else None


def read_from_saved_image(path: str | Path, inner: str) -> str | None:
    """The text of ``inner`` (an absolute path in the image) in the saved image at ``path``, or None."""
    path = Path(path)
    inner = posixpath.normpath(inner).lstrip("/")
    try:
        with tarfile.open(path, "r:*") as outer:
            for name in reversed(_layers(outer, str(path))):
                handle = outer.extractfile(name)
                if handle is None:
                    continue
                with tarfile.open(fileobj=handle, mode="r:*") as layer:
                    found = _look_in_layer(layer, inner)
                if found is not None:
                    kind, data = found
                    return data.decode("utf-8") if kind == "file" and data is not None else None
    except (tarfile.TarError, OSError, KeyError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable `docker save` tarball ({exc})") from None
    return None
