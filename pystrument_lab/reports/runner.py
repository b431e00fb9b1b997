"""Scheduled and on-demand reports: papermill runs of the notebooks in ``notebooks/reports/``.

:func:`run_report` executes a parameterised report notebook with papermill,
exports it to HTML with nbconvert (code cells hidden by default) and keeps
both under ``$PYSTRUMENT_HOME/reports/<project_key>/<report_id>/``. Every run
is a document in the ``reports`` collection::

    project_key, project_name, template, report_type, params,
    status (running | completed | failed), trigger ("manual", "schedule:<job>"),
    created_at, finished_at, duration (s), paths {notebook, html} or
    {failed_notebook}, error {ename, evalue, cell_index, message}, host, pid

A notebook that raises is a *failed* report: its partly executed notebook is
kept as ``<template>.failed.ipynb`` for debugging and no HTML is written, so
a half-finished report is never presented as a finished one. Files are
written under a temporary name and renamed when complete.

Report notebooks take the parameters ``project_key`` (name or key),
``start_date``, ``end_date`` (ISO 8601, resolved here from relative dates such
as ``-1d``, ``today`` or ``today-7d`` by :func:`resolve_date`),
``report_type``, ``mongodb_url`` and ``database``.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pystrument_lab.errors import ParameterError
from pystrument_lab.store import Store, as_utc, utcnow

__all__ = [
    "TEMPLATES_DIR",
    "ensure_kernel",
    "list_reports",
    "report_dir",
    "resolve_date",
    "resolve_template",
    "run_report",
]


def templates_dir(checkout: Path | None = None, prefix: Path | None = None) -> Path:
    """Where the report notebooks are: the repository's ``notebooks/reports/``
    (a checkout or an editable install), else where a wheel installed them
    (``<sys.prefix>/share/pystrument/reports``)."""
    in_checkout = (checkout or Path(__file__).resolve().parents[2]) / "notebooks" / "reports"
    installed = (prefix or Path(sys.prefix)) / "share" / "pystrument" / "reports"
    return in_checkout if in_checkout.is_dir() or not installed.is_dir() else installed


#: The report notebooks shipped with the product.
TEMPLATES_DIR = templates_dir()
KERNEL_NAME = "python3"
#: Per-cell limit, the original's 5-minute task time limit (SPEC §7).
CELL_TIMEOUT = 300

_RELATIVE = re.compile(r"^(now|today|yesterday)?\s*(?:([+-])\s*(\d+\s*[mhdw]))?$")


def resolve_date(text: str | datetime | None, *, now: datetime | None = None) -> datetime:
    """A point in time (UTC) from ISO 8601 or a relative expression.

    ``now``; ``today`` and ``yesterday`` (midnight UTC); an offset from now such
    as ``-1d``, ``-12h``, ``-2w``, ``-30m``; or an anchor plus an offset:
    ``today-7d``. ISO dates (``2026-11-01``) are midnight UTC.
    """
    now = as_utc(now or utcnow())
    if isinstance(text, datetime):
        return as_utc(text)
    value = (text or "now").strip().lower()
    match = _RELATIVE.match(value)
    if match and (match.group(1) or match.group(2)):
        from pystrument_lab.trends import parse_duration

        anchor, sign, offset = match.groups()
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        base = {"today": midnight, "yesterday": midnight - timedelta(days=1)}.get(anchor, now)
        if offset is None:
            return base
        delta = parse_duration(offset.replace(" ", ""))
        return base - delta if sign == "-" else base + delta
    try:
        return as_utc(datetime.fromisoformat(value.upper().replace("Z", "+00:00")))
    except ValueError:
        raise ParameterError(
            f"date {text!r} is not understood; use ISO 8601 (2026-11-01), now, today, "
            "yesterday, an offset like -1d / -12h / -2w, or today-7d"
        ) from None


def resolve_template(template: str | os.PathLike[str]) -> Path:
    """A template by name (``summary``, ``regression``) or as a path to a notebook."""
    path = Path(template)
    if path.suffix == ".ipynb" and path.exists():
        return path.resolve()
    candidate = TEMPLATES_DIR / f"{template}.ipynb"
    if candidate.exists():
        return candidate
    names = sorted(p.stem for p in TEMPLATES_DIR.glob("*.ipynb"))
    raise ParameterError(f"no report template {str(template)!r}; choose one of {names}")


def ensure_kernel() -> str:
    """Make sure the ``python3`` kernel exists for this interpreter; return its name.

    jupyter_client starts a kernel spec whose command is ``python`` with the
    current interpreter, so installing ipykernel's spec into ``sys.prefix`` is
    enough on a fresh machine.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    if KERNEL_NAME not in KernelSpecManager().find_kernel_specs():
        from ipykernel.kernelspec import install

        install(prefix=sys.prefix)
    return KERNEL_NAME


def report_dir(home: Path, project_key: str, report_id: str) -> Path:
    return Path(home) / "reports" / _safe(project_key) / report_id


