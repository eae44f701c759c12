"""The ``culvert`` click application: global options, error handling, commands."""

from __future__ import annotations

import json
import sys
import time

import click

from culvert_cli.ageoff import ageoff
from culvert_cli.count import count
from culvert_cli.errors import USER_ERROR, CulvertGroup
from culvert_cli.index import build_one, index
from culvert_cli.output import FORMATS, QUERY_FORMATS, render_rows, write_output
from culvert_cli.session import open_client
from culvert_py.errors import CulvertError, QueryError
from culvert_py.meta import ACTIVE, BUILDING
from culvert_py.store import default_url, open_store


@click.group(cls=CulvertGroup)
@click.option(
    "--store",
    "store_url",
    default=default_url,
    show_default="env CULVERT_STORE, else sqlite:///culvert.db",
    help="Store URL: hbase://HOST:PORT[,HOST:PORT…][?thrift2_port=N] (HOST:PORT:THRIFT2_PORT "
    "gives a gateway its own Thrift2 port), sqlite:///PATH.db or sqlite://.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def main(ctx: click.Context, store_url: str, debug: bool) -> None:
    """Secondary indexes over HBase.

    Example: culvert --store hbase://127.0.0.1:9090 query people "age >= 30" --explain
    """
    ctx.obj = {"store_url": store_url}


# -- info ----------------------------------------------------------------------------------


@main.command()
@click.pass_context
def info(ctx: click.Context) -> None:
    """Show which store is in use and what it can do.

    Example: culvert --store hbase://127.0.0.1:9090 info
    """
    with open_store(ctx.obj["store_url"]) as store:
        click.echo(store.describe())
        click.echo(f"capabilities: {', '.join(sorted(store.capabilities)) or 'none'}")
        click.echo(f"tables: {len(store.list_tables())}")


# -- schema --------------------------------------------------------------------------------


@main.group()
def schema() -> None:
    """Apply, show and print DDL for schema files."""


@schema.command("apply")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--workers",
    default=8,
    show_default=True,
    type=click.IntRange(min=1),
    help="Parallel scans when building.",
)
@click.option("--no-build", is_flag=True, help="Leave new indexes on populated tables BUILDING.")
@click.pass_context
def schema_apply(ctx: click.Context, file: str, workers: int, no_build: bool) -> None:
    """Create or extend tables and pre-split index tables from a schema FILE.

    New indexes on tables that already hold rows start BUILDING and are built here
    (unless --no-build), then become ACTIVE.

    Example: culvert schema apply schemas/examples/people.toml
    """
    with open_client(ctx, workers) as client:
        report = client.apply_schema(file)
        for name in report["created"]:
            click.echo(f"created {name}")
        for path, state in report["indexes"].items():
            click.echo(f"index {path}: {state}")
        if not no_build:
            for path, state in report["indexes"].items():
                if state == BUILDING:
                    table, index = path.split(".", 1)
                    build_one(client, table, index, workers, (0, 1), False)
        if not report["created"] and not report["indexes"]:
            click.echo("schema already applied: nothing to do")


@schema.command("show")
@click.argument("table", required=False)
@click.pass_context
def schema_show(ctx: click.Context, table: str | None) -> None:
    """Print the applied schema (of one TABLE, or all) with index states.

    Example: culvert schema show people
    """
    from culvert_py.schema import schema_to_dict

    with open_client(ctx) as client:
        _, applied, states = client.meta.load()
        if applied is None:
            raise CulvertError(f"no schema applied to {client.store.url}")
        doc = schema_to_dict(applied)["tables"]
        if table is not None:
            applied.table(table)
            doc = {table: doc[table]}
        for name, spec in doc.items():
            for index in spec.get("indexes", {}):
                spec["indexes"][index]["state"] = states.get((name, index), ACTIVE)
        click.echo(json.dumps({"tables": doc}, indent=2))


@schema.command("ddl")
@click.argument("file", type=click.Path(dir_okay=False))
def schema_ddl(file: str) -> None:
    """Print HBase shell statements (with SPLITS) creating the tables of FILE.

    For admins who create tables themselves, or clusters without a Thrift2 gateway.

    Example: culvert schema ddl schemas/examples/people.toml | hbase shell -n
    """
    from culvert_py.layout import store_tables
    from culvert_py.meta import META_FAMILY, META_TABLE
    from culvert_py.schema import load_schema

    def family(name: str, block_size: int | None = None) -> str:
        block = f", BLOCKSIZE => '{block_size}'" if block_size else ""
        return (
            f"{{NAME => '{name}', VERSIONS => 1, BLOCKCACHE => true, BLOOMFILTER => 'ROW'{block}}}"
        )

    loaded = load_schema(file)
    click.echo(f"create '{META_TABLE}', {family(META_FAMILY)}")
    # The same table specs apply_schema creates, so the two never drift apart.
    for table in loaded.tables.values():
        for spec in store_tables(table):
            families = ", ".join(family(f, spec.block_size) for f in spec.families)
            splits = ", ".join(
                '"' + "".join(f"\\x{b:02x}" for b in k) + '"' for k in spec.split_keys
            )
            click.echo(
                f"create '{spec.name}', {families}" + (f", SPLITS => [{splits}]" if splits else "")
            )


