"""``%pystrument analyze``: the bottleneck analysis of a record or an endpoint.

Runs :func:`pystrument_lab.analyze` in this process (the rule engine unless
an LLM service is configured or named) and returns the report, which renders
as HTML in a notebook and as text elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.magic_arguments import argument, magic_arguments

from pystrument_lab.magics.args import parse

if TYPE_CHECKING:
    from pystrument_lab.magics.magic import Pystrument

__all__ = ["analyze"]


@magic_arguments(name="pystrument analyze")
@argument("target", help="a record's trace id, or a project (name or key) with --route")
@argument("--route", help="analyse this endpoint's typical profile (its merged tree)")
@argument("--service", help="AI service of the configuration; 'rules' for the rule engine")
@argument("--model", help="override the service's model")
@argument("--no-save", action="store_true", help="do not store the result in the store")
def analyze(magic: Pystrument, line: str) -> Any:
    """Find where the time goes and suggest fixes (stored as a manual analysis)."""
    args = parse(analyze, line)
    if args is None:
        return None
    from pystrument_lab.analysis import analyze as run_analysis

    target: str | tuple[str, str] = (
        (args.target, args.route) if args.route is not None else args.target
    )
    return run_analysis(
        target,
        service=args.service,
        model=args.model,
        store=magic.lab.store,
        save=not args.no_save,
    )
