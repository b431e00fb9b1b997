"""``pystrument worker``: claim analysis jobs, run them, store the results.

One job at a time per process (the original's prefetch 1). While a job runs
a thread renews its lease every third of the lease; the job gets
``time_limit`` seconds (5 minutes by default, the original's task limit),
enforced with ``SIGALRM`` in the main thread. A killed worker loses nothing:
its lease expires and another worker claims the job again, up to
``MAX_ATTEMPTS`` claims. ``queues`` limits a worker to some queues
(:data:`~pystrument_lab.analysis.jobs.QUEUES`); ``pystrument worker``
recycles its process every ``--recycle-after`` jobs (100 by default, the
original's limit), see :mod:`pystrument_lab.analysis.commands`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pystrument_lab.analysis import jobs
from pystrument_lab.analysis.config import AIConfig, load_config
from pystrument_lab.errors import ErrorCode, PystrumentError
from pystrument_lab.reports.scheduler import HEARTBEAT_SECONDS
from pystrument_lab.store import Store

__all__ = ["DEFAULT_LEASE", "TIME_LIMIT", "execute_job", "run_worker"]

logger = logging.getLogger("pystrument_lab.analysis")

DEFAULT_LEASE = 60.0
TIME_LIMIT = 300.0


class JobTimeLimit(Exception):
    pass


def execute_job(store: Store, job: Mapping[str, Any], config: AIConfig) -> dict[str, Any]:
    """Run one job's analysis; the outcome to store (never raises for bad input)."""
    from pystrument_lab.analysis import runner

    target = job.get("target") or {"kind": "record"}
    project_key = job["project_key"]
    try:
        if target.get("kind") == "endpoint":
            profile = runner.endpoint_profile(
                store,
                project_key,
                str(job.get("route") or target.get("route")),
                method=target.get("method"),
                app_version=target.get("app_version"),
            )
        else:
            key = job.get("record_key") or job["trace_id"]  # jobs queued before record keys
            profile = runner.record_profile(store, str(key), project_key)
    except PystrumentError as exc:
        return _failure(exc.message, exc.code)
    return runner.run_analysis(
        profile,
        service=job.get("service"),
        model=job.get("model"),
        config=config,
        memory_threshold_mb=runner.memory_threshold(store, project_key),
    )


def _failure(message: str, code: int = ErrorCode.SYSTEM_ERROR) -> dict[str, Any]:
    return {
        "status": jobs.FAILED,
        "analysis_results": None,
        "error": {"code": int(code), "message": message},
    }


class _Deadline:
    """``SIGALRM`` after ``seconds`` raises :class:`JobTimeLimit`; ``expired`` records it.

    Libraries may catch and wrap the exception (litellm does), so the caller
    checks ``expired`` rather than relying on the exception arriving.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._previous: Any = None
        self._armed = threading.current_thread() is threading.main_thread() and hasattr(
            signal, "SIGALRM"
        )

    def _expire(self, *_: Any) -> None:
        self.expired = True
        raise JobTimeLimit()

    def __enter__(self) -> _Deadline:
        if self._armed:
            self._previous = signal.signal(signal.SIGALRM, self._expire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *_: Any) -> None:
        if self._armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)


def _renew_until(store: Store, job: Mapping[str, Any], lease: float, done: threading.Event) -> None:
    while not done.wait(lease / 3):
        try:
            if not jobs.renew_lease(store, job, lease):
                logger.warning("lost the lease on analysis %s", job["_id"])
                return
        except Exception:  # the store may blip; the next renewal retries
            logger.warning("could not renew the lease on analysis %s", job["_id"])


def process_one(
    store: Store,
    worker: str,
    *,
    lease: float,
    time_limit: float,
    config: AIConfig,
    queues: Sequence[str] | None = None,
) -> dict[str, Any] | None:
    """Claim and run one job; the job's final state, or None when there was none."""
    job = jobs.claim_job(store, worker, lease, queues)
    if job is None:
        return None
    if job.get("attempts", 1) > jobs.MAX_ATTEMPTS:
        outcome = _failure(
            f"given up after {jobs.MAX_ATTEMPTS} attempts: the workers running it died"
        )
    else:
        done = threading.Event()
        renewer = threading.Thread(target=_renew_until, args=(store, job, lease, done), daemon=True)
        renewer.start()
        deadline = _Deadline(time_limit)
        try:
            with deadline:
                outcome = execute_job(store, job, config)
        except JobTimeLimit:
            pass
        except Exception as exc:
            logger.exception("analysis %s failed", job["_id"])
            outcome = _failure(f"unexpected error: {type(exc).__name__}: {exc}")
        finally:
            done.set()
            renewer.join()
        if deadline.expired:
            outcome = _failure(f"the analysis exceeded its time limit of {time_limit:g} s")
    stored = jobs.finish_job(store, job, outcome)
    return {
        "analysis_id": str(job["_id"]),
        "task_id": job["task_id"],
        "status": outcome["status"],
        "stored": stored,
        "worker": worker,
        "queue": job.get("queue"),
        "attempts": job.get("attempts", 1),
    }


def run_worker(
    store: Store,
    *,
    once: bool = False,
    max_jobs: int | None = None,
    lease: float = DEFAULT_LEASE,
    time_limit: float = TIME_LIMIT,
    poll: float = 0.5,
    worker_id: str | None = None,
    queues: Sequence[str] | None = None,
    config: AIConfig | None = None,
    report: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Process jobs until stopped; ``once`` stops when the queue is empty. Returns jobs run."""
    worker = worker_id or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
    config = config or load_config()
    done = 0
    beaten = 0.0
    try:
        while not should_stop() and (max_jobs is None or done < max_jobs):
            if time.monotonic() - beaten >= HEARTBEAT_SECONDS:
                beaten = _beat(store, worker, queues)
            result = process_one(
                store, worker, lease=lease, time_limit=time_limit, config=config, queues=queues
            )
            if result is None:
                if once:
                    break
                time.sleep(poll)
                continue
            done += 1
            (report or _log)(result)
    finally:
        with contextlib.suppress(Exception):
            store.retire("worker", worker)
    return done


def _beat(store: Store, worker: str, queues: Sequence[str] | None) -> float:
    """Publish this worker as alive (``pystrument doctor`` reads it); when it was done."""
    try:
        store.beat(
            "worker",
            worker,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=list(queues) if queues else list(jobs.QUEUES),
        )
    except Exception:  # the store may blip; the next loop retries
        logger.warning("could not publish the worker heartbeat")
        return 0.0
    return time.monotonic()


def _log(result: dict[str, Any]) -> None:
    print(json.dumps(result), flush=True)
