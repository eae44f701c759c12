"""The ``--spark`` forms of ``culvert index`` / ``culvert load``: the same jobs on Spark.

The store URL is the one the command was given (``--store`` or ``CULVERT_STORE``); every
executor opens it, so it must name a store the cluster reaches (an ``hbase://`` gateway,
or on ``local[N]`` any store of this machine).
"""

from __future__ import annotations

import sys

import click

from culvert_cli.errors import USER_ERROR
from culvert_py.errors import CulvertError

#: ``culvert index`` actions that run on Spark.
SPARK_ACTIONS = ("build", "verify", "repair")


def index_on_spark(ctx: click.Context, action: str, table: str, names: list[str], master):
    """Build, verify or repair ``names`` of ``table`` as Spark jobs, printing one line each.

    :raises click.UsageError: for an action that has no Spark form
    :raises CulvertError: when a verified index is not clean (after every index ran)
    """
    if action not in SPARK_ACTIONS:
        raise click.UsageError(
            f"index {action}: --spark runs only {', '.join(SPARK_ACTIONS)}", ctx=ctx
        )
    from culvert_py import spark as jobs

    url = ctx.obj["store_url"]
    session = jobs.spark_session(master, app_name=f"culvert index {action} {table}")
    unclean = []
    for name in names:
        if action == "build":
            report = jobs.build_index(session, url, table, name)
            click.echo(f"{table}.{name}: {report.summary()}; {len(report.tasks)} Spark task(s)")
            continue
        report = jobs.verify_index(session, url, table, name, repair=action == "repair")
        click.echo(f"{table}.{name}: {report.summary()}")
        if action == "verify" and not report.clean:
            unclean.append(name)
    if unclean:
        raise CulvertError(
            f"{table}: {len(unclean)} index(es) not clean: {', '.join(unclean)}; fix with "
            f"`culvert index repair {table} INDEX --spark`"
        )


def load_on_spark(ctx, table, file, fmt, null_token, rejects, batch_size, bulk, master) -> None:
    """Load a CSV or JSON Lines file (or a directory of them) into ``table`` on Spark.

    Spark reads the file; every value arrives as text and is typed by the schema with the
    loader's CSV rules. Bad rows go to ``rejects`` (JSON files, default ``FILE.rejects``)
    with their reasons; any makes the exit status 2, as for ``culvert load``.
    """
    from culvert_py import spark as jobs

    fmt = fmt or ("jsonl" if str(file).endswith((".jsonl", ".ndjson", ".json")) else "csv")
    session = jobs.spark_session(master, app_name=f"culvert load {table}")
    reader = session.read
    if fmt == "csv":
        reader = reader.option("header", True).option("escape", '"').option("multiLine", True)
        if null_token:
            reader = reader.option("nullValue", null_token)
        frame = reader.csv(file)
    else:
        frame = reader.option("primitivesAsString", True).json(file)
    target = rejects or f"{file}.rejects"
    report = jobs.write(
        frame,
        ctx.obj["store_url"],
        table,
        mode="bulk" if bulk else "safe",
        rejects=target,
        batch_size=batch_size,
    )
    click.echo(report.summary())
    if report.rejected:
        click.echo(f"error: {report.rejected:,} row(s) rejected; reasons in {target}", err=True)
        sys.exit(USER_ERROR)
