from __future__ import annotations

import asyncio
import functools
import threading
from typing import Any

from performance_monitor.core.statements import (
    MAX_NORMALIZED_LENGTH,
    add_statement,
    normalize,
    statements_summary,
)


def test_literals_and_placeholders_become_question_marks() -> None:
    assert (
        normalize("SELECT  a FROM t\n WHERE id = 42 AND s = 'it''s' AND x IN (1, 2, 3)")
        == "SELECT a FROM t WHERE id = ? AND s = ? AND x IN (?)"
    )
    assert normalize("UPDATE t SET a = %s, b = %(b)s WHERE c = $1 AND d = :d") == (
        "UPDATE t SET a = ?, b = ? WHERE c = ? AND d = ?"
    )
    assert normalize("SELECT t2.c1, x::int FROM t2") == "SELECT t2.c1, x::int FROM t2"
    assert len(normalize("SELECT " + "a, " * 5000 + "b")) == MAX_NORMALIZED_LENGTH


def test_costliest_kept_and_the_rest_summed() -> None:
    statements: dict[str, list[object]] = {}
    for i in range(60):
        for _ in range(2):
            add_statement(statements, f"SELECT c{i} FROM t WHERE id = {i}", 0.001 * (i + 1))
    summary = statements_summary(statements, limit=50)
    items = summary["items"]
    assert len(items) == 50 and items[0]["statement"] == "SELECT c59 FROM t WHERE id = ?"
    assert items[0]["count"] == 2 and abs(items[0]["total_duration"] - 0.12) < 1e-9
    assert abs(items[0]["max_duration"] - 0.06) < 1e-9
    assert summary["other_statements"] == 10 and summary["other_count"] == 20
    assert abs(summary["other_duration"] - sum(0.002 * (i + 1) for i in range(10))) < 1e-9
    assert items[0]["call_site"]["function"] == "test_costliest_kept_and_the_rest_summed"


def test_a_comprehension_call_site_names_the_function_holding_it() -> None:
    statements: dict[str, list[object]] = {}

    def gather() -> None:
        [add_statement(statements, f"SELECT a FROM t WHERE id = {i}", 0.001) for i in range(3)]

    gather()
    [item] = statements_summary(statements)["items"]
    assert item["count"] == 3
    site = item["call_site"]
    assert site["function"] == "gather"
    # The line is the comprehension's own (where the statement ran).
    assert site["line"] == gather.__code__.co_firstlineno + 1


def test_fetches_count_in_the_statement_that_produced_the_rows() -> None:
    import sqlite3
    import time

    from performance_monitor.core.request import RequestState, reset_current, set_current
    from performance_monitor.core.rows import TimedRows, timed_rows

    def psi(value: int) -> int:
        time.sleep(0.005)
        return value

    connection = sqlite3.connect(":memory:")
    connection.create_function("psi", 1, psi)
    connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    connection.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(1, 11)])
    state = RequestState("GET", "/", True)
    token = set_current(state)
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT id FROM t WHERE psi(id) > 0")  # reads up to the first row
        execution = state.add_query("SELECT id FROM t WHERE psi(id) > 0", 0.005)
        rows = timed_rows(cursor, state, execution)
        assert isinstance(rows, TimedRows)
        rows.arraysize = 4  # set on the cursor itself
        assert cursor.arraysize == 4 and rows.description == cursor.description
        assert rows.fetchone() == (1,)
        assert rows.fetchmany() == [(2,), (3,), (4,), (5,)]
        assert [row[0] for row in rows] == [6, 7, 8, 9, 10]
        # 9 more rows read through the wrapper, 5 ms each
        assert execution.duration >= 0.005 + 9 * 0.005
        [entry] = state.statements.values()
        assert entry[1] == execution.duration == entry[2] == state.query_time
        cursor.execute("INSERT INTO t VALUES (11)")
        assert timed_rows(rows, state, None) is rows  # a later statement takes it over
        assert rows.fetchall() == []
        assert entry[1] == execution.duration
    finally:
        reset_current(token)
    assert timed_rows(cursor, state, None) is cursor


async def _kappa(statements: dict[str, list[Any]]) -> None:
    task = (asyncio.current_task(), threading.get_ident())
    loop = asyncio.get_running_loop()
    # As Django's async ORM does: the query runs in a worker thread while the task awaits it.
    await loop.run_in_executor(
        None, functools.partial(add_statement, statements, "SELECT a FROM t", 0.0, task)
    )
    await loop.run_in_executor(
        None, functools.partial(add_statement, statements, "SELECT b FROM t", 0.0)
    )
    # The worker may run before the task suspends: its frames are then on the loop's thread.
    worker = threading.Thread(target=add_statement, args=(statements, "SELECT c FROM t", 0.0, task))
    worker.start()
    worker.join()


def test_a_statement_run_in_a_worker_thread_is_sited_where_the_request_task_awaits_it() -> None:
    statements: dict[str, list[Any]] = {}
    asyncio.run(_kappa(statements))
    first = _kappa.__code__.co_firstlineno
    site = statements["SELECT a FROM t"][3]
    assert site == {"function": "_kappa", "file": __file__, "line": first + 4}
    assert statements["SELECT b FROM t"][3] is None  # no task, no application frame
    running = statements["SELECT c FROM t"][3]
    assert running["function"] == "_kappa" and running["file"] == __file__
    assert running["line"] in (first + 12, first + 13)  # in worker.start() or worker.join()
