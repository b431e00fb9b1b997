"""Retention: remove everything older than ``settings.retention_days`` (SPEC §7).

The scheduler runs :func:`run_cleanup` daily at 02:00 by default. It removes
records, call trees, metric documents, metric batches and analyses through
:meth:`Store.delete_older_than`; report documents created before the cutoff
together with their folders under ``$PYSTRUMENT_HOME/reports/``; report
folders no document refers to whose files are all older than the cutoff
(left by a crash); and the scheduler's own run history. Reports still
running are never touched. TTL indexes could do part of this on a real
MongoDB, but the embedded server has none, so this job is what retention
relies on.
"""

from __future__ import annotations

import logging
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pystrument_lab.store import JOB_RUNS, REPORTS, Store, as_utc, utcnow

logger = logging.getLogger("pystrument_lab.reports.cleanup")

__all__ = ["run_cleanup"]


def run_cleanup(
    store: Store | None = None,
    *,
    retention_days: int | None = None,
    home: Path | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Delete what is older than the retention; return the counts per collection."""
    from pystrument_lab.settings import get_settings

    settings = get_settings()
    if store is None:
        from pystrument_lab.store import connect

        store = connect()
    days = retention_days if retention_days is not None else settings.retention_days
    reports_root = Path(home or settings.home) / "reports"
    cutoff = as_utc(now or utcnow()) - timedelta(days=days)
    removed: dict[str, Any] = dict(store.delete_older_than(cutoff))
    removed[REPORTS], removed["report_folders"] = _delete_reports(store, reports_root, cutoff)
    removed["report_folders"] += _delete_orphan_folders(store, reports_root, cutoff)
    removed[JOB_RUNS] = store.delete_job_runs_before(cutoff)
    logger.info("retention %sd (before %s): removed %s", days, cutoff.isoformat(), removed)
    return {"cutoff": cutoff, "retention_days": days, "removed": removed}


def _delete_reports(store: Store, root: Path, cutoff: datetime) -> tuple[int, int]:
    documents = store.finished_reports_before(cutoff)
    folders = 0
    for document in documents:
        folder = document.get("folder")
        if folder and _inside(Path(folder), root) and Path(folder).is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            folders += 1
    ids = [document["_id"] for document in documents]
    return store.delete_reports(ids), folders


def _delete_orphan_folders(store: Store, root: Path, cutoff: datetime) -> int:
    """Folders under ``reports/<project>/`` no document points at, with only old files."""
    if not root.is_dir():
        return 0
    known = {Path(folder).resolve() for folder in store.report_folders()}
    threshold = cutoff.timestamp()
    removed = 0
    for project_dir in (p for p in root.iterdir() if p.is_dir()):
        for folder in (p for p in project_dir.iterdir() if p.is_dir()):
            if folder.resolve() in known:
                continue
            times = [path.stat().st_mtime for path in folder.rglob("*")] or [folder.stat().st_mtime]
            if max(times) < threshold:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        if not any(project_dir.iterdir()):
            project_dir.rmdir()
    return removed


def _inside(path: Path, root: Path) -> bool:
    """Only folders of the report archive are ever deleted."""
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True
