"""Optimisation suggestions per kind of bottleneck, each with a concrete code example.

The rule engine picks one template per finding and fills in the function
name; the texts are plain so that they read well in a notebook, the dashboard
and the API.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SUGGESTIONS", "suggestion_for"]

#: kind → (category, title, description, code example, expected improvement).
SUGGESTIONS: dict[str, tuple[str, str, str, str, str]] = {
    "n_plus_one": (
        "database",
        "Load {function}'s rows in one query instead of one per item",
        "{function} runs about {queries:.0f} queries per request, one per item: the N+1 "
        "pattern. Fetch all related rows with one IN query (or a JOIN / the ORM's "
        "prefetch) and group them in Python.",
        "# before: one query per order\n"
        "for order in orders:\n"
        "    order.items = db.execute(\n"
        '        "SELECT * FROM items WHERE order_id = ?", (order.id,)).fetchall()\n'
        "\n"
        "# after: one query for all orders\n"
        "ids = [order.id for order in orders]\n"
        'marks = ",".join("?" * len(ids))\n'
        "rows = db.execute(\n"
        '    f"SELECT * FROM items WHERE order_id IN ({{marks}})", ids).fetchall()\n'
        "by_order = collections.defaultdict(list)\n"
        "for row in rows:\n"
        '    by_order[row["order_id"]].append(row)\n'
        "for order in orders:\n"
        "    order.items = by_order[order.id]\n"
        "# Django: Order.objects.prefetch_related('items')\n"
        "# SQLAlchemy: select(Order).options(selectinload(Order.items))",
        "queries per request drop from N+1 to 2; most of the {impact:.0%} spent on queries",
    ),
    "slow_sql": (
        "database",
        "Speed up the slow query in {function}",
        "A query took {duration:.3f} s: {statement}. Check its plan with EXPLAIN and add an "
        "index on the filtered and sorted columns, or select fewer columns and rows.",
        "-- find out why it is slow\n"
        "EXPLAIN QUERY PLAN SELECT ...;   -- PostgreSQL: EXPLAIN ANALYZE\n"
        "\n"
        "-- index the columns of the WHERE and ORDER BY clauses\n"
        "CREATE INDEX idx_orders_customer_created ON orders (customer_id, created_at);\n"
        "\n"
        "# and page instead of loading everything\n"
        'rows = db.execute("SELECT id, total FROM orders WHERE customer_id = ? "\n'
        '                  "ORDER BY created_at DESC LIMIT 50", (customer_id,)).fetchall()',
        "the query's time, up to {impact:.0%} of the request",
    ),
    "cpu_hotspot": (
        "algorithm",
        "Reduce the work done in {function}",
        "{function} spends {impact:.0%} of the request computing in its own code. Use a "
        "better algorithm or data structure, move the loop into a vectorised or built-in "
        "operation, or cache results that do not change between requests.",
        "# before: pure-Python loops, quadratic membership tests\n"
        "total = 0.0\n"
        "for value in values:\n"
        "    if value in seen_list:          # O(n) per test\n"
        "        total += value * value\n"
        "\n"
        "# after: a set for membership, built-ins for the arithmetic\n"
        "seen = set(seen_list)\n"
        "total = math.fsum(v * v for v in values if v in seen)\n"
        "# or with numpy: total = float(np.square(arr[np.isin(arr, seen_arr)]).sum())\n"
        "\n"
        "# results that only depend on their inputs can be cached\n"
        "@functools.lru_cache(maxsize=1024)\n"
        "def report_statistics(period: str) -> Stats: ...",
        "most of the {impact:.0%} spent in {function}",
    ),
    "waiting": (
        "architecture",
        "Stop waiting on {function} in the request",
        "The request waits for {impact:.0%} of its time (wall time far above CPU time) in "
        "{function}: a slow downstream call, sleep or lock. Set a timeout, run independent "
        "calls concurrently, cache the answer, or move the work out of the request.",
        "# concurrent downstream calls with a timeout (asyncio + httpx)\n"
        "async with httpx.AsyncClient(timeout=2.0) as client:\n"
        "    recs, profile = await asyncio.gather(\n"
        "        client.get(RECOMMENDER_URL, params={{'user': user_id}}),\n"
        "        client.get(PROFILE_URL, params={{'user': user_id}}),\n"
        "    )\n"
        "\n"
        "# or cache the slow answer for a short time\n"
        "@cachetools.func.ttl_cache(maxsize=10_000, ttl=60)\n"
        "def fetch_recommendations(user_id: int) -> list[int]: ...",
        "the {impact:.0%} spent waiting, minus the time of the slowest remaining call",
    ),
    "memory_growth": (
        "architecture",
        "Stream the data built in {function} instead of holding it in memory",
        "The request allocates {memory:.1f} MB ({function}). Stream the response in chunks, "
        "use generators instead of lists, and release large buffers early.",
        "# before: the whole export in one buffer\n"
        "buffer = io.BytesIO()\n"
        "for row in rows:\n"
        "    buffer.write(encode(row))\n"
        "return Response(buffer.getvalue())\n"
        "\n"
        "# after: a generator streams it chunk by chunk\n"
        "def export_chunks(rows):\n"
        "    for batch in itertools.batched(rows, 1000):\n"
        '        yield b"".join(encode(row) for row in batch)\n'
        "return Response(export_chunks(rows), mimetype='text/csv')",
        "peak memory per request drops from {memory:.1f} MB to the size of one chunk",
    ),
    "excessive_calls": (
        "caching",
        "Call {function} less often",
        "{function} is called {calls:.0f} times per request. Hoist the call out of the loop, "
        "batch its work, or memoise it when its inputs repeat.",
        "# before: the same lookup inside the loop\n"
        "for item in items:\n"
        "    rate = get_exchange_rate(item.currency)\n"
        "    item.total = item.amount * rate\n"
        "\n"
        "# after: memoised (or computed once per distinct input before the loop)\n"
        "@functools.lru_cache(maxsize=256)\n"
        "def get_exchange_rate(currency: str) -> float: ...",
        "the per-call overhead of {calls:.0f} calls, up to {impact:.0%}",
    ),
}

_PRIORITY = {"critical": "high", "high": "high", "medium": "medium", "low": "low"}


def suggestion_for(finding: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The SPEC §3 suggestion for one rule finding."""
    category, title, description, code, improvement = SUGGESTIONS[finding["kind"]]
    fields = {"function": finding["function"], "impact": finding["impact"], **values}
    return {
        "category": category,
        "priority": _PRIORITY[finding["severity"]],
        "title": title.format(**fields),
        "description": description.format(**fields),
        "code_example": code.format(**fields),
        "expected_improvement": improvement.format(**fields),
        "kind": finding["kind"],
        "function": finding["function"],
    }
