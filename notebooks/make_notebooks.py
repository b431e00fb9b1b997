"""Write the guide notebooks of this folder (no outputs): ``python notebooks/make_notebooks.py``.

The notebooks are generated so that their cells stay plain, reviewable
Python here; edit this file, run it, commit both. Every notebook has a
papermill ``parameters`` cell and runs top to bottom against the demo shop's
data (``pystrument demo --requests 40``); ``tests/e2e/test_notebooks.py``
executes them all.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

PARAMETERS = '''\
# Parameters (papermill replaces them). None: the environment / the local embedded store.
mongodb_url = None  # e.g. "mongodb://localhost:27017"; default PYSTRUMENT_MONGODB_URL
database = None  # default PYSTRUMENT_DATABASE ("pystrument")
project = "demo-shop"  # project name or key
api_endpoint = None  # the collector, e.g. "http://127.0.0.1:8000"; default PYSTRUMENT_API_ENDPOINT'''

CONNECT = '''\
import os

for name, value in [("PYSTRUMENT_MONGODB_URL", mongodb_url), ("PYSTRUMENT_DATABASE", database),
                    ("PYSTRUMENT_API_ENDPOINT", api_endpoint)]:
    if value:
        os.environ[name] = value

%load_ext pystrument_lab
lab = %pystrument connect
lab'''

BOKEH = '''\
from bokeh.io import output_notebook, show

from pystrument_lab.widgets import bokeh_resources

# BokehJS goes into the notebook, so the charts draw offline (PYSTRUMENT_BOKEH_RESOURCES=cdn: from its CDN).
output_notebook(bokeh_resources(), hide_banner=True)'''


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text.strip())


def code(text: str, *tags: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(text.strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def notebook(cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    book = nbformat.v4.new_notebook()
    book.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3",
    }  # fmt: skip
    book.metadata["language_info"] = {"name": "python"}
    book.cells = cells
    return book


def quickstart() -> nbformat.NotebookNode:
    return notebook([
        md("""
# Quickstart: from "the service is slow" to the function that is slow

Pystrument's SDK samples requests of your web service, records each one's call
tree with pyinstrument, and counts *every* request in per-endpoint latency
histograms. This notebook walks the usual path through that data:

1. connect to the store and pick a project,
2. find the endpoints that are slow (from every request, not only the sampled ones),
3. open one slow request's call tree and see where its time went,
4. profile a piece of your own code right here with `%%pystrument`.

It runs against the **demo shop** (`pystrument demo --requests 40`, or `make up`),
a small instrumented FastAPI service with planted bottlenecks.
"""),
        code(PARAMETERS, "parameters"),
        code("demo_requests = 0  # > 0: drive this many demo requests per version first (needs the collector)"),
        md("""
## Connect

`%load_ext pystrument_lab` registers the `%pystrument` magic; `%pystrument connect`
opens the store named by `PYSTRUMENT_MONGODB_URL` (or the local embedded one) and
returns a `Lab` handle whose loaders return polars DataFrames. Every magic has
`--help`, e.g. `%pystrument records --help`.
"""),
        code(CONNECT),
        code('''\
if demo_requests:
    from pystrument_lab.demo import run_demo

    run_demo(os.environ.get("PYSTRUMENT_API_ENDPOINT", "http://127.0.0.1:8000"),
             requests_per_version=demo_requests, store=lab.store)'''),
        md("## Projects\n\nOne project per service; its key is what the SDK sends."),
        code("%pystrument projects"),
        md("""
## Which endpoints are slow?

`%pystrument endpoints` reads the metric stream, which counts every request: `count`,
`throughput` (requests/s over the range), `error_rate` and the latency percentiles
`p50`/`p95`/`p99` in seconds (read from log-scale histograms, within 4.4 %). The
magic sorts by p95, slowest first: p95 is what one request in twenty waits, a
better measure of "slow" than the average.
"""),
        code('''\
endpoints = %pystrument endpoints {project} --range 24h
endpoints'''),
        code('''\
slowest = endpoints.row(0, named=True)
print(f"{len(endpoints)} endpoints served {endpoints['count'].sum()} requests")
print(f"Slowest endpoint: {slowest['method']} {slowest['route']}: "
      f"p95 {slowest['p95'] * 1000:.0f} ms over {slowest['count']} requests")'''),
        md("""
