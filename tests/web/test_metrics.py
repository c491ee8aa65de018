"""GET /-/metrics: Prometheus' text format, counted by route-table endpoint, loopback only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from pypid.web.routes import ENDPOINTS
from tests.web.conftest import World
from tests.web.helpers import Client, new_client


def scrape(client: Client) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    reply = client.get("/-/metrics")
    assert reply.code == 200
    assert (reply.header("Content-Type") or "").startswith("text/plain; version=0.0.4")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(reply.body.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = \
                sample.value
    return samples


def value(samples: dict[str, Any], name: str, **labels: str) -> float:
    return float(samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0))


def test_requests_uploads_cache_and_sign_ins_are_counted(world: World) -> None:
    """Each answer is counted under its endpoint and status class, with its latency and
    size; uploads by status; fast-lane hits and Klein misses; failed sign-ins."""
    client, dev = world.client, world.tokens["dev"]
    assert client.upload_wheel(world.private_id, "counted", "1.0", dev).code == 201
    assert client.upload_wheel(world.private_id, "counted", "1.0", None).code == 401
    page = f"/api/v4/projects/{world.private_id}/packages/pypi/simple/counted/"
    for _ in range(3):
        assert client.get(page, auth=dev).code == 200
    client.get("/no/such/path")
    client.get(page, auth=("__token__", "glpat-wrong"))
    samples = scrape(client)
    assert value(samples, "pypid_requests_total", endpoint="simple_package", code="2xx") == 3
    assert value(samples, "pypid_requests_total", endpoint="simple_package", code="4xx") == 1
    assert value(samples, "pypid_requests_total", endpoint="unmatched", code="4xx") == 1
    assert value(samples, "pypid_uploads_total", code="201") == 1
    assert value(samples, "pypid_uploads_total", code="401") == 1
    assert value(samples, "pypid_request_duration_seconds_count", endpoint="simple_package") == 4
    assert value(samples, "pypid_response_bytes_total", endpoint="simple_package") > 0
    assert value(samples, "pypid_request_body_bytes_total", endpoint="upload") > 0
    assert value(samples, "pypid_cache_answers_total", endpoint="simple_package",
                 lane="memory") == 2
    assert value(samples, "pypid_cache_answers_total", endpoint="simple_package",
                 lane="klein") == 2  # the first (filling) and the refused one
    assert value(samples, "pypid_failed_sign_ins_total") == 1
    assert "process_cpu_seconds_total" in samples


def test_labels_are_route_table_names_whatever_the_paths(world: World) -> None:
    """Thousands of distinct paths make no more series than the route table has names."""
    client = world.client
    for n in range(300):
        client.get(f"/api/v4/projects/{n}/packages/pypi/simple/pkg-{n}/")
        client.get(f"/random/{n}")
    names = {dict(labels).get("endpoint") for labels in
             scrape(client)["pypid_requests_total"]}
    assert names <= {endpoint.name for endpoint in ENDPOINTS} | {"unmatched"}


def raw_get(client: Client, host: str, path: bytes) -> bytes:
    protocol = client.site.buildProtocol(IPv4Address("TCP", host, 40000))
    assert protocol is not None
    transport = StringTransport(peerAddress=IPv4Address("TCP", host, 40000))
    protocol.makeConnection(transport)
    protocol.dataReceived(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    return transport.value()


def test_metrics_are_hidden_outside_the_allowed_networks(tmp_path: Path) -> None:
    """From an address outside --metrics-allow, /-/metrics is the 404 of a missing path."""
    client = new_client(tmp_path, metrics_allow=("10.0.0.0/8",))
    assert raw_get(client, "10.1.2.3", b"/-/metrics").startswith(b"HTTP/1.1 200 OK")
    refused = raw_get(client, "127.0.0.1", b"/-/metrics")
    missing = raw_get(client, "127.0.0.1", b"/-/nothing-here")
    assert refused.startswith(b"HTTP/1.1 404 Not Found")
    assert refused.split(b"\r\n\r\n", 1)[1] == missing.split(b"\r\n\r\n", 1)[1]


def test_a_scrape_renders_a_snapshot_taken_on_the_reactor() -> None:
    """What the worker renders is a copy: counting on while it renders changes nothing in
    it (no dict is read while another thread adds to it)."""
    from pypid.web.metrics import Metrics, Stats

    stats = Stats()
    stats.request_done("file", 200, 0.01, 100, 0)
    snapshot = stats.snapshot()
    stats.request_done("file", 200, 0.02, 100, 0)
    stats.request_done("simple_root", 404, 0.001, 10, 0)
    text = Metrics(stats, ["127.0.0.1/32"]).exposition(snapshot)[0].decode()
    assert 'pypid_requests_total{code="2xx",endpoint="file"} 1.0' in text
    assert "simple_root" not in text
    assert stats.latency["file"].counts != snapshot.latency["file"].counts
