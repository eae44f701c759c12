"""Conditional row writes on HBase as Thrift2 calls, one per row, many run in parallel.

:func:`conditional_call` turns one ``check_and_mutate`` item into a ready call (every
argument checked when it is built, so a batch is refused whole before anything is sent);
:class:`ParallelCalls` runs a batch of such calls on threads of its own. This is the path
of ``check_and_mutate`` and, without a sidecar (:mod:`culvert_py.store.sidecar`), of
``check_and_mutate_many``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

from culvert_py.errors import ArgumentError
from culvert_py.store.base import RowMutation, check_conditional, normalise_column
from culvert_py.store.gateway import Gateway, thrift2
from culvert_py.store.hbase_structs import thrift2_put, thrift2_row_mutations

__all__ = ["ParallelCalls", "conditional_call"]


def conditional_call(
    gateway: Gateway,
    table: str,
    row: bytes,
    column: bytes,
    expected: bytes | None,
    mutation: RowMutation,
    timestamp: int,
) -> Callable[[], bool]:
    """One Thrift2 conditional write of ``row``, checked now and made when called.

    :return: a call that returns whether the mutation was applied (retried through
        transient failures by ``gateway``)
    :raises ArgumentError: for malformed arguments (see the store contract)
    """
    check_conditional(row, expected, mutation)
    if expected is not None and type(expected) is not bytes:
        raise ArgumentError(f"check_and_mutate: expected must be bytes or None, got {expected!r}")
    family, _, qualifier = normalise_column(column).partition(b":")
    what = f"check_and_mutate on {table!r}"
    name = table.encode()
    call = gateway.call_thrift2
    if expected is None:
        # Thrift2's checkAndMutate cannot test for absence (see thrift2.thrift), and the
        # contract allows only puts with an absent-cell condition: checkAndPut does both.
        put = thrift2_put(mutation, timestamp, table)
        return lambda: call(what, lambda c: c.checkAndPut(name, row, family, qualifier, None, put))
    row_mutations = thrift2_row_mutations(mutation, timestamp, table)
    equal = thrift2.TCompareOperator.EQUAL
    return lambda: call(
        what,
        lambda c: c.checkAndMutate(name, row, family, qualifier, equal, expected, row_mutations),
    )


class ParallelCalls:
    """Runs batches of calls ``workers`` at a time on threads of its own (started on first
    use), never on a caller's executor, so a caller waiting on it cannot starve it.

    :param workers: calls in flight at once (the store's connections per gateway)
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def run(self, calls: list[Callable[[], bool]]) -> list[bool]:
        """The results of ``calls``, in order.

        :raises Exception: the first failure of a call, once every call has finished
        """
        if len(calls) <= 1:
            return [call() for call in calls]
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.workers, thread_name_prefix="culvert-conditional"
                )
        slices = min(len(calls), self.workers)
        results: list = [None] * len(calls)

        def run_slice(start: int) -> None:
            # One task per slice, not per call: a future per row costs more client CPU.
            for i in range(start, len(calls), slices):
                results[i] = calls[i]()

        futures = [self._executor.submit(run_slice, s) for s in range(slices)]
        wait(futures)
        for future in futures:
            future.result()
        return results

    def close(self) -> None:
        """Wait for calls under way and stop the threads."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
