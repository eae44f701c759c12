"""The ``culvert ageoff`` command: delete the rows past a table's ttl or age_off."""

from __future__ import annotations

import click

from culvert_cli.session import open_client


@click.command()
@click.argument("table")
@click.option(
    "--dry-run", is_flag=True, help="Only find the expired rows and show how; delete nothing."
)
@click.option(
    "--workers",
    default=8,
    show_default=True,
    type=click.IntRange(min=1),
    help="Parallel region scans when no index can find the expired rows.",
)
@click.pass_context
def ageoff(ctx: click.Context, table: str, dry_run: bool, workers: int) -> None:
    """Delete the rows of TABLE past its ttl or age_off, with their index entries.

    Queries hide expired rows already; this reclaims them, through the write protocol, so
    it is safe next to live writers (a row rewritten meanwhile is kept) and resumed by
    running it again. With an ACTIVE range index on the age_off column it range-scans only
    the expired part of the index; otherwise it scans the version cells. --dry-run prints
    that plan and counts what would go.

    Example: culvert ageoff events --dry-run
    """
    with open_client(ctx, workers) as client:
        report = client.table(table).age_off(dry_run=dry_run, workers=workers)
        if dry_run:
            for line in report.plan:
                click.echo(line)
        click.echo(str(report))
