"""Which frames are the application's, and where a request's tree reaches the application.

:func:`is_application_path` is the one rule: call trees, exception
tracebacks, SQL call sites and allocation sites all use it.
"""

from __future__ import annotations

import contextlib
import os
import site
import sys
import sysconfig
from functools import lru_cache
from typing import Any

# Frames of the SDK itself are never "application code", even in an editable install.
SDK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _library_dirs(prefix: str | None = None) -> tuple[str, ...]:
    """The standard library's and installed packages' directories, each ending in a separator.

    Those of this interpreter, or of one installed under ``prefix``.

    Directories rather than ``sys.prefix``: an application under the
    interpreter's prefix (``/usr/src/app`` with Python in ``/usr``) is still
    the application. ``scripts`` holds the console scripts installed packages
    generate (``bin/gunicorn``), the outermost frame of a served process.
    """
    bases = ("base", "platbase", "installed_base", "installed_platbase")
    paths = sysconfig.get_paths(vars=dict.fromkeys(bases, prefix) if prefix else None)
    keys = ("stdlib", "platstdlib", "purelib", "platlib", "scripts")
    dirs = {paths[key] for key in keys if key in paths}
    stdlib = paths.get("stdlib", "")
    if stdlib:  # a zipped standard library (python311.zip) beside the directory
        dirs.add(
            os.path.join(os.path.dirname(stdlib), "python{}{}.zip".format(*sys.version_info[:2]))
        )
    with contextlib.suppress(Exception):  # some embedded interpreters lack these
        dirs.update(site.getsitepackages([prefix] if prefix else None))
        dirs.add(site.getusersitepackages())
    dirs.add(SDK_DIR)
    return tuple(os.path.join(os.path.abspath(d), "") for d in dirs if d)


_LIBRARY_DIRS = _library_dirs()
_PACKAGE_DIRS = tuple(
    f"{sep}{name}{sep}" for name in ("site-packages", "dist-packages") for sep in {os.sep, "/"}
)


@lru_cache(maxsize=8192)
def is_application_path(file_path: str) -> bool:
    """Whether code in ``file_path`` is the application's, not Python's, a library's or the SDK's.

    Not application code: no file, synthetic names (``<frozen ...>``,
    ``<string>``, ``<built-in>``), the standard library (zipped or not), the
    SDK itself, installed packages' console scripts, and anything installed as
    a package: under this interpreter's
    package directories, or under any ``site-packages``/``dist-packages``
    directory (another environment, a ``--target`` install, an egg or zip
    within one). Application modules imported from a zip are application code.
    A relative path is taken from the working directory.

    Cached per path: it runs per frame of each sampled tree, per frame of a
    traceback, per frame walked to find a statement's call site and per
    allocating line.
    """
    if not file_path or file_path.startswith("<"):
        return False
    if file_path.startswith(_LIBRARY_DIRS):
        return False
    if not os.path.isabs(file_path) and os.path.abspath(file_path).startswith(_LIBRARY_DIRS):
        return False
    return not any(part in file_path for part in _PACKAGE_DIRS)


def application_root(nodes: list[dict[str, Any]]) -> int | None:
    """The ``call_id`` of the outermost application frame of a flat tree, or None.

    The shallowest node that is application code, the heaviest among equals:
    where a view can open, below the server's and framework's frames.
    """
    best: tuple[int, float, int] | None = None
    for node in nodes:
        if node.get("is_application"):
            key = (-node["depth"], node["duration"], -node["call_id"])
            if best is None or key > best:
                best = key
    return None if best is None else -best[2]
