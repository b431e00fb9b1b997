"""The background sender: one daemon thread per process between the app and the collector.

- :meth:`Sender.submit` never blocks: the queue is bounded and drops its
  oldest item when full (counted in ``dropped``).
- The thread batches records by ``batch_size``/``batch_timeout``, builds them
  (tree flattening and serialisation happen here, off the request thread),
  flushes the endpoint aggregates every ``metrics_interval`` and polls the
  remote configuration every ``config_poll_interval``.
- Retries with exponential backoff and jitter on connection errors and 5xx;
  a 4xx is final. Metric batches carry a ``batch_id`` and records a
  ``trace_id`` and ``span_id``, so a retried send is deduplicated by the collector.
- ``atexit`` flushes with a deadline; after ``fork`` the child starts a fresh
  thread with an empty queue (the parent still sends its own data).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from ..utils.config import Config
from ..utils.logger import RateLimitedLogger, capture_internal_exceptions, logger
from .aggregates import EndpointAggregates
from .transport import COLLECT_PATH, CONFIG_PATH, METRICS_PATH, Response, Transport, backoff_delay


class PendingRecord(Protocol):
    def build(self) -> dict[str, Any] | None: ...


COUNTERS = ("sent", "dropped", "retried", "failed", "records_sent", "metric_batches_sent")
#: The header of the remote-config poll that reports this process's trouble to the collector.
REPORT_HEADER = "X-Pystrument-SDK-Report"


class Sender:
    def __init__(
        self,
        config: Config,
        aggregates: EndpointAggregates,
        *,
        on_remote_config: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        assert config.project_key
        self.config = config
        self.aggregates = aggregates
        self.on_remote_config = on_remote_config
        self.transport = Transport(config.api_endpoint, config.project_key, config.request_timeout)
        self._stats_log = RateLimitedLogger(60.0)
        self._closed = False
        self._reset_process_state()
        os.register_at_fork(after_in_child=self._reset_process_state)
        atexit.register(self.close)

    def _reset_process_state(self) -> None:
        self._pid = os.getpid()
        self.counters = dict.fromkeys(COUNTERS, 0)
        self._queue: deque[PendingRecord] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._flush_requested = False
        self._flushed = threading.Event()
        self._stopping = False
        self.last_error: tuple[float, str] | None = None  # (monotonic time, what failed)
        if hasattr(self, "aggregates"):
            self.aggregates.reset()

    # -- called from the app's threads -------------------------------------------------

    def ensure_started(self) -> None:
        if (self._thread is None or self._pid != os.getpid()) and not self._closed:
            if self._pid != os.getpid():
                self._reset_process_state()
            with self._cond:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="performance_monitor.sender", daemon=True
                    )
                    self._thread.start()

    def submit(self, item: PendingRecord) -> bool:
        """Queue a record; False when the queue was full and the oldest item was dropped."""
        if not self.config.async_send:
            self._send_records([item])
            return True
        self.ensure_started()
        with self._cond:
            full = len(self._queue) >= self.config.max_queue_size
            if full:
                self._queue.popleft()
                self.counters["dropped"] += 1
            self._queue.append(item)
            # Wake the thread on the first item (to start the batch_timeout clock) and when full.
            if len(self._queue) == 1 or len(self._queue) >= self.config.batch_size:
                self._cond.notify()
        return not full

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued plus the current aggregates; True if done in time."""
        if self._thread is None or not self._thread.is_alive():
            self._drain_once(deadline=time.monotonic() + (timeout or self.config.shutdown_timeout))
            return True
        with self._cond:
            self._flushed.clear()
            self._flush_requested = True
            self._cond.notify()
        return self._flushed.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Flush within ``timeout`` (default ``shutdown_timeout``) and stop the thread."""
        if self._closed:
            return
        atexit.unregister(self.close)
        with capture_internal_exceptions():
            if self._pid == os.getpid():
                self.flush(self.config.shutdown_timeout if timeout is None else timeout)
        self._closed = True
        with self._cond:
            self._stopping = True
            self._cond.notify()

    def stats(self) -> dict[str, int]:
        return {**self.counters, "queued": len(self._queue)}

    # -- the worker thread ---------------------------------------------------------------

    def _run(self) -> None:
        config = self.config
        now = time.monotonic()
        next_metrics = now + config.metrics_interval
        # Ask for the remote config right away, then every config_poll_interval.
        next_poll = now if config.remote_config else float("inf")
        oldest_wait = now
        while True:
            with self._cond:
                while True:
                    now = time.monotonic()
                    if self._stopping or self._flush_requested:
                        break
                    if len(self._queue) >= config.batch_size:
                        break
                    if not self._queue:
                        oldest_wait = now
                    deadline = min(next_metrics, next_poll)
                    if self._queue:
                        deadline = min(deadline, oldest_wait + config.batch_timeout)
                    if now >= deadline:
                        break
                    self._cond.wait(deadline - now)
                stopping, flushing = self._stopping, self._flush_requested
            if stopping:
                return
            with capture_internal_exceptions():
                if flushing:
                    self._drain_once(deadline=time.monotonic() + config.shutdown_timeout)
                    next_metrics = time.monotonic() + config.metrics_interval
                    with self._cond:
                        self._flush_requested = False
                    self._flushed.set()
                    continue
                now = time.monotonic()
                if self._queue and (
                    len(self._queue) >= config.batch_size
                    or now >= oldest_wait + config.batch_timeout
                ):
                    self._send_records(self._take_batch())
                    oldest_wait = time.monotonic()
                if now >= next_metrics:
                    next_metrics = now + config.metrics_interval
                    self._send_metrics()
                if now >= next_poll:
                    next_poll = now + config.config_poll_interval
                    self._poll_config()
                self._log_stats()

    def _take_batch(self) -> list[PendingRecord]:
        with self._cond:
            count = min(len(self._queue), self.config.batch_size)
            return [self._queue.popleft() for _ in range(count)]

    def _drain_once(self, deadline: float) -> None:
        while self._queue and time.monotonic() < deadline:
            self._send_records(self._take_batch(), deadline=deadline)
        self._send_metrics(deadline=deadline)

    def _send_records(self, items: list[PendingRecord], deadline: float | None = None) -> None:
        records = []
        for item in items:
            with capture_internal_exceptions():
                record = item.build()
                if record is not None:
                    records.append(record)
        if records and self._post(COLLECT_PATH, {"records": records}, len(records), deadline):
            self.counters["records_sent"] += len(records)

    def _send_metrics(self, deadline: float | None = None) -> None:
        points = self.aggregates.drain()
        if points:
            payload = {"batch_id": uuid.uuid4().hex, "metrics": points}
            if self._post(METRICS_PATH, payload, 1, deadline):
                self.counters["metric_batches_sent"] += 1

    def _post(self, path: str, payload: Any, size: int, deadline: float | None) -> bool:
        config = self.config
        for attempt in range(config.max_retries + 1):
            response = self.transport.post_json(path, payload)
            if response.ok:
                self.counters["sent"] += size
                return True
            if not response.retryable or attempt == config.max_retries:
                break
            delay = backoff_delay(attempt, config.retry_backoff, config.retry_backoff_max)
            if deadline is not None and time.monotonic() + delay >= deadline:
                break
            if self._stopping:
                break
            self.counters["retried"] += 1
            time.sleep(delay)
        self.counters["failed"] += size
        self._log_failure(path, response)
        return False

    def _log_failure(self, path: str, response: Response) -> None:
        detail = response.body.get("msg") if isinstance(response.body, dict) else None
        status = f"HTTP {response.status}" if response.status else "no answer"
        self.last_error = (time.monotonic(), f"{path}: {status}{f': {detail}' if detail else ''}")
        self._stats_log.log(
            logging.WARNING,
            "performance_monitor: sending to %s%s failed (HTTP %s%s); stats %s",
            self.config.api_endpoint,
            path,
            response.status or "no answer",
            f": {detail}" if detail else "",
            self.stats(),
        )

    def _report(self) -> dict[str, Any] | None:
        """What went wrong in this process, for ``pystrument doctor``; None when nothing did."""
        counters = self.counters
        if not (counters["failed"] or counters["dropped"] or self.last_error):
            return None
        report: dict[str, Any] = {
            name: counters[name] for name in ("sent", "failed", "dropped", "retried")
        }
        if self.last_error is not None:
            report["last_error"] = self.last_error[1][:300]
            report["last_error_age"] = round(time.monotonic() - self.last_error[0], 1)
        return report

    def _poll_config(self) -> None:
        report = self._report()
        headers = {REPORT_HEADER: json.dumps(report)} if report else None
        response = self.transport.get_json(CONFIG_PATH, headers)
        body = response.body
        data = body.get("data") if isinstance(body, dict) else None
        if response.ok and isinstance(data, dict) and self.on_remote_config is not None:
            self.on_remote_config(data)

    def _log_stats(self) -> None:
        if self.counters["dropped"] or self.counters["failed"]:
            self._stats_log.log(logging.INFO, "performance_monitor: sender stats %s", self.stats())
        elif logger.isEnabledFor(logging.DEBUG):
            self._stats_log.log(logging.DEBUG, "performance_monitor: sender stats %s", self.stats())