## The sampled requests behind it

Only sampled requests carry a call tree. `%pystrument records` lists them with
their timing, SQL and memory figures; filters (`--route`, `--status`, `--version`,
`--min-duration 200ms`, `--range 1h`) narrow the list.
"""),
        code('''\
route = slowest["route"]
records = %pystrument records {project} --route {route} --limit 20
records.select("trace_id", "timestamp", "method", "path", "status_code", "total_duration",
               "query_count", "app_version")'''),
        md("""
## Where did one request spend its time?

`%pystrument tree TRACE_ID` opens the request's call tree: expand and collapse
functions, search for a name, click one for its details. Bars show total time
(including callees) and self time (the function's own code). Follow the widest bar
down until a function's *self* time is large: that is where the time goes.
"""),
        code('''\
trace_id = records.sort("total_duration", descending=True)["trace_id"][0]
%pystrument tree {trace_id}'''),
        md("""
The same tree as a flame graph: width is time, each row one level deeper in the
call stack. Scroll to zoom, hover for details.
"""),
        code("%pystrument tree {trace_id} --flame"),
        md("""
The recorded pyinstrument session can also be opened in pyinstrument's own
interactive HTML view (saved next to the notebook):
"""),
        code('''\
from pathlib import Path

record = lab.record(trace_id)
if record.session is not None:
    Path("slowest-request.html").write_text(record.pyinstrument_html(), encoding="utf-8")
    print("pyinstrument view written to slowest-request.html")'''),
        md("""
## Profile your own code

`%%pystrument` profiles a cell with pyinstrument and shows its call tree. Add
`--save PROJECT --route NAME` to store the profile as a record of a project (method
`CELL`), where the loaders, the dashboard and the analysis see it like any request.
"""),
        code('''\
%%pystrument
def checksum(rows):
    total = 0
    for row in rows:
        total = (total * 31 + sum(ord(c) for c in row)) % 1_000_003
    return total

checksum([f"row-{i}" for i in range(60_000)])'''),
        md("""
## Next

- `02_explore_endpoints.ipynb`: trends over time, the N+1 query, the CPU hot loop,
  an endpoint's typical profile (its merged call tree).
- `03_compare_versions.ipynb`: what got slower in the new release, and which function.
- `04_analysis.ipynb`: the bottleneck analysis and its suggestions.
"""),
    ])  # fmt: skip


def explore() -> nbformat.NotebookNode:
    return notebook([
        md("""
# Explore endpoints: trends, typical profiles and the usual suspects

One request's call tree can mislead: it might have been the one that hit a cold
cache. This notebook looks at endpoints as a whole:

- **trends**: latency percentiles and traffic over time;
- **records**: which endpoints issue many SQL queries (an N+1 query pattern);
- **merged trees**: an endpoint's typical profile, all its sampled requests
  merged into one tree (times per request);
- **self time**: the functions whose own code costs the most.
"""),
        code(PARAMETERS, "parameters"),
        code('time_range = "24h"  # how far back to look'),
        code(CONNECT),
        code(BOKEH),
        md("""
## Latency and traffic over time

`lab.trends()` gives one row per time bucket (empty buckets included), from every
request. The charts are the same bokeh figures as the dashboard's.
"""),
        code('''\
from pystrument_lab.widgets.charts import latency_chart, throughput_chart

trends = lab.trends(project, time_range=time_range)
print(f"{int(trends['count'].sum())} requests in {len(trends)} buckets")
show(latency_chart(trends, title=f"{project}: latency (ms)"))
show(throughput_chart(trends, title=f"{project}: requests per minute"))'''),
        md("""
## Endpoints at a glance

p95 per endpoint, slowest on top. Slow *and* busy endpoints are the ones worth
fixing first: `count × p50` is roughly the time the service spends on them.
"""),
        code('''\
import polars as pl
from bokeh.plotting import figure

endpoints = lab.endpoints(project, time_range=time_range).sort("p95")
labels = [f"{m} {r}" for m, r in zip(endpoints["method"], endpoints["route"])]
chart = figure(y_range=labels, height=30 + 22 * len(labels), width=800,
               title="p95 latency per endpoint (ms)", toolbar_location=None,
               sizing_mode="stretch_width")
chart.hbar(y=labels, right=(endpoints["p95"] * 1000).to_list(), height=0.7, color="#e76f51")
show(chart)
endpoints.sort("p95", descending=True).with_columns(
    (pl.col("count") * pl.col("p50")).alias("busy_seconds")
).select("method", "route", "count", "p50", "p95", "p99", "error_rate", "busy_seconds")'''),
        md("""
## Many queries per request: the N+1 pattern

The SDK counts SQL queries per sampled request. An endpoint whose query count
grows with the data it returns ("one query for the list, then one per item") is the
classic N+1: fine in development, slow in production.
"""),
        code('''\
records = %pystrument records {project} --range {time_range}
queries = (records.group_by("route")
           .agg(pl.len().alias("requests"), pl.col("query_count").median().alias("queries"),
                pl.col("total_duration").median().alias("median_duration"))
           .sort("queries", descending=True))
n_plus_one = queries["route"][0]
print(f"Most queries per request: {n_plus_one} ({queries['queries'][0]:.0f} per request)")
queries'''),
        md("""
Its typical profile: every sampled request of the endpoint merged into one tree.
Follow the widest branch: the function under it that issues the queries is the
one to batch.
"""),
        code("%pystrument tree {project} --route {n_plus_one}"),
        code('''\
from pystrument_lab.treestats import self_time_table

merged = lab.merged_tree(project, n_plus_one)
callers = (self_time_table(merged).filter(pl.col("is_application"))
           .sort("total_per_request", descending=True).head(5))
print(f"Application functions of {n_plus_one} by time per request: {', '.join(callers['function'])}")
callers.select("function", "total_per_request", "self_per_request", "occurrences")'''),
        md("""
## Where CPU goes: self time

*Self* time is time spent in a function's own code, not in its callees. For each
sampled endpoint, the application function with the most self time per request;
the largest of them is a hot loop worth rewriting. Its endpoint's typical profile
as a flame graph: the wide bar at the bottom of a tower is the loop.
"""),
        code('''\
def hottest_function(route):
    table = self_time_table(lab.merged_tree(project, route)).filter(pl.col("is_application"))
    return table.sort("self_per_request", descending=True).row(0, named=True) if len(table) else None


hottest = {route: hottest_function(route) for route in sorted(set(records["route"]))}
hot_route, hot = max(((r, f) for r, f in hottest.items() if f), key=lambda item: item[1]["self_per_request"])
print(f"Most self time in application code: {hot['function']} in {hot_route} "
      f"({hot['self_per_request'] * 1000:.0f} ms per request, {hot['share']:.0%} of the endpoint)")
pl.DataFrame([{"route": r, "function": f["function"], "self_per_request": f["self_per_request"]}
              for r, f in hottest.items() if f]).sort("self_per_request", descending=True)'''),
        code("%pystrument tree {project} --route {hot_route} --flame"),
    ])  # fmt: skip


def compare() -> nbformat.NotebookNode:
    return notebook([
        md("""
# Compare versions: what got slower in the release, and why

Every record and metric carries the service's `app_version`. This notebook puts
two versions side by side:

1. per endpoint, p50/p95 in both versions and a **regression flag**: a one-sided
   Mann–Whitney test on every request's latency (from the histograms), flagged when
   p < 0.01 *and* p50 or p95 grew by at least 10 %;
2. for a flagged endpoint, the **diff** of its typical call trees: which function's
   own time grew.
"""),
        code(PARAMETERS, "parameters"),
        code('baseline = None  # e.g. "1.0"; None: the second-newest version\ntarget = None  # e.g. "1.1"; None: the newest'),
        code(CONNECT),
        md("## The versions seen\n\nFirst and last seen, requests, errors and latency per version."),
        code('''\
versions = lab.versions(project)
names = versions["app_version"].to_list()
baseline = baseline or names[-2]
target = target or names[-1]
print(f"Comparing {baseline} (baseline) with {target}")
versions'''),
        md("""
## Which endpoints regressed?

Regressions first. `p50_change` and `p95_change` are relative (0.5 = 50 % slower);
`p_value` is the test's; `regression` the verdict.
"""),
        code('''\
comparison = %pystrument compare {project} {baseline} {target}
comparison'''),
        code('''\
import polars as pl

regressed = comparison.filter(pl.col("regression"))
for row in regressed.iter_rows(named=True):
    print(f"Regressed: {row['method']} {row['route']}: p95 {row['p95_a'] * 1000:.0f} ms -> "
          f"{row['p95_b'] * 1000:.0f} ms ({row['p95_change']:+.0%}, p = {row['p_value']:.2g})")
if regressed.is_empty():
    print("No endpoint regressed.")'''),
        md("""
## Why: the diff of the endpoint's call trees

`%pystrument compare PROJECT A B --route R` merges the endpoint's sampled requests
of each version and diffs the two trees. The flame graph is the new version's tree,
coloured by the change of each function's self time (red: slower, blue: faster);
the table ranks functions by that change, so the first row is the function that got
slower. Total times would blame every caller up to the root; self time points at
the one that changed.
"""),
        code('''\
route = regressed["route"][0] if not regressed.is_empty() else comparison["route"][0]
changes = %pystrument compare {project} {baseline} {target} --route {route}
culprit = changes.row(0, named=True)
print(f"{route} got slower in {culprit['function']} ({culprit['file']}:{culprit['line']}): "
      f"self time per request {culprit['self_a'] * 1000:.1f} ms -> {culprit['self_b'] * 1000:.1f} ms")
changes.head(10).select("function", "self_a", "self_b", "self_delta", "total_delta", "status")'''),
        md("""
The same function in the new version's typical tree, with the widget's search:
type its name in the box to expand the paths that reach it.
"""),
        code('''\
widget = %pystrument tree {project} --route {route} --version {target}
widget.search(culprit["function"])
widget'''),
    ])  # fmt: skip


def analysis() -> nbformat.NotebookNode:
    return notebook([
        md("""
# Analysis: the bottleneck, named and explained

`%pystrument analyze` runs the bottleneck analysis on a record or an endpoint's
typical profile. Without an LLM configured it is the deterministic rule engine
(works offline): it classifies where the time goes (computation, database, I/O,
memory), scores the endpoint and suggests fixes. With an LLM service configured
(`pystrument analysis` settings, OpenAI, Anthropic, Ollama or any OpenAI-compatible
endpoint) the model's answer is validated into the same structure, and
`--service NAME` picks one.
"""),
        code(PARAMETERS, "parameters"),
        code(CONNECT),
        md("""
## Each slow endpoint's typical profile

The slowest endpoints by p95, analysed one by one (`--no-save`: nothing is stored;
without it the results land in the project's analysis history, which the dashboard
shows).
"""),
        code('''\
endpoints = %pystrument endpoints {project}
reports = {}
for route in endpoints["route"].head(4):
    report = %pystrument analyze {project} --route {route} --no-save
    reports[route] = report
    results = report.results or {}
    findings = results.get("bottleneck_analysis") or [{}]
    top = findings[0]
    print(f"{route}: score {results.get('performance_score', 'n/a')}, "
          f"{top.get('severity', '-')} {top.get('type', 'no finding')} in {top.get('function', '-')}")'''),
        md("The full report of the slowest one: findings, evidence and suggestions."),
        code("reports[endpoints['route'][0]]"),
        md("""
## One request

A single record can be analysed too, e.g. the slowest sampled request of the
project.
"""),
        code('''\
records = %pystrument records {project} --limit 200
trace_id = records.sort("total_duration", descending=True)["trace_id"][0]
%pystrument analyze {trace_id} --no-save'''),
    ])  # fmt: skip


NOTEBOOKS = {
    "01_quickstart.ipynb": quickstart,
    "02_explore_endpoints.ipynb": explore,
    "03_compare_versions.ipynb": compare,
    "04_analysis.ipynb": analysis,
}


def build_all() -> dict[str, nbformat.NotebookNode]:
    """Every guide notebook by file name, validated, with stable cell ids."""
    books = {}
    for name, build in NOTEBOOKS.items():
        book = build()
        for index, cell in enumerate(book.cells):
            cell["id"] = f"{Path(name).stem[:2]}-{index:02d}"  # stable ids: clean diffs
        nbformat.validate(book)
        books[name] = book
    return books


def main(directory: Path = HERE) -> None:
    for name, book in build_all().items():
        nbformat.write(book, directory / name)
        print(f"wrote {name}")


if __name__ == "__main__":
    main()
