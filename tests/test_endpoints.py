"""Store URLs that list several gateways: parsed exactly, written back to the same gateways."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from culvert_py.errors import StoreError
from culvert_py.store import open_store
from culvert_py.store.endpoints import Endpoint, format_gateways, parse_gateways

hosts = st.one_of(
    st.from_regex(r"[a-z][a-z0-9.-]{0,12}", fullmatch=True),
    st.sampled_from(["127.0.0.1", "::1", "fe80::1"]),
)
ports = st.integers(1, 65535)
endpoints = st.lists(
    st.builds(Endpoint, hosts, ports, st.none() | ports), min_size=1, max_size=5
).filter(lambda es: len({e[:2] for e in es}) == len(es))


@given(endpoints)
def test_a_formatted_url_parses_back_to_the_same_gateways(found):
    url = format_gateways(found)
    netloc, _, query = url.removeprefix("hbase://").partition("?")
    shared = int(query.split("=")[1]) if query else 9091
    assert parse_gateways(netloc, shared or None, url) == found


def test_the_documented_forms():
    assert parse_gateways("h1:9090,h2:9090", 9091, "u") == [
        Endpoint("h1", 9090, 9091),
        Endpoint("h2", 9090, 9091),
    ]
    assert parse_gateways("127.0.0.1:9090:9091,127.0.0.1:9092:9093", None, "u") == [
        Endpoint("127.0.0.1", 9090, 9091),
        Endpoint("127.0.0.1", 9092, 9093),
    ]
    assert parse_gateways("[::1]:9090:0,h:1", 7, "u") == [
        Endpoint("::1", 9090, None),
        Endpoint("h", 1, 7),
    ]
    assert format_gateways([Endpoint("h", 9090, 9091)]) == "hbase://h:9090?thrift2_port=9091"
    assert format_gateways([Endpoint("h", 9090, None)]) == "hbase://h:9090?thrift2_port=0"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("hbase://h:9090,", "malformed gateway '' in store URL 'hbase://h:9090,'"),
        ("hbase://h:9090,h:9090", "gateway 'h:9090' is listed twice"),
        ("hbase://h:90x", "malformed port '90x' of gateway 'h:90x'"),
        ("hbase://h:1:2:3", "malformed gateway 'h:1:2:3'"),
        ("hbase://h:0", "malformed port 0 of gateway 'h:0'"),
        ("hbase://h:1:70000", "malformed port '70000'"),
        ("hbase://[::1:9090", "malformed store URL 'hbase://[::1:9090' (Invalid IPv6 URL)"),
        ("hbase://[::1]x:9090", "malformed gateway '[::1]x:9090'"),
        ("hbase://h:1,k", "malformed gateway 'k' in store URL 'hbase://h:1,k': need hbase://"),
    ],
)
def test_malformed_gateway_lists_name_the_item_and_the_forms(url, message):
    with pytest.raises(StoreError) as err:
        open_store(url)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_store_fails_only_when_no_gateway_answers():
    with pytest.raises(StoreError) as err:
        open_store("hbase://127.0.0.1:1,127.0.0.1:2?retries=0")
    text = str(err.value)
    assert "127.0.0.1:1,127.0.0.1:2" in text and "hbase/hbase-local start" in text
    assert err.value.__cause__ is not None


sidecars = st.lists(st.tuples(hosts, ports), min_size=1, max_size=4, unique=True)


@given(endpoints, sidecars)
def test_sidecars_in_a_url_parse_back_to_the_same_sidecars(found, cars):
    from urllib.parse import parse_qs, urlsplit

    from culvert_py.store.endpoints import parse_sidecars, with_sidecars

    url = with_sidecars(format_gateways(found), cars)
    (option,) = parse_qs(urlsplit(url).query)["sidecar"]
    assert parse_sidecars(option, url) == cars
    assert with_sidecars(format_gateways(found), []) == format_gateways(found)


@pytest.mark.parametrize("bad", ["", "h", "h:", ":9", "h:0", "h:65536", "h:x", "h:1,h:1", "h:1,"])
def test_malformed_sidecars_are_refused_before_connecting(bad):
    with pytest.raises(StoreError, match="sidecar"):
        open_store(f"hbase://127.0.0.1:1?sidecar={bad}")
