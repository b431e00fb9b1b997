"""Workers as real processes: claims are exclusive, leases expire, nothing is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pystrument_lab.analysis import jobs
from pystrument_lab.analysis.config import load_config
from pystrument_lab.analysis.worker import process_one
from pystrument_lab.store import Store
from tests.integration.analysis.fake_llm import VALID_ANSWER, fake_llm, write_config
from tests.utils import trees

PROJECT = "pk_workers"


def queue_records(store: Store, count: int) -> list[dict[str, Any]]:
    records = [trees.cpu_record() for _ in range(count)]
    store.insert_records(PROJECT, records)
    return [
        jobs.create_job(store, PROJECT, trace_id=r["trace_id"], service="rules") for r in records
    ]


def worker(store: Store, tmp_path: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    environment = {
        **os.environ,
        "PYSTRUMENT_MONGODB_URL": store.url,
        "PYSTRUMENT_DATABASE": store.db.name,
        "PYSTRUMENT_HOME": str(tmp_path),
        **env,
    }
    environment.pop("PYSTRUMENT_AI_CONFIG", None) if "PYSTRUMENT_AI_CONFIG" not in env else None
    command = [sys.executable, "-m", "pystrument_lab.cli", "worker", "--poll", "0.1", *args]
    return subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_two_workers_complete_fifty_jobs_exactly_once(store: Store, tmp_path: Path) -> None:
    queued = queue_records(store, 50)
    workers = [worker(store, tmp_path, "--once", "--worker-id", f"w{i}") for i in range(2)]
    outputs = [w.communicate(timeout=240) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [err[-2000:] for _, err in outputs]
    done = [
        json.loads(line)
        for out, _ in outputs
        for line in out.splitlines()
        if line.startswith('{"analysis_id"')
    ]
    ids = [d["analysis_id"] for d in done]
    assert sorted(ids) == sorted(job["id"] for job in queued)  # every job once, none twice
    assert all(d["stored"] and d["status"] == "completed" for d in done)
    stored = list(store.analyses.find({"project_key": PROJECT}))
    assert len(stored) == 50
    assert {doc["status"] for doc in stored} == {"completed"}
    assert {doc["attempts"] for doc in stored} == {1}
    assert {doc["worker"] for doc in stored} <= {"w0", "w1"}
    assert all(
        doc["analysis_results"]["bottleneck_analysis"][0]["function"] == "compute_report_statistics"
        for doc in stored
    )


def test_a_killed_worker_loses_nothing(store: Store, tmp_path: Path) -> None:
    with fake_llm() as llm:
        llm.script((200, json.dumps(VALID_ANSWER), 2.5))
        config = write_config(tmp_path / "ai.yaml", llm.url, timeout=20)
        [job] = [
            jobs.create_job(store, PROJECT, trace_id=r["trace_id"])
            for r in [trees.cpu_record()]
            if store.insert_records(PROJECT, [r])
        ]
        first = worker(  # one process, no supervisor: the process doing the job dies
            store,
            tmp_path,
            "--lease",
            "2",
            "--recycle-after",
            "0",
            "--worker-id",
            "doomed",
            PYSTRUMENT_AI_CONFIG=config,
        )
        deadline = time.monotonic() + 60
        while not llm.requests and time.monotonic() < deadline:  # the job is mid-analysis
            time.sleep(0.05)
        running = store.analyses.find_one({"task_id": job["task_id"]})
        assert running["status"] == "running", running["error"]
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
        second = worker(
            store,
            tmp_path,
            "--lease",
            "2",
            "--max-jobs",
            "1",
            "--worker-id",
            "survivor",
            PYSTRUMENT_AI_CONFIG=config,
        )
        out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err[-2000:]
    [line] = [line for line in out.splitlines() if line.startswith('{"analysis_id"')]
    assert json.loads(line)["analysis_id"] == job["id"]
    stored = store.analyses.find_one({"task_id": job["task_id"]})
    assert stored["status"] == "completed"
    assert stored["worker"] == "survivor"
    assert stored["attempts"] == 2
    assert stored["analysis_results"]["performance_score"] == VALID_ANSWER["performance_score"]
    assert len(llm.requests) == 2


def test_a_renewed_lease_is_not_stolen_and_the_time_limit_holds(
    store: Store, tmp_path: Path, monkeypatch: Any
) -> None:
    with fake_llm() as llm:
        llm.script((200, json.dumps(VALID_ANSWER), 2.0))
        monkeypatch.setenv(
            "PYSTRUMENT_AI_CONFIG", write_config(tmp_path / "ai.yaml", llm.url, timeout=20)
        )
        config = load_config()
        record = trees.cpu_record()
        store.insert_records(PROJECT, [record])
        jobs.create_job(store, PROJECT, trace_id=record["trace_id"])
        results: list[Any] = []
        runner = threading.Thread(
            target=lambda: results.append(
                process_one(store, "a", lease=0.6, time_limit=60, config=config)
            )
        )
        runner.start()
        while not llm.requests:  # claimed by "a" and mid-analysis
            time.sleep(0.02)
        stolen = []
        while runner.is_alive():  # the lease (0.6 s) is renewed through the 2 s analysis
            stolen.append(jobs.claim_job(store, "thief", 0.6))
            time.sleep(0.1)
        runner.join()
        assert stolen and not any(stolen)
        assert results[0]["status"] == "completed" and results[0]["stored"]

        record = trees.cpu_record()
        store.insert_records(PROJECT, [record])
        job = jobs.create_job(store, PROJECT, trace_id=record["trace_id"])
        result = process_one(store, "a", lease=5, time_limit=0.5, config=config)
    assert result is not None and result["status"] == "failed"
    stored = store.analyses.find_one({"task_id": job["task_id"]})
    assert stored["error"]["message"] == "the analysis exceeded its time limit of 0.5 s"


def test_priorities_and_the_in_progress_guard(store: Store) -> None:
    records = [trees.cpu_record() for _ in range(3)]
    store.insert_records(PROJECT, records)
    low = jobs.create_job(store, PROJECT, trace_id=records[0]["trace_id"], priority=1)
    high = jobs.create_job(store, PROJECT, trace_id=records[1]["trace_id"], priority=9)
    normal = jobs.create_job(store, PROJECT, trace_id=records[2]["trace_id"])
    order = [str(jobs.claim_job(store, "w", 30)["_id"]) for _ in range(3)]  # type: ignore[index]
    assert order == [high["id"], normal["id"], low["id"]]
    assert jobs.claim_job(store, "w", 30) is None
    try:
        jobs.create_job(store, PROJECT, trace_id=records[0]["trace_id"])
    except Exception as exc:  # noqa: BLE001
        assert getattr(exc, "code", None) == 20006
        assert exc.data["analysis_id"] == low["id"]  # type: ignore[attr-defined]
    else:
        raise AssertionError("expected 20006")


def test_queues_separate_single_and_batch_jobs(store: Store) -> None:
    records = [trees.cpu_record() for _ in range(3)]
    store.insert_records(PROJECT, records)
    single = jobs.create_job(store, PROJECT, trace_id=records[0]["trace_id"])
    batch = [
        jobs.create_job(store, PROJECT, trace_id=r["trace_id"], batch_id="b1", priority=9)
        for r in records[1:]
    ]
    assert (single["queue"], {job["queue"] for job in batch}) == ("analysis", {"batch"})
    # a worker on the analysis queue takes the single job although the batch ranks higher
    claimed = jobs.claim_job(store, "a", 30, ["analysis"])
    assert claimed is not None and str(claimed["_id"]) == single["id"]
    assert jobs.claim_job(store, "a", 30, ["analysis"]) is None
    claimed = jobs.claim_job(store, "b", 30, ["batch"])
    assert claimed is not None and claimed["queue"] == "batch"
    jobs.finish_job(store, claimed, {"status": "completed"})
    stats = jobs.queue_stats(store)
    assert stats["queues"] == {
        "analysis": {"pending": 0, "running": 1, "completed": 0, "failed": 0},
        "batch": {"pending": 1, "running": 0, "completed": 1, "failed": 0},
    }
    assert stats["workers"] == {"a": 1}


def test_the_worker_process_is_recycled_after_n_jobs(store: Store, tmp_path: Path) -> None:
    queued = queue_records(store, 5)
    supervisor = worker(store, tmp_path, "--recycle-after", "2")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if store.analyses.count_documents({"project_key": PROJECT, "status": "completed"}) == 5:
                break
            time.sleep(0.2)
    finally:
        supervisor.send_signal(signal.SIGTERM)
        out, err = supervisor.communicate(timeout=60)
    assert supervisor.returncode == 0, err[-2000:]
    stored = list(store.analyses.find({"project_key": PROJECT}))
    assert sorted(str(doc["_id"]) for doc in stored) == sorted(job["id"] for job in queued)
    assert {doc["status"] for doc in stored} == {"completed"}
    # worker ids carry the process id: jobs 1-2, 3-4 and 5 ran in three processes
    processes = [doc["worker"].split(":")[1] for doc in stored]
    assert sorted(processes.count(pid) for pid in set(processes)) == [1, 2, 2]
    assert out.count("worker: recycled after 2 jobs") == 2
    assert supervisor.pid not in {int(pid) for pid in processes}
