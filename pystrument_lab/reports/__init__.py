"""Reports and scheduled work: papermill report notebooks, their tables, the
schedule, the scheduler, the retention cleanup and their commands.

Modules: ``runner`` (run a report notebook, export HTML, the archive),
``tables`` (HTML tables and KPI tiles the report notebooks show),
``schedule`` (the schedule file), ``scheduler`` (APScheduler with locks in
the store), ``cleanup`` (retention), ``overview`` (what is scheduled, running
and finished: ``pystrument jobs`` and the dashboard) and ``commands`` (the
CLI: ``reports run|list``, ``scheduler``, ``jobs``).

Importing this package is cheap: papermill, nbconvert and APScheduler load
only when a report runs or a scheduler starts.
"""

from __future__ import annotations

from pystrument_lab.reports.runner import (
    TEMPLATES_DIR,
    ensure_kernel,
    export_html,
    list_reports,
    report_dir,
    resolve_date,
    resolve_template,
    run_report,
    script_safe,
    templates_dir,
)

__all__ = [
    "TEMPLATES_DIR",
    "ensure_kernel",
    "export_html",
    "list_reports",
    "report_dir",
    "resolve_date",
    "resolve_template",
    "run_report",
    "script_safe",
    "templates_dir",
]
