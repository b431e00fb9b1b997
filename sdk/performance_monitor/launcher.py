"""``pystrument-run COMMAND [ARGS...]``: run an unmodified Flask, Django or FastAPI app monitored.

Like ``ddtrace-run`` and ``opentelemetry-instrument``: the command is
executed in place of this process with :mod:`performance_monitor.bootstrap`
first on ``PYTHONPATH``, whose ``sitecustomize`` installs the SDK's import
hook in every Python process the command starts (gunicorn workers, uvicorn's
reloader and workers, Django's autoreloader). Configure it with
``PERFORMANCE_MONITOR_*`` (or ``PYSTRUMENT_*``) environment variables or a
``performance_config.yaml`` in the working directory. The configuration is
checked here first: when it is invalid or lacks a project key, one warning is
printed and the command runs unmonitored.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence

USAGE = """\
usage: pystrument-run COMMAND [ARGS...]

Runs COMMAND with the Pystrument SDK instrumenting Flask, Django and
FastAPI/Starlette apps, without code changes. Examples:

  PERFORMANCE_MONITOR_PROJECT_KEY=pk_... pystrument-run gunicorn -w 4 app:app
  PERFORMANCE_MONITOR_PROJECT_KEY=pk_... pystrument-run uvicorn main:app
  PERFORMANCE_MONITOR_PROJECT_KEY=pk_... pystrument-run python manage.py runserver
  PERFORMANCE_MONITOR_PROJECT_KEY=pk_... pystrument-run flask run

Settings: PERFORMANCE_MONITOR_<KEY> / PYSTRUMENT_<KEY> environment variables
(API_ENDPOINT, SAMPLING_RATE, SERVER_TIMING, ...) or performance_config.yaml.
"""


def child_environment(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` with the bootstrap directory first on ``PYTHONPATH`` (once)."""
    from .bootstrap import BOOTSTRAP_DIR

    entries = [e for e in environ.get("PYTHONPATH", "").split(os.pathsep) if e]
    entries = [BOOTSTRAP_DIR, *(e for e in entries if e != BOOTSTRAP_DIR)]
    return {**environ, "PYTHONPATH": os.pathsep.join(entries)}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"}:
        (sys.stdout if args else sys.stderr).write(USAGE)
        return 0 if args else 2
    executable = shutil.which(args[0])
    if executable is None:
        sys.stderr.write(f"pystrument-run: command not found: {args[0]}\n")
        return 127
    environ = dict(os.environ)
    from .autoinstrument import config_problem

    _, problem = config_problem()
    if problem is not None:
        sys.stderr.write(f"pystrument-run: WARNING: {args[0]} runs unmonitored: {problem}\n")
    else:
        environ = child_environment(environ)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(executable, args, environ)
    return 0  # pragma: no cover - execve does not return


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
