"""Schema ``ttl`` / ``age_off``: eager validation, round trips, and the exact expiry cutoff."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from culvert_py.errors import SchemaError
from culvert_py.expiry import column_value, epoch_ms, expires_at, is_expired, written_at
from culvert_py.layout import new_version
from culvert_py.lifespan import Lifespan, format_duration, parse_duration
from culvert_py.schema import parse_schema, schema_to_dict


def _schema(**extra):
    table = {
        "row_key": ["id"],
        "columns": {"id": "str", "t": "int", "at": "datetime", "x": "float"},
        **extra,
    }
    return parse_schema({"tables": {"ev": table}}, source="ev.toml")


@pytest.mark.parametrize(
    ("text", "ms"),
    [("90d", 90 * 86_400_000), ("12h", 43_200_000), ("30m", 1_800_000), ("45s", 45_000)],
)
def test_durations_parse_and_print_back(text, ms):
    assert parse_duration(text, "p") == ms
    assert format_duration(ms) == text


@pytest.mark.parametrize("bad", ["90", "d", "1.5d", "-1d", "0s", "90 d", "1w", 90, True, None, ""])
def test_bad_durations_name_the_path_and_the_form(bad):
    with pytest.raises(SchemaError, match=r"ev\.toml: ev\.ttl: .*(90d|above 0)"):
        _schema(ttl=bad)


def test_ttl_and_age_off_round_trip_through_the_stored_form():
    schema = _schema(ttl="12h", age_off={"column": "t", "after": "90d", "unit": "s"})
    lifespan = schema.table("ev").lifespan
    assert lifespan == Lifespan(43_200_000, "t", 90 * 86_400_000, 1000)
    assert parse_schema(schema_to_dict(schema)) == schema
    plain = _schema()
    assert plain.table("ev").lifespan is None
    assert "ttl" not in schema_to_dict(plain)["tables"]["ev"]


@pytest.mark.parametrize(
    ("age_off", "message"),
    [
        ({"column": "nope", "after": "1d"}, r"age_off\.column: unknown column 'nope'"),
        ({"column": "x", "after": "1d"}, r"age_off\.column: 'x' is float"),
        ({"column": "t"}, r"age_off\.after: required"),
        ({"column": "t", "after": "1y"}, r"age_off\.after: expected a duration"),
        ({"column": "t", "after": "1d", "unit": "us"}, r"age_off\.unit: expected one of ms, s"),
        ({"column": "at", "after": "1d", "unit": "s"}, r"age_off\.unit: only an int column"),
        ({"column": "t", "after": "1d", "every": "1h"}, r"age_off: unknown key 'every'"),
        ("t after 1d", r"age_off: expected \{ column"),
    ],
)
def test_bad_age_off_is_refused_with_its_path(age_off, message):
    with pytest.raises(SchemaError, match=message):
        _schema(age_off=age_off)


def test_an_adopted_table_cannot_age_off():
    spec = {
        "existing": True,
        "family": "f",
        "row_key": ["id"],
        "columns": {"id": "str", "t": {"type": "int", "cell": "f:t", "codec": "int64"}},
        "ttl": "1d",
    }
    with pytest.raises(SchemaError, match=r"ev\.ttl: an adopted table"):
        parse_schema({"tables": {"ev": spec}})


def test_ttl_counts_from_the_time_in_the_version_cell():
    lifespan = Lifespan(ttl_ms=1000)
    version = new_version(5_000)
    assert written_at(version) == 5_000
    assert expires_at(lifespan, version, {}) == 6_000
    assert not is_expired(lifespan, version, {}, 5_999)
    assert is_expired(lifespan, version, {}, 6_000)
    assert not is_expired(lifespan, None, {}, 10**15)  # no version cell: nothing to count from


def test_the_earlier_rule_wins_and_null_never_expires():
    both = Lifespan(ttl_ms=10_000, column="t", after_ms=1_000)
    version = new_version(0)
    assert expires_at(both, version, {"t": 500}) == 1_500
    assert expires_at(both, version, {"t": 50_000}) == 10_000
    assert expires_at(both, version, {"t": None}) == 10_000
    assert expires_at(Lifespan(column="t", after_ms=1), None, {"t": None}) is None


@settings(max_examples=300, deadline=None)
@given(
    value=st.integers(-(10**12), 10**12),
    after=st.integers(1, 10**10),
    now=st.integers(-(10**12), 2 * 10**12),
    unit=st.sampled_from([1, 1000]),
)
def test_the_index_cutoff_selects_exactly_the_expired_int_values(value, after, now, unit):
    lifespan = Lifespan(column="t", after_ms=after, unit=unit)
    cutoff = column_value(now - after + 1, lifespan, "int")
    assert (value < cutoff) == is_expired(lifespan, None, {"t": value}, now)


@settings(max_examples=300, deadline=None)
@given(
    value=st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    after=st.integers(1, 10**10),
    offset=st.integers(-(10**6), 10**6),
)
def test_the_index_cutoff_selects_exactly_the_expired_datetimes(value, after, offset):
    lifespan = Lifespan(column="at", after_ms=after)
    now = epoch_ms(value, lifespan) + after + offset  # near the boundary, microseconds too
    cutoff = column_value(now - after + 1, lifespan, "datetime")
    assert (value < cutoff) == is_expired(lifespan, None, {"at": value}, now)
    assert is_expired(lifespan, None, {"at": value}, now) == (offset >= 0)