@schema.command("infer")
@click.argument("table")
@click.option(
    "--sample",
    default=1000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rows to read, spread over the table's regions.",
)
@click.option("--name", default=None, help="The table's name in the draft (default: from TABLE).")
@click.pass_context
def schema_infer(ctx: click.Context, table: str, sample: int, name: str | None) -> None:
    """Print a draft schema (TOML) for an existing HBase TABLE other applications write.

    Guesses each cell's type and codec and the row key's shape from a sample of rows; check
    the guesses (the comments give the evidence), then apply the file. Needs no applied schema.

    Example: culvert schema infer users --sample 5000 > users.toml
    """
    from culvert_py.ops import infer_schema, to_toml

    with open_store(ctx.obj["store_url"]) as store:
        click.echo(to_toml(infer_schema(store, table, sample, name)), nl=False)


# -- load ----------------------------------------------------------------------------------


@main.command()
@click.argument("table")
@click.argument("file")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl", "parquet"]), help="Default: from suffix."
)
@click.option(
    "--null",
    "null_token",
    help="CSV: an unquoted field equal to it is NULL, e.g. NA; an empty field is then the "
    "empty string. Default: an empty unquoted field is NULL.",
)
@click.option("--rejects", type=click.Path(dir_okay=False), help="Default: FILE.rejects.jsonl.")
@click.option("--workers", default=16, show_default=True, help="Threads for store calls.")
@click.option("--batch-size", default=1000, show_default=True)
@click.option(
    "--bulk",
    is_flag=True,
    help="Fast for new keys: rows already in the table are found per batch and written "
    "in safe mode (counted in the summary).",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted load of the same file.")
@click.option("--spark", is_flag=True, help="Run as a Spark job (rejects: a directory).")
@click.option("--master", help="With --spark: the Spark master URL (default local[2]).")
@click.pass_context
def load(
    ctx, table, file, fmt, null_token, rejects, workers, batch_size, bulk, resume, spark, master
) -> None:
    """Load a CSV (with header), JSON Lines or Parquet FILE into TABLE.

    Bad rows go to the rejects file with line number and reason and never stop the good
    ones; rerunning converges to the same state. Reads back what `culvert query --format
    csv|jsonl` writes (with the same --null).

    Example: culvert load people people.csv --null NA
    """
    from culvert_py.load import load_file

    if spark:
        from culvert_cli.spark import load_on_spark

        load_on_spark(ctx, table, file, fmt, null_token, rejects, batch_size, bulk, master)
        return
    with open_client(ctx, workers) as client:
        target = client.table(table)
        with click.progressbar(length=0, label="loading", show_eta=True) as bar:
            done = [0]

            def progress(read: int, total: int) -> None:
                bar.length = total
                bar.update(read - done[0])
                done[0] = read

            report = load_file(
                target,
                file,
                format=fmt,
                null_token=null_token,
                rejects_path=rejects,
                batch_size=batch_size,
                bulk=bulk,
                resume=resume,
                progress=progress,
            )
        click.echo(report.summary())
        # The rejects file covers the whole file, earlier runs of a resumed load included.
        rejected = report.rejected + report.rejected_earlier
        if rejected:
            this_run = f" ({report.rejected:,} by this run)" if report.rejected_earlier else ""
            click.echo(
                f"error: {rejected:,} row(s) rejected{this_run}; reasons in {report.rejects_path}",
                err=True,
            )
            sys.exit(USER_ERROR)


# -- query / get ---------------------------------------------------------------------------


@main.command()
@click.argument("table")
@click.argument("where", required=False)
@click.option("--columns", help="Comma-separated columns to print (default: all).")
@click.option("--order-by", help="Sort by this column.")
@click.option("--desc", is_flag=True, help="Descending order (with --order-by).")
@click.option("--limit", type=int)
@click.option("--cursor", help="Resume after the page that printed this cursor.")
@click.option(
    "--format", "fmt", type=click.Choice(QUERY_FORMATS), default="table", show_default=True
)
@click.option("--output", help="Write the rows to this file (needed for --format parquet).")
@click.option(
    "--null",
    "null_token",
    help="Write NULL as this token (csv, table), e.g. NA, so that `culvert load --null NA` "
    "tells it from the empty string. Default: an empty field.",
)
@click.option("--explain", is_flag=True, help="Print the plan instead of rows.")
@click.option("--analyze", is_flag=True, help="Run the query and print the plan with actuals.")
@click.option("--use-index", help="Force an index by name, or NO_INDEX for a full scan.")
@click.pass_context
def query(
    ctx,
    table,
    where,
    columns,
    order_by,
    desc,
    limit,
    cursor,
    fmt,
    output,
    null_token,
    explain,
    analyze,
    use_index,
) -> None:
    """Print the rows of TABLE matching WHERE (a SQL WHERE subset).

    WHERE supports = != < <= > >= BETWEEN, IN (...), LIKE 'prefix%', CONTAINS(col, 'word'),
    IS [NOT] NULL, AND, OR, NOT, parentheses, TIMESTAMP '2013-01-01T10:00:00Z'.

    --format csv, jsonl and parquet (with --output FILE) load back with `culvert load` into
    the same values.

    Example: culvert query flights "origin = 'JFK' AND dep_delay > 120" --limit 20 --explain
    """
    if null_token and set(null_token) & set(',"\r\n'):
        from culvert_py.errors import ArgumentError

        raise ArgumentError(
            f"--null {null_token!r}: expected text without commas, quotes or line breaks "
            "(a CSV reader could not tell it from data)"
        )
    if fmt == "parquet" and not output:
        from culvert_py.errors import ArgumentError

        raise ArgumentError("--format parquet needs --output FILE (Parquet is not text)")
    with open_client(ctx) as client:
        target = client.table(table)
        cols = [c.strip() for c in columns.split(",")] if columns else None
        order = (order_by, desc) if order_by else None
        if desc and not order_by:
            raise QueryError("--desc needs --order-by")
        if explain or analyze:
            result = target.explain(where, cols, order, limit, use_index, analyze=analyze)
            click.echo(result.text)
            return
        t0 = time.perf_counter()
        rows = target.query(where, cols, order, limit, cursor, use_index)
        names = cols or list(target.definition.columns)
        if output:
            count = write_output(rows, names, fmt, null_token, output)
            click.echo(f"wrote {count:,} rows to {output}", err=True)
        else:
            for line in render_rows(rows, names, fmt, null_token):
                click.echo(line)
        elapsed = time.perf_counter() - t0
        if fmt == "table" and not output:
            click.echo(f"({rows.plan.actual_rows} rows, {elapsed * 1000:.1f} ms)", err=True)
        if rows.cursor:
            click.echo(f"next page: --cursor {rows.cursor}", err=True)


@main.command()
@click.argument("table")
@click.argument("keys", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.pass_context
def get(ctx, table, keys, fmt) -> None:
    """Print rows of TABLE by row key (a JSON array for a composite key).

    Keys not found are named on one `error:` line after the rows found, with exit status 2.

    Example: culvert get people u1 u2     culvert get flights '["AA", 11, "2013-01-01T05:00:00Z"]'
    """
    from culvert_py.load import parse_key

    with open_client(ctx) as client:
        target = client.table(table)
        parsed = [parse_key(target.definition, k) for k in keys]
        rows = target.get_many(parsed)
        missing = [k for k, r in zip(keys, rows, strict=True) if r is None]
        names = list(target.definition.columns)
        found = [r for r in rows if r is not None]
        for line in render_rows(found, names, fmt) if found else ():
            click.echo(line)
        if missing:
            raise CulvertError(f"{table}: {len(missing)} key(s) not found: {', '.join(missing)}")


# -- stats ---------------------------------------------------------------------------------


@main.command()
@click.argument("table")
@click.option("--refresh", is_flag=True, help="Collect statistics now (scans the indexes).")
@click.pass_context
def stats(ctx, table, refresh) -> None:
    """Show (or --refresh) the statistics the planner uses for TABLE.

    Example: culvert stats people --refresh
    """
    with open_client(ctx) as client:
        target = client.table(table)
        current = target.refresh_stats() if refresh else target.stats()
        if current is None:
            click.echo(f"{table}: no statistics yet; run `culvert stats {table} --refresh`")
            return
        click.echo(f"{table}: {current.rows:,} rows")
        for name, s in current.indexes.items():
            ndv = "/".join(f"{n:,}" for n in s.prefix_ndv)
            click.echo(
                f"  {name:<24}{s.entries:>12,} entries  distinct {ndv}  "
                f"nulls {s.null_entries:,}  top values {len(s.mcv)}"
            )


# -- demo ----------------------------------------------------------------------------------


@main.command()
@click.option("--rows", default=5000, show_default=True, help="Rows to generate.")
@click.pass_context
def demo(ctx: click.Context, rows: int) -> None:
    """Create a sample table with every index kind, load it, and compare five queries'
    plans and timings with a full scan.

    Example: culvert --store sqlite:// demo --rows 5000
    """
    from culvert_cli.demo import run_demo

    with open_client(ctx) as client:
        run_demo(client, rows, click.echo)


main.add_command(index)
main.add_command(count)
main.add_command(ageoff)

if __name__ == "__main__":
    main()
