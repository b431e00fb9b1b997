"""``%pystrument compare``: which endpoints got slower between two versions, and why."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.magic_arguments import argument, magic_arguments

from pystrument_lab.guidance import missing_versions
from pystrument_lab.magics.args import parse
from pystrument_lab.magics.errors import PystrumentUsageError

if TYPE_CHECKING:
    from pystrument_lab.magics.magic import Pystrument

__all__ = ["compare"]


@magic_arguments(name="pystrument compare")
@argument("project", help="project name or key")
@argument("a", help="the baseline version, e.g. 1.0")
@argument("b", help="the version to check, e.g. 1.1")
@argument(
    "--route",
    help="diff this endpoint's call trees: show the diff flame graph, return the function changes",
)
@argument("--range", help="time range of the metric stream (default: 30d)")
def compare(magic: Pystrument, line: str) -> Any:
    """Version A against B.

    Without ``--route``: one row per endpoint with p50/p95 in both versions,
    the change, the one-sided Mann-Whitney p-value and the ``regression``
    flag (see :mod:`pystrument_lab.compare`), regressions first.

    With ``--route``: displays the endpoint's diff flame graph (red: slower in
    B) and returns its functions ranked by the change of their self time per
    request, the one that got slower first.
    """
    args = parse(compare, line)
    if args is None:
        return None
    lab = magic.lab
    time_range = args.range or "30d"
    check_versions(lab, args.project, (args.a, args.b), time_range)
    if args.route is None:
        table = lab.compare_versions(
            args.project,
            args.a,
            args.b,
            time_range=time_range,
            engine=magic.table_engine(),
        )
        return _regressions_first(table, magic.engine)
    from IPython.display import display

    from pystrument_lab.magics.display import FigureView
    from pystrument_lab.magics.trees import tree_summary
    from pystrument_lab.treediff import diff_trees, function_changes
    from pystrument_lab.widgets import flame_graph

    before = lab.merged_tree(args.project, args.route, app_version=args.a)
    after = lab.merged_tree(args.project, args.route, app_version=args.b)
    title = f"{args.route}: {args.b} against {args.a} (red: slower, time per request)"
    figure = flame_graph(after, diff=diff_trees(before, after), title=title)
    display(FigureView(figure, tree_summary(after, title)))
    return function_changes(before, after, engine=magic.table_engine())


def check_versions(lab: Any, project: str, wanted: tuple[str, ...], time_range: str) -> None:
    """Refuse a version the project has no data of in the range, naming the ones it has."""
    seen = [str(v) for v in lab.versions(project, time_range=time_range)["app_version"].to_list()]
    missing = [version for version in wanted if version not in seen]
    if missing:
        raise PystrumentUsageError(missing_versions(project, missing, seen, time_range))


def _regressions_first(table: Any, engine: str) -> Any:
    if engine == "pandas":
        return table.sort_values(
            ["regression", "p95_change"], ascending=[False, False], na_position="last"
        ).reset_index(drop=True)
    return table.sort(["regression", "p95_change"], descending=[True, True], nulls_last=True)
