"""The ``culvert count`` command: rows matching a predicate, in total or per value."""

from __future__ import annotations

import time

import click

from culvert_cli.output import FORMATS, render_rows
from culvert_cli.session import open_client
from culvert_py.errors import ArgumentError


@click.command()
@click.argument("table")
@click.argument("where", required=False)
@click.option("--group-by", "group_by", metavar="COL", help="Count per value of this column.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option(
    "--null",
    "null_token",
    help="Write the NULL group as this token (csv, table), e.g. NA. Default: an empty field.",
)
@click.option("--explain", is_flag=True, help="Print which path answers it (index or rows), why.")
@click.option("--analyze", is_flag=True, help="Run it and print the plan with actuals.")
@click.pass_context
def count(ctx, table, where, group_by, fmt, null_token, explain, analyze) -> None:
    """Count the rows of TABLE matching WHERE (all rows without it), or per --group-by value.

    Answered from index entries alone when one index holds every column read (the
    predicate's and the group's); otherwise from the rows. --explain says which and why.
    Groups are printed in value order, NULL first.

    Example: culvert count flights "origin = 'JFK' AND dep_delay > 120" --group-by carrier
    """
    if null_token and set(null_token) & set(',"\r\n'):
        raise ArgumentError(
            f"--null {null_token!r}: expected text without commas, quotes or line breaks "
            "(a CSV reader could not tell it from data)"
        )
    with open_client(ctx) as client:
        target = client.table(table)
        if explain or analyze:
            click.echo(target.explain_aggregate("count", group_by, where, analyze=analyze))
            return
        t0 = time.perf_counter()
        result = target.count(where, group_by)
        if group_by is None:
            names, rows = ["count"], [{"count": result}]
        else:
            names = [group_by, "count"]
            rows = [{group_by: value, "count": n} for value, n in result.items()]
        for line in render_rows(rows, names, fmt, null_token):
            click.echo(line)
        if fmt == "table":
            elapsed = (time.perf_counter() - t0) * 1000
            groups = f"{len(rows)} group(s), " if group_by is not None else ""
            click.echo(f"({groups}{elapsed:.1f} ms)", err=True)