def run_report(
    project: str,
    template: str | os.PathLike[str],
    start: str | datetime | None = "-1d",
    end: str | datetime | None = "now",
    *,
    report_type: str | None = None,
    params: Mapping[str, Any] | None = None,
    store: Store | None = None,
    home: Path | None = None,
    trigger: str = "manual",
    html: bool = True,
    show_code: bool = False,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Run a report notebook for ``project`` (name or key) over [start, end).

    Returns the final ``reports`` document (``status`` completed or failed);
    it raises only for arguments that are wrong before anything runs.
    """
    from pystrument_lab.settings import get_settings
    from pystrument_lab.store import connect

    store = store or connect()
    home = Path(home or get_settings().home).resolve()
    template_path = resolve_template(template)
    since, until = resolve_date(start, now=now), resolve_date(end, now=now)
    if since >= until:
        raise ParameterError(f"the report's start ({since}) must come before its end ({until})")
    found = store.find_project(project) or store.project_by_name(project)
    project_key = found["project_key"] if found else project
    parameters = {
        "project_key": project_key,
        "start_date": since.isoformat(),
        "end_date": until.isoformat(),
        "report_type": report_type or template_path.stem,
        "mongodb_url": store.url,
        "database": store.database_name,
        **dict(params or {}),
    }
    report_id = store.new_report_id()
    folder = report_dir(home, project_key, str(report_id))
    document = {
        "_id": report_id,
        "project_key": project_key,
        "project_name": found["name"] if found else None,
        "template": template_path.stem,
        "report_type": parameters["report_type"],
        "params": {k: v for k, v in parameters.items() if k not in ("mongodb_url",)},
        "start_date": since,
        "end_date": until,
        "status": "running",
        "trigger": trigger,
        "created_at": utcnow(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "folder": str(folder),
    }
    store.insert_report(document)
    started = time.monotonic()
    outcome = _execute(template_path, folder, parameters, html=html, show_code=show_code)
    store.finish_report(report_id, {**outcome, "duration": round(time.monotonic() - started, 3)})
    return store.get_report(report_id)  # type: ignore[return-value]


def _execute(
    template: Path, folder: Path, parameters: dict[str, Any], *, html: bool, show_code: bool
) -> dict[str, Any]:
    """Run papermill and nbconvert; the fields that finish the report document."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{template.stem}.ipynb"
    partial = folder / f".{template.stem}.partial.ipynb"
    try:
        papermill.execute_notebook(
            str(template),
            str(partial),
            parameters=parameters,
            kernel_name=ensure_kernel(),
            progress_bar=False,
            log_output=False,
            cwd=str(folder),
            execution_timeout=CELL_TIMEOUT,
        )
    except PapermillExecutionError as exc:
        return _failed(partial, folder, template, exc.ename, exc.evalue, exc.cell_index)
    except Exception as exc:  # kernel died, timeout, bad notebook: all failed reports
        return _failed(partial, folder, template, type(exc).__name__, str(exc), None)
    paths = {"notebook": str(final)}
    try:
        if html:
            target = folder / f"{template.stem}.html"
            temporary = folder / f".{template.stem}.partial.html"
            temporary.write_text(export_html(partial, show_code=show_code), encoding="utf-8")
            temporary.replace(target)
            paths["html"] = str(target)
    except Exception as exc:
        return _failed(partial, folder, template, type(exc).__name__, str(exc), None)
    partial.replace(final)
    return {"status": "completed", "paths": paths, "error": None}


def _failed(
    partial: Path,
    folder: Path,
    template: Path,
    ename: str,
    evalue: str,
    cell_index: int | None,
) -> dict[str, Any]:
    paths: dict[str, str] = {}
    if partial.exists():
        kept = folder / f"{template.stem}.failed.ipynb"
        partial.replace(kept)
        paths["failed_notebook"] = str(kept)
    where = f" in cell {cell_index}" if cell_index is not None else ""
    return {
        "status": "failed",
        "paths": paths,
        "error": {
            "ename": ename,
            "evalue": evalue,
            "cell_index": cell_index,
            "message": f"{ename}{where}: {evalue}",
        },
    }


def export_html(notebook: Path, *, show_code: bool = False) -> str:
    """An executed notebook as standalone HTML; code hidden unless ``show_code``.

    Cells tagged ``notebook-only`` (how-to notes for notebook users) are left out.
    """
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_cell_tags = ("notebook-only",)
    exporter = HTMLExporter(
        config=config,
        exclude_input=not show_code,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    node = nbformat.read(str(notebook), as_version=4)
    for cell in node.cells:
        for output in cell.get("outputs", ()):
            data = output.get("data") or {}
            if isinstance(data.get("application/javascript"), str):
                data["application/javascript"] = script_safe(data["application/javascript"])
    body, _ = exporter.from_notebook_node(node)
    return str(body)


_SCRIPT_BREAKERS = re.compile(r"<(/script|!--)", re.IGNORECASE)


def script_safe(javascript: str) -> str:
    r"""JavaScript that cannot end the ``<script>`` element the HTML export puts it in.

    Bokeh writes a figure's data (function names, routes: app-sent text) into
    the script as literals; a ``</script>`` inside one would end the element
    and turn the rest into markup. ``<\/script`` and ``<\!--`` mean the same
    inside a JavaScript string and nothing to the HTML parser.
    """
    return _SCRIPT_BREAKERS.sub(lambda m: "<\\" + m.group(1), javascript)


def list_reports(
    store: Store,
    *,
    project: str | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Reports, newest first, optionally of one project (name or key) or status."""
    project_key = None
    if project is not None:
        found = store.find_project(project) or store.project_by_name(project)
        project_key = found["project_key"] if found else project
    return store.list_reports(project_key=project_key, status=status, limit=limit)


def _safe(name: str) -> str:
    """A project key as a single, harmless path component."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip(".")
    return cleaned or "_"
