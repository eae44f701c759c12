"""Entry counts of candidate accesses measured by bounded key-only scans, for planning.

When a table has no fresh statistics the planner asks a :class:`Prober` instead of guessing.
Every candidate access (and, when the table's size is unknown, the whole of one complete
index as the full scan's stand-in) becomes a set of *units*: one key range of the access in
one salt bucket. A unit is scanned key-only (the one-byte state cell) in **rounds**: the
first reads up to :data:`PROBE_LIMIT` entries, each later one :data:`PROBE_GROWTH` times
more, resuming after the last key read, all units of a round in parallel on the client's
pool. A unit that ends before its cap has been counted exactly; one that hits it gives a
lower bound.

Sampling keeps the probe small next to the query. The salt is a hash of the primary key, so
every bucket holds about ``1/buckets`` of the entries of any value: only
:data:`PROBE_BUCKETS` buckets of each range are read and the count is scaled up, and so is
a sample of at most :data:`PROBE_RANGES` ranges of a long IN-list.

Rounds stop as soon as the choice is decided: the access of smallest cost (``entries``,
times ``1 + FETCH_COST`` when it fetches rows) is counted exactly and every other one is
already known to cost more; or, after the first round, when the cheapest access was counted
out in its sampled buckets and costs less than any other even at the bounds of a sample's
scatter (:data:`CLEAR_SIGMAS`; the usual case: one selective predicate beside few-value
ones), so one round trip plans it. Past that, only accesses that could still win are read further,
and never more than :data:`PROBE_SHARE` of the cheapest access's cost (a lower bound of any
plan's cost), with :data:`PROBE_MIN_BUDGET` entries allowed whatever it is, so a probe
stays a fraction of the query it plans. Results are kept by a :class:`ProbeCache` for
:data:`PROBE_TTL` seconds per client, so a stream of queries does not probe each time; a
cached lower bound that does not settle the next choice is measured again, further.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

from culvert_py.encoding import prefix_successor
from culvert_py.layout import STATE_COLUMN
from culvert_py.query.plan import IndexScan, KeyRange
from culvert_py.schema import IndexDef
from culvert_py.store.base import Store

#: Entries read per unit (range x bucket) in the first round.
PROBE_LIMIT = 16
#: Each round reads this many times more entries per unit than the one before.
PROBE_GROWTH = 4
#: Rounds at most (16 + 64 + 256 + 1024 + 4096 entries per unit).
PROBE_ROUNDS = 5
#: Salt buckets read per key range; the count is scaled by buckets / read.
PROBE_BUCKETS = 2
#: Key ranges read per access (an IN-list's); the count is scaled by ranges / read.
PROBE_RANGES = 8
#: Entries a probe may read, as a share of the cheapest access's cost so far.
PROBE_SHARE = 0.5
#: Entries a probe may read whatever the costs.
PROBE_MIN_BUDGET = 2048
#: Seconds a probe result is reused by the same client.
PROBE_TTL = 30.0
#: After the first round, a sampled access counted out wins without counting out its other
#: buckets when even the high end of its estimate costs less than the low end of every other
#: access's: bounds of this many standard deviations of the sampled count (Poisson).
CLEAR_SIGMAS = 2.0

_WIDEN_UNITS = 64  # units an access may add when its sample turns out small


@dataclass
class Estimate:
    """What a probe measured of one access.

    :ivar entries: estimated entries (scaled from the units read)
    :ivar exact: whether every unit read was counted to its end (else a lower bound)
    :ivar read: entries read by the probe (0 when taken from the cache)
    :ivar scans: store scans run (0 when taken from the cache)
    :ivar cached: taken from the :class:`ProbeCache`
    """

    entries: float
    exact: bool
    read: int = 0
    scans: int = 0
    cached: bool = False


@dataclass
class ProbeReport:
    """One probe run: an estimate per access, the table-size stand-in, and the cost.

    :ivar estimates: ``(label, estimate)`` in the order the accesses were given
    :ivar rows: the full scan's estimate (``None`` when it was not asked for)
    :ivar seconds: wall time of the probe
    """

    estimates: list[tuple[str, Estimate]] = field(default_factory=list)
    rows: Estimate | None = None
    seconds: float = 0.0

    @property
    def read(self) -> int:
        """Entries read in all."""
        extra = self.rows.read if self.rows else 0
        return sum(e.read for _, e in self.estimates) + extra

    @property
    def scans(self) -> int:
        """Store scans run in all."""
        extra = self.rows.scans if self.rows else 0
        return sum(e.scans for _, e in self.estimates) + extra


class ProbeCache:
    """Probe results by access, kept ``ttl`` seconds; thread-safe, bounded.

    :param ttl: seconds an estimate is reused
    :param size: estimates kept at most (the oldest go first)
    """

    def __init__(self, ttl: float = PROBE_TTL, size: int = 4096) -> None:
        self.ttl = ttl
        self.size = size
        self._lock = threading.Lock()
        self._items: dict[tuple, tuple[float, Estimate]] = {}

    def get(self, key: tuple) -> Estimate | None:
        """The estimate stored under ``key`` if younger than ``ttl``, else ``None``."""
        with self._lock:
            item = self._items.get(key)
            if item is None or time.monotonic() - item[0] > self.ttl:
                return None
            return Estimate(item[1].entries, item[1].exact, cached=True)

    def put(self, key: tuple, estimate: Estimate) -> None:
        """Store ``estimate`` under ``key``."""
        with self._lock:
            self._items.pop(key, None)
            self._items[key] = (time.monotonic(), estimate)
            while len(self._items) > self.size:
                self._items.pop(next(iter(self._items)))

    def clear(self) -> None:
        """Forget every estimate (after a large write, say)."""
        with self._lock:
            self._items.clear()


class _Unit:
    """One key range of an access in one salt bucket, read on in rounds."""

    __slots__ = ("count", "done", "handle", "start", "stop")

    def __init__(self, handle, start: bytes, stop: bytes | None) -> None:
        self.handle = handle
        self.start = start
        self.stop = stop
        self.count = 0
        self.done = False

    def read(self, cap: int) -> int:
        last = None
        n = 0
        for key, _ in self.handle.scan(
            start=self.start, stop=self.stop, columns=[STATE_COLUMN], batch_size=cap, limit=cap
        ):
            last = key
            n += 1
        self.count += n
        if n < cap:
            self.done = True
        else:
            self.start = last + b"\x00"  # the smallest key after the last one read
        return n


class _Access:
    """The units of one access (those read so far and the rest), its cost per entry."""

    def __init__(self, label: str, key: tuple, units: list[_Unit], rest: list[_Unit], factor):
        self.label = label
        self.key = key
        self.units = units
        self.rest = rest
        self.pairs = len(units) + len(rest)  # (range, bucket) pairs of the whole access
        self.factor = factor
        self.read = 0
        self.scans = 0
        self.cached: Estimate | None = None

    @property
    def exact(self) -> bool:
        return self.cached.exact if self.cached else all(u.done for u in self.units)

    @property
    def entries(self) -> float:
        if self.cached:
            return self.cached.entries
        return self.pairs / max(len(self.units), 1) * sum(u.count for u in self.units)

    @property
    def cost(self) -> float:
        return self.factor * self.entries

    def bounds(self) -> tuple[float, float]:
        """Low and high cost this access may have: a lower bound is its own low end; a
        sampled count ``c`` scaled up is ``c`` give or take :data:`CLEAR_SIGMAS` × ``√c``
        (plus one, so that a count of zero does not claim certainty)."""
        if self.cached or not self.rest:
            return self.cost, self.cost if self.exact else float("inf")
        if not self.exact:
            return self.cost, float("inf")
        count = sum(u.count for u in self.units)
        spread = CLEAR_SIGMAS * math.sqrt(count) + 1.0
        scale = self.factor * self.pairs / max(len(self.units), 1)
        return scale * max(count - spread, 0.0), scale * (count + spread)

    def widen(self, limit: int) -> bool:
        """Read every unit from now on when the sample was counted out and small: a
        selective access is then counted exactly, for a few more short scans."""
        if self.cached or not self.rest or not self.exact or len(self.rest) > _WIDEN_UNITS:
            return False
        if sum(u.count for u in self.units) >= limit * len(self.units):
            return False
        self.units += self.rest
        self.rest = []
        return True

    def estimate(self) -> Estimate:
        if self.cached:
            return self.cached
        return Estimate(self.entries, self.exact, self.read, self.scans)


class Prober:
    """Measures candidate accesses of one store by bounded key-only scans.

    :param store: the store holding the index tables
    :param executor: the pool to run a round's scans on (``None``: one after another)
    :param cache: where results are kept between queries (``None``: nowhere)
    :param limit: entries per unit in the first round (see :data:`PROBE_LIMIT`)
    :param buckets: salt buckets sampled per range (see :data:`PROBE_BUCKETS`)
    """

    def __init__(
        self,
        store: Store,
        executor: Executor | None = None,
        cache: ProbeCache | None = None,
        limit: int = PROBE_LIMIT,
        buckets: int = PROBE_BUCKETS,
    ) -> None:
        self.store = store
        self.executor = executor
        self.cache = cache
        self.limit = limit
        self.buckets = buckets

    def measure(
        self,
        scans: Sequence[IndexScan],
        fetch_cost: float,
        rows_index: IndexDef | None = None,
    ) -> ProbeReport:
        """Estimate the entries of each of ``scans`` (and the table's rows, if asked).

        :param scans: the candidate accesses
        :param fetch_cost: cost of fetching one row, in scanned entries (the planner's)
        :param rows_index: a complete index (one entry per row) whose size stands in for the
            table's rows, or ``None`` when the rows are known otherwise
        :return: the estimates, in the order of ``scans``, with what the probe cost
        """
        started = time.perf_counter()
        accesses = [
            self._access(s.index.name, s.index, s.ranges, 1.0 if s.covered else 1.0 + fetch_cost)
            for s in scans
        ]
        rows = None
        if rows_index is not None:
            every = KeyRange(b"", None, list(range(rows_index.buckets)), "")
            rows = self._access("rows", rows_index, [every], 1.0)
        everything = accesses + ([rows] if rows is not None else [])
        self._rounds(everything)
        for access in everything:
            if self.cache is not None and access.cached is None:
                self.cache.put(access.key, access.estimate())
        return ProbeReport(
            [(a.label, a.estimate()) for a in accesses],
            rows.estimate() if rows is not None else None,
            time.perf_counter() - started,
        )

    def _access(self, label: str, index: IndexDef, ranges: list[KeyRange], factor: float):
        key = (
            index.hbase_table,
            tuple((r.start, r.stop, tuple(r.buckets)) for r in ranges),
        )
        handle = self.store.table(index.hbase_table)
        picked = {id(r) for r in _spread(ranges, PROBE_RANGES)}
        units: list[_Unit] = []
        rest: list[_Unit] = []
        for r in ranges:
            sampled = set(_spread(r.buckets, self.buckets)) if id(r) in picked else set()
            for b in r.buckets:
                salt = bytes([b])
                stop = salt + r.stop if r.stop is not None else prefix_successor(salt)
                unit = _Unit(handle, salt + r.start, stop or None)
                (units if b in sampled else rest).append(unit)
        access = _Access(label, key, units, rest, factor)
        if self.cache is not None:
            access.cached = self.cache.get(key)
        return access

    def _rounds(self, accesses: list[_Access]) -> None:
        cap = self.limit
        read = 0
        for number in range(PROBE_ROUNDS):
            if number:
                pending = self._undecided(accesses)
                for access in pending:
                    access.cached = None  # a cached lower bound that settles nothing: measure
            else:
                pending = accesses
            read += self._read([(a, u) for a in pending for u in a.units if not u.done], cap)
            if number == 0 and self._clear_winner(accesses):
                return
            # A small sample is worth counting out in every bucket, right away: a selective
            # access is then exact before the next round asks who can still win.
            widened = [a for a in accesses if a.widen(self.limit)]
            read += self._read([(a, u) for a in widened for u in a.units if not u.done], cap)
            cheapest = min(a.cost for a in accesses)
            if not self._undecided(accesses) or read >= max(
                PROBE_MIN_BUDGET, PROBE_SHARE * cheapest
            ):
                return
            cap *= PROBE_GROWTH

    def _read(self, tasks: list[tuple[_Access, _Unit]], cap: int) -> int:
        """Read ``cap`` more entries of each unit of ``tasks``, in parallel; entries read."""
        tasks = [(a, u) for a, u in tasks if a.cached is None]
        counts = self._run(tasks, cap)
        for (access, _), n in zip(tasks, counts, strict=True):
            access.read += n
            access.scans += 1
        return sum(counts)

    @staticmethod
    def _clear_winner(accesses: list[_Access]) -> bool:
        """Whether the first round already decided the choice: the cheapest access was
        counted out in its sampled buckets and costs far less than any other could.

        Counting its other buckets out (a second round trip) would make its estimate exact
        but not change the choice; the margin covers a small sample's scatter."""
        if len(accesses) < 2:
            return False  # its rival is a full scan costed elsewhere: count it out
        best = min(accesses, key=lambda a: a.cost)
        if not best.exact:
            return False
        high = best.bounds()[1]
        return all(a.bounds()[0] > high for a in accesses if a is not best)

    @staticmethod
    def _undecided(accesses: list[_Access]) -> list[_Access]:
        """Accesses worth reading further: not counted out, and not already beaten by an
        access counted exactly (their lower bound costs more than its exact cost)."""
        exact = [a.cost for a in accesses if a.exact]
        best = min(exact) if exact else None
        return [a for a in accesses if not a.exact and (best is None or a.cost < best)]

    def _run(self, tasks: list[tuple[_Access, _Unit]], cap: int) -> list[int]:
        def one(task: tuple[_Access, _Unit]) -> int:
            return task[1].read(cap)

        run: Callable = self.executor.map if self.executor is not None else map
        return list(run(one, tasks))


def _spread(items: list, n: int) -> list:
    """At most ``n`` of ``items``, evenly spaced (all of them when there are few)."""
    if len(items) <= n:
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


__all__ = [
    "CLEAR_SIGMAS",
    "PROBE_BUCKETS",
    "PROBE_LIMIT",
    "PROBE_MIN_BUDGET",
    "PROBE_RANGES",
    "PROBE_SHARE",
    "PROBE_TTL",
    "Estimate",
    "ProbeCache",
    "ProbeReport",
    "Prober",
]
