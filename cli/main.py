"""The ``culvert`` click application: global options, error handling, commands."""

from __future__ import annotations

import sys
import time

import click

from culvert_py.errors import CulvertError
from culvert_py.store import default_url, open_store

#: Exit status of every user error (bad input, unreachable store); 1 is left to crashes.
USER_ERROR = 2


class _CulvertGroup(click.Group):
    """A group that turns every :class:`CulvertError` into one ``error:`` line and exit 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CulvertError as exc:
            if ctx.find_root().params.get("debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(USER_ERROR)


@click.group(cls=_CulvertGroup)
@click.option(
    "--store",
    "store_url",
    default=default_url,
    show_default="env CULVERT_STORE, else sqlite:///culvert.db",
    help="Store URL: hbase://HOST:PORT[?thrift2_port=N], sqlite:///PATH.db or sqlite://.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def main(ctx: click.Context, store_url: str, debug: bool) -> None:
    """Secondary indexes over HBase.

    Example: culvert --store hbase://127.0.0.1:9090 info
    """
    ctx.obj = {"store_url": store_url}


@main.command()
@click.pass_context
def info(ctx: click.Context) -> None:
    """Show which store is in use and what it can do.

    Example: culvert --store hbase://127.0.0.1:9090 info
    """
    with open_store(ctx.obj["store_url"]) as store:
        click.echo(store.describe())
        click.echo(f"capabilities: {', '.join(sorted(store.capabilities)) or 'none'}")
        tables = store.list_tables()
        click.echo(f"tables: {len(tables)}")


@main.command()
@click.option("--rows", default=1000, show_default=True, help="Rows to write and read back.")
@click.pass_context
def demo(ctx: click.Context, rows: int) -> None:
    """Round-trip rows through the store: create a pre-split table, write, read, scan, drop.

    Example: culvert demo --rows 5000
    """
    with open_store(ctx.obj["store_url"]) as store:
        click.echo(f"store: {store.describe()}")
        name = f"culvert_demo_{int(time.time())}"
        splits = [bytes([i * 32]) for i in range(1, 8)]
        store.create_table(name, ["d"], splits)
        try:
            table = store.table(name)
            keys = [b"%c-row-%07d" % (i * 7 % 256, i) for i in range(rows)]
            t0 = time.perf_counter()
            table.put_many(
                ((k, {b"d:n": str(i).encode(), b"d:tag": b"demo"}) for i, k in enumerate(keys)),
                timestamp=int(time.time() * 1000),
            )
            t1 = time.perf_counter()
            got = table.get_many(keys)
            t2 = time.perf_counter()
            scanned = sum(1 for _ in table.scan(batch_size=1000))
            t3 = time.perf_counter()
            ok = len(got) == rows and scanned == rows
            click.echo(f"table {name}: {len(store.regions(name))} regions")
            click.echo(
                f"wrote {rows} rows in {t1 - t0:.3f}s, read {len(got)} back in "
                f"{t2 - t1:.3f}s, scanned {scanned} in {t3 - t2:.3f}s"
            )
            click.echo("round trip: OK" if ok else "round trip: MISMATCH")
        finally:
            store.delete_table(name)
        if not ok:
            sys.exit(1)


if __name__ == "__main__":
    main()
