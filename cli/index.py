"""The ``culvert index`` command: build, rebuild, verify, repair, drop, sync."""

from __future__ import annotations

import re
import sys
import time

import click

from culvert_cli.session import open_client
from culvert_py.errors import CulvertError


@click.command()
@click.argument(
    "action",
    type=click.Choice(["list", "build", "rebuild", "verify", "repair", "drop", "sync"]),
)
@click.argument("table")
@click.argument("index", required=False)
@click.option("--workers", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--shard", default="0/1", show_default=True, help="I/N: this host's share.")
@click.option("--resume", is_flag=True, help="Continue an interrupted build.")
@click.option("--yes", is_flag=True, help="Drop or rebuild without asking (needed without a TTY).")
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False),
    help="Adopted tables: where a sample of undecodable cells goes "
    "(default TABLE.INDEX.rejects.jsonl, written only when there are some).",
)
@click.option(
    "--follow",
    type=click.FloatRange(min=0.1),
    help="sync: keep syncing every SECONDS until interrupted.",
)
@click.option("--spark", is_flag=True, help="build, verify, repair: run as a Spark job.")
@click.option("--master", help="With --spark: the Spark master URL (default local[2]).")
@click.pass_context
def index(
    ctx, action, table, index, workers, shard, resume, yes, rejects, follow, spark, master
) -> None:
    """List, build, rebuild, verify, repair, drop or sync the indexes of TABLE (or INDEX).

    sync (adopted tables) catches every index up with rows other applications changed
    since the last sync; --follow SECONDS repeats it.

    drop and rebuild ask first on a terminal; elsewhere they need --yes. A verify that
    finds problems ends with an `error:` line (exit status 2).

    Example: culvert index verify people by_age     culvert index build people by_name --shard 0/4
             culvert index build people by_name --spark --master yarn
    """
    from culvert_py import ops as build

    i, n = _parse_shard(shard, build.MAX_SHARDS)
    with open_client(ctx, workers) as client:
        target = client.table(table)
        if action == "list":
            for name, spec in target.definition.indexes.items():
                cols = ", ".join(spec.columns)
                click.echo(f"{name:<24}{spec.kind:<7}{target.states[name]:<10}({cols})")
            return
        if action == "sync":
            _sync(client, table, index, workers, follow)
            return
        names = [index] if index else list(target.definition.indexes)
        for name in names:
            target.index(name)
        if spark:
            from culvert_cli.spark import index_on_spark

            index_on_spark(ctx, action, table, names, master)
            return
        if action in ("drop", "rebuild") and names and not yes:
            _confirm(ctx, action, table, names)
        unclean = []
        for name in names:
            bad_path = rejects or f"{table}.{name}.rejects.jsonl"
            if action in ("build", "rebuild"):
                report = build_one(
                    client, table, name, workers, (i, n), resume, action == "rebuild", bad_path
                )
            elif action in ("verify", "repair"):
                report = build.verify_index(
                    client,
                    table,
                    name,
                    repair=action == "repair",
                    workers=workers,
                    rejects=bad_path,
                )
                click.echo(f"{table}.{name}: {report.summary()}")
                if action == "verify" and not report.clean:
                    unclean.append(name)
            else:
                build.drop_index(client, table, name)
                click.echo(f"dropped {table}.{name}")
                continue
            if report.bad_cells:
                click.echo(f"{table}.{name}: a sample of the undecodable cells is in {bad_path}")
        if unclean:
            raise CulvertError(
                f"{table}: {len(unclean)} index(es) not clean: {', '.join(unclean)}; fix with "
                f"`culvert index repair {table} INDEX`"
            )


def _sync(client, table: str, index: str | None, workers: int, follow: float | None) -> None:
    """One sync, or one every ``follow`` seconds until Ctrl-C."""
    from culvert_py import ops

    while True:
        report = ops.sync_index(client, table, index, workers=workers)
        click.echo(f"{table}: sync: {report.summary()}")
        if follow is None:
            return
        try:
            time.sleep(follow)
        except KeyboardInterrupt:
            return


def _parse_shard(text: str, most: int) -> tuple[int, int]:
    """``--shard I/N`` strictly: ASCII digits, no spaces or signs, ``0 <= I < N <= most``."""
    match = re.fullmatch(r"([0-9]{1,6})/([0-9]{1,6})", text)
    if match:
        i, n = int(match[1]), int(match[2])
        if 0 <= i < n <= most:
            return i, n
    raise click.UsageError(f"--shard {text!r}: expected I/N with 0 <= I < N <= {most}, e.g. 0/4")


def _confirm(ctx: click.Context, action: str, table: str, names: list[str]) -> None:
    """Ask before a destructive ``index`` action; without a terminal, refuse (use --yes)."""
    if len(names) == 1:
        what = f"index {table}.{names[0]}"
    else:
        what = f"all {len(names)} indexes of {table} ({', '.join(names)})"
    if not _interactive():
        raise click.UsageError(
            f"index {action}: would {action} {what}; pass --yes to confirm", ctx=ctx
        )
    if not click.confirm(f"{action} {what}?", default=False, err=True):
        raise CulvertError(f"index {action}: not confirmed; {what} left as it was")


def _interactive() -> bool:
    return sys.stdin.isatty()


def build_one(client, table, index, workers, shard, resume, rebuild=False, rejects=None):
    """Build (or rebuild) one index with a progress bar; returns its report."""
    rejects = rejects or f"{table}.{index}.rejects.jsonl"
    from culvert_py import ops as build

    run = build.rebuild_index if rebuild else build.build_index
    with click.progressbar(length=0, label=f"building {table}.{index}", show_pos=True) as bar:

        def progress(done: int, total: int | None) -> None:
            if total:
                bar.length = total
            bar.update(done - bar.pos)

        report = run(
            client,
            table,
            index,
            workers=workers,
            shard=shard,
            resume=resume,
            progress=progress,
            rejects=rejects,
        )
    click.echo(f"{table}.{index}: {report.summary()}")
    return report
