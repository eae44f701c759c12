"""The client a command runs against, opened from the global ``--store`` option."""

from __future__ import annotations

from contextlib import contextmanager

import click

from culvert_py.store import open_store


@contextmanager
def open_client(ctx: click.Context, workers: int = 16):
    from culvert_py.client import Client

    client = Client(open_store(ctx.obj["store_url"]), workers=workers)
    try:
        yield client
    finally:
        client.close()
