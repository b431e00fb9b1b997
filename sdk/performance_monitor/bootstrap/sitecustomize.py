"""Run at interpreter start-up when ``pystrument-run`` put this directory on ``PYTHONPATH``.

Installs the SDK's import hook (:func:`performance_monitor.autoinstrument.install`),
then runs the ``sitecustomize`` this one shadows, if there is one, so a
site's own start-up code keeps working.
"""

import os
import sys


def _start() -> None:
    try:
        from performance_monitor.autoinstrument import install
    except Exception as exc:  # another interpreter, without the SDK installed
        sys.stderr.write(
            f"performance_monitor: the app runs unmonitored: cannot import the SDK ({exc})\n"
        )
        return
    try:
        install()
    except Exception as exc:
        sys.stderr.write(f"performance_monitor: the app runs unmonitored: {exc!r}\n")


def _run_shadowed_sitecustomize() -> None:
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    path = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


_start()
_run_shadowed_sitecustomize()
