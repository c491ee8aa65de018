"""What operators graph: counters kept cheaply on the hot path, exposed in Prometheus'
text format through prometheus-client (GET /-/metrics).

prometheus-client's own metric objects take a lock and look up their label values on every
update, a few microseconds each: at 10,000 answers a second that is a few per cent of the
reactor. So the hot path only adds to plain dicts (the reactor is one thread; the database
thread writes only its own histogram), and a custom collector turns them into metric
families when Prometheus scrapes. Endpoint labels are the route table's names, never raw
paths, so the number of series is bounded.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.process_collector import ProcessCollector

from pypid.web.ratelimit import in_networks

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
           10.0, 30.0)
DB_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0)
UNMATCHED = "unmatched"
# The text format every Prometheus reads (prometheus-client's latest is 1.0.0, which only
# Prometheus 3 asks for); pypid's names need nothing newer.
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class Histogram:
    """Bucket counts and a sum; observe() is a bisect and two additions."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value

    def copy(self) -> Histogram:
        twin = Histogram(self.buckets)
        twin.counts, twin.total = list(self.counts), self.total
        return twin

    def cumulative(self) -> list[tuple[str, float]]:
        running, out = 0, []
        for bound, count in zip(self.buckets, self.counts, strict=False):
            running += count
            out.append((repr(bound), float(running)))
        out.append(("+Inf", float(running + self.counts[-1])))
        return out


class Stats:
    """Everything pypid counts; every field is written from the reactor thread only, except
    `database`, written only by the database thread."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str], int] = {}  # (endpoint, "2xx") -> count
        self.latency: dict[str, Histogram] = {}
        self.bytes_out: dict[str, int] = {}
        self.bytes_in: dict[str, int] = {}
        self.answers: dict[tuple[str, str], int] = {}  # (endpoint, "memory"|"klein")
        self.uploads: dict[str, int] = {}  # status code -> count
        self.failed_sign_ins = 0
        self.database = Histogram(DB_BUCKETS)

    def request_done(self, endpoint: str, code: int, seconds: float, sent: int,
                     received: int) -> None:
        key = (endpoint, _CLASSES.get(code // 100, "other"))
        self.requests[key] = self.requests.get(key, 0) + 1
        histogram = self.latency.get(endpoint)
        if histogram is None:
            histogram = self.latency[endpoint] = Histogram(BUCKETS)
        histogram.observe(seconds)
        self.bytes_out[endpoint] = self.bytes_out.get(endpoint, 0) + sent
        if received:
            self.bytes_in[endpoint] = self.bytes_in.get(endpoint, 0) + received
        if endpoint == "upload":
            status = str(code)
            self.uploads[status] = self.uploads.get(status, 0) + 1

    def snapshot(self) -> Stats:
        """A copy to render in a worker thread while the reactor goes on counting (the
        dicts are bounded by the route table, so this is small)."""
        twin = Stats()
        twin.requests, twin.bytes_out = dict(self.requests), dict(self.bytes_out)
        twin.bytes_in, twin.answers = dict(self.bytes_in), dict(self.answers)
        twin.uploads, twin.failed_sign_ins = dict(self.uploads), self.failed_sign_ins
        twin.latency = {name: histogram.copy() for name, histogram in self.latency.items()}
        twin.database = self.database.copy()
        return twin

    def answered(self, endpoint: str, from_memory: bool) -> None:
        key = (endpoint, "memory" if from_memory else "klein")
        self.answers[key] = self.answers.get(key, 0) + 1


_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}


class StatsCollector:
    """prometheus-client's view of Stats (and of the gauges read at scrape time)."""

    def __init__(self, stats: Stats, gauges: dict[str, tuple[str, Callable[[], float]]],
                 counters: dict[str, tuple[str, Callable[[], float]]]) -> None:
        self._stats = stats
        self._gauges = gauges
        self._counters = counters

    def describe(self) -> Iterable[Any]:
        return []  # no description: collected only on scrape, never at registration

    def collect(self) -> Iterator[Any]:
        stats = self._stats
        requests = CounterMetricFamily("pypid_requests", "Requests answered, by route-table "
                                       "endpoint and status class", labels=["endpoint", "code"])
        for (endpoint, code), count in sorted(stats.requests.items()):
            requests.add_metric([endpoint, code], count)
        yield requests
        latency = HistogramMetricFamily("pypid_request_duration_seconds",
                                        "Time from a request's arrival to its answer's end",
                                        labels=["endpoint"])
        for endpoint, histogram in sorted(stats.latency.items()):
            latency.add_metric([endpoint], histogram.cumulative(), histogram.total)
        yield latency
        for name, help_text, values in (
            ("pypid_response_bytes", "Bytes of answer bodies", stats.bytes_out),
            ("pypid_request_body_bytes", "Bytes of request bodies", stats.bytes_in),
        ):
            family = CounterMetricFamily(name, help_text, labels=["endpoint"])
            for endpoint, count in sorted(values.items()):
                family.add_metric([endpoint], count)
            yield family
        answers = CounterMetricFamily(
            "pypid_cache_answers", "Cacheable reads answered from memory (hits) or by the "
            "Klein routes (misses and refusals)", labels=["endpoint", "lane"])
        for (endpoint, lane), count in sorted(stats.answers.items()):
            answers.add_metric([endpoint, lane], count)
        yield answers
        uploads = CounterMetricFamily("pypid_uploads", "Uploads by answer status (201 "
                                      "accepted; the rest refused, by reason)", labels=["code"])
        for code, count in sorted(stats.uploads.items()):
            uploads.add_metric([code], count)
        yield uploads
        yield CounterMetricFamily("pypid_failed_sign_ins", "Requests with bad credentials",
                                  value=stats.failed_sign_ins)
        database = HistogramMetricFamily("pypid_database_job_seconds",
                                         "Time of each job in the database thread")
        database.add_metric([], stats.database.cumulative(), stats.database.total)
        yield database
        for name, (help_text, read) in self._gauges.items():
            yield GaugeMetricFamily(name, help_text, value=read())
        for name, (help_text, read) in self._counters.items():
            yield CounterMetricFamily(name, help_text, value=read())


class Metrics:
    """What /-/metrics shows, and who may read it."""

    def __init__(self, stats: Stats, allow: Iterable[str],
                 gauges: dict[str, tuple[str, Callable[[], float]]] | None = None,
                 counters: dict[str, tuple[str, Callable[[], float]]] | None = None) -> None:
        self.stats = stats
        self._allow = [ipaddress.ip_network(network, strict=False) for network in allow]
        self._gauges = gauges or {}
        self._counters = counters or {}

    def allowed(self, address: str) -> bool:
        return in_networks(address, self._allow)

    def exposition(self, snapshot: Stats) -> tuple[bytes, bytes]:
        """Worker thread (the process collector reads /proc): the text of a snapshot taken
        on the reactor, so that no dict is read while the reactor adds to it."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StatsCollector(snapshot, self._gauges, self._counters))
        registry.register(ProcessCollector(registry=None))
        return generate_latest(registry), CONTENT_TYPE
