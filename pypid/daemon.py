"""The daemon's service tree, built from a Config.

    PypidService (stops its children in order: listeners, in-flight requests, database)
      DatabaseService     one thread, one connection
      worker pool         hashing, archive reading, blob file I/O
      listeners           one per --listen endpoint

Start-up checks that can fail (schema, data dir) run before the reactor, so a bad start
ends with one clear line instead of a half-started daemon.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IReactorCore
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from pypid.audit import AuditLog
from pypid.authenticator import RegistryAuthenticator
from pypid.blobs.filesystem import FilesystemBlobs
from pypid.blobs.guard import LOCK_FILE as BLOB_LOCK_FILE
from pypid.blobs.guard import BlobGuard
from pypid.blobs.s3 import S3Blobs, S3Error, S3Settings, remember
from pypid.caches import Caches, ChangeWatcher
from pypid.changes import ChangeSignal
from pypid.config import Config
from pypid.interfaces import IBlobStore
from pypid.maintenance import DEFAULT_GRACE_SECONDS, collect_garbage
from pypid.publish import Publisher
from pypid.queue import BoundedQueue
from pypid.store.db import DatabaseService, open_registry
from pypid.upstream.client import UpstreamClient
from pypid.upstream.proxy import Upstream
from pypid.upstream.settings import Layer
from pypid.web.app import RegistryApp
from pypid.web.formbody import streamed_body
from pypid.web.metrics import Metrics, Stats
from pypid.web.ratelimit import AUTH_FAILURES_FILE, FailedAuthLimiter
from pypid.web.site import PypidSite

log = Logger()
GC_INTERVAL_SECONDS = 3600.0
UPSTREAM_READ_SIZE = 1 << 20
TOKEN_FILE = "initial-root-token"  # noqa: S105 - a file name, not a secret


def prepare_data_dir(data_dir: Path) -> None:
    """Create or upgrade the data dir; on first start make root's token. Blocking."""
    data_dir.mkdir(parents=True, exist_ok=True)
    blobs = FilesystemBlobs(data_dir)
    swept = blobs.sweep_temp()
    if swept:
        log.info("removed {count} leftover temp files of interrupted uploads", count=swept)
    registry = open_registry(data_dir)
    try:
        secret = registry.bootstrap()
    finally:
        registry.close()
    if secret is not None:
        path = data_dir / TOKEN_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as stream:
            stream.write(secret + "\n")
        os.chmod(path, 0o600)
        log.info("first start: created admin user root; its api token is in {path}",
                 path=str(path.resolve()))


class ThreadPoolService(Service):
    def __init__(self, pool: ThreadPool) -> None:
        self.pool = pool

    def startService(self) -> None:
        super().startService()
        self.pool.start()

    def stopService(self) -> None:
        super().stopService()
        self.pool.stop()


class WatcherService(Service):
    def __init__(self, watcher: ChangeWatcher) -> None:
        self.watcher = watcher

    def startService(self) -> None:
        super().startService()
        self.watcher.start()

    def stopService(self) -> None:
        super().stopService()
        self.watcher.stop()


class ListenerService(Service):
    """Listens on one endpoint and logs the address it got (tcp:0 picks a free port)."""

    def __init__(self, reactor: Any, description: str, site: PypidSite) -> None:
        self._reactor = reactor
        self._description = description
        self._site = site
        self._port: IListeningPort | None = None
        self._listening: Deferred[Any] | None = None

    def startService(self) -> None:
        super().startService()
        try:
            endpoint = serverFromString(self._reactor, self._description)
        except Exception as error:
            self._give_up(f"bad --listen {self._description!r}: {error!r}")
            return
        self._listening = endpoint.listen(self._site)
        self._listening.addCallbacks(self._listened, self._failed)

    def _listened(self, port: IListeningPort) -> None:
        self._port = port
        address = port.getHost()
        host = getattr(address, "host", None)
        where = f"http://{host}:{address.port}/" if host else str(address)  # type: ignore[attr-defined]
        log.info("pypid serving on {where}", where=where)

    def _failed(self, failure: Any) -> None:
        self._give_up(f"cannot listen on {self._description}: {failure.getErrorMessage()}")

    def _give_up(self, reason: str) -> None:
        """A daemon that cannot listen stops, with a non-zero exit for its supervisor."""
        log.critical("pypid: {reason}", reason=reason)
        if IReactorCore.providedBy(self._reactor):
            # twistd has no exit-status hook; leave with 1 once shutdown has run.
            self._reactor.addSystemEventTrigger("after", "shutdown", os._exit, 1)
            self._reactor.callWhenRunning(self._reactor.stop)

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        if self._port is not None:
            return self._port.stopListening()
        return None


class PypidService(MultiService):
    """Stops in order: stop listening, let requests in flight finish (bounded), close."""

    def __init__(self, reactor: Any, site: PypidSite, grace: float) -> None:
        super().__init__()
        self._reactor = reactor
        self._site = site
        self._grace = grace
        self.listeners: list[ListenerService] = []
        self.backends: list[Service] = []

    def add_backend(self, service: Service) -> None:
        self.backends.append(service)
        service.setServiceParent(self)

    def add_listener(self, service: ListenerService) -> None:
        self.listeners.append(service)
        service.setServiceParent(self)

    def stopService(self) -> Deferred[None]:
        Service.stopService(self)

        async def stop() -> None:
            await DeferredList([succeed(None)] + [
                Deferred.fromCoroutine(_maybe(service.stopService()))
                for service in self.listeners
            ])
            await self._site.drain(self._reactor, self._grace)
            for service in reversed(self.backends):
                await _maybe(service.stopService())

        return Deferred.fromCoroutine(stop())


async def _maybe(result: Deferred[Any] | None) -> None:
    if result is not None:
        await result


def build_service(config: Config, reactor: Any) -> PypidService:
    data_dir = Path(config.data_dir)
    prepare_data_dir(data_dir)

    stats = Stats() if config.metrics else None
    signal = ChangeSignal(data_dir)
    database = DatabaseService(reactor, data_dir, stats.database if stats else None, signal)
    worker_pool = ThreadPool(minthreads=0, maxthreads=config.upload_workers + 4,
                             name="pypid-worker")

    def run_worker(function: Any, *args: Any) -> Deferred[Any]:
        return deferToThreadPool(reactor, worker_pool, function, *args)

    caches = Caches(signal=signal)
    blobs = blob_store(config, data_dir)
    queue = BoundedQueue(run_worker, config.upload_workers, config.upload_queue)
    publisher = Publisher(blobs, queue, database.run, caches,
                          BlobGuard(data_dir / BLOB_LOCK_FILE))
    limiter = FailedAuthLimiter(reactor, config.auth_failure_limit, config.auth_failure_window,
                                config.auth_ban_time, config.auth_allowlist,
                                shared=data_dir / AUTH_FAILURES_FILE)
    upstream = Upstream(
        UpstreamClient(_http_client(reactor), reactor, run_worker, config.upstream_timeout),
        database.run, run_worker, blobs, publisher.guard, config.upstream_max_file_size)
    metrics = None if stats is None else Metrics(
        stats, config.metrics_allow,
        gauges={
            "pypid_upload_queue_waiting": ("Uploads waiting for a worker",
                                           lambda: float(queue.waiting)),
            "pypid_uploads_in_progress": ("Uploads being processed",
                                          lambda: float(queue.running)),
            "pypid_requests_in_flight": ("Requests being answered",
                                         lambda: float(site.in_flight)),  # made below
            "pypid_banned_addresses": ("Addresses banned for failed sign-ins",
                                       lambda: float(limiter.banned_count())),
        },
        counters={
            "pypid_upload_queue_full": ("Uploads refused with 503: the queue was full",
                                        lambda: float(queue.refused)),
            "pypid_bans": ("Addresses banned for failed sign-ins",
                           lambda: float(limiter.bans_total)),
            "pypid_upstream_page_fetches": ("Page requests made to upstreams",
                                            lambda: float(upstream.fetches["page"])),
            "pypid_upstream_file_fetches": ("Files fetched from upstreams",
                                            lambda: float(upstream.fetches["file"])),
            "pypid_upstream_metadata_fetches": ("Metadata files fetched from upstreams",
                                                lambda: float(upstream.fetches["metadata"])),
            "pypid_upstream_failures": ("Upstream fetches that failed or did not match",
                                        lambda: float(upstream.fetches["failed"])),
        })
    app = RegistryApp(
        run_db=database.run,
        authenticator=RegistryAuthenticator(database.run, caches),
        blobs=blobs,
        run_worker=run_worker,
        publisher=publisher,
        caches=caches,
        max_upload_size=config.max_upload_size,
        public_url=config.public_url,
        limiter=limiter,
        audit=AuditLog(data_dir),
        metrics=metrics,
        accel_redirect=config.accel_redirect,
        presign=(lambda sha256, filename: blobs.presigned_url(  # type: ignore[union-attr]
            sha256, filename, config.download_expiry))
        if config.download == "redirect" else None,
        read_range=blobs.read_range  # type: ignore[union-attr]
        if config.download == "proxy" else None,
        upstream=upstream,
        upstream_default=Layer(config.upstream, config.upstream_allow,
                               config.upstream_min_age, config.upstream_ttl),
    )
    site = PypidSite(app.resource(), spool_dir=blobs.temp_dir,
                     max_body_size=config.max_upload_size, log_requests=config.access_log,
                     timeout=config.request_timeout, min_body_rate=config.min_upload_rate,
                     streamed_body=lambda request: streamed_body(
                         request, blobs.new_temp, run_worker, app.router),
                     stats=stats, endpoint_of=app.router.endpoint_name)

    service = PypidService(reactor, site, config.shutdown_grace)
    service.setName("pypid")
    service.add_backend(database)
    service.add_backend(ThreadPoolService(worker_pool))
    service.add_backend(_DatabaseOpener(database, reactor, blobs, publisher.guard,
                                        config.upstream_retention_days))
    service.add_backend(WatcherService(ChangeWatcher(reactor, database.run, caches)))
    for description in config.listen:
        service.add_listener(ListenerService(reactor, description, site))
    return service


def blob_store(config: Config, data_dir: Path) -> FilesystemBlobs | S3Blobs:
    """The configured IBlobStore; an S3 bucket is checked now (before the reactor), so a
    bad endpoint, bucket or credential stops the start with one line."""
    if config.blob_store == "file":
        remember(data_dir, None)
        return FilesystemBlobs(data_dir)
    try:
        import boto3  # noqa: F401
    except ImportError:
        raise S3Error("--blob-store s3 needs boto3: pip install 'pypid[s3]'") from None
    assert config.s3_bucket is not None
    store = S3Blobs(data_dir, S3Settings(
        config.s3_bucket, config.s3_prefix, config.s3_endpoint_url, config.s3_region,
        config.s3_addressing_style, config.s3_verify_tls),
        keep_local=config.download != "proxy")
    store.check()
    remember(data_dir, store.settings)
    return store


def _http_client(reactor: Any) -> Any:
    """treq's client over a pool of persistent connections (one upstream, many fetches)."""
    from treq.client import HTTPClient
    from twisted.web.client import Agent, HTTPConnectionPool, _HTTP11ClientFactory

    class QuietFactory(_HTTP11ClientFactory):
        noisy = False  # no "Starting factory" line in the log per upstream connection

        def buildProtocol(self, addr: Any) -> Any:
            protocol: Any = super().buildProtocol(addr)
            made = protocol.connectionMade

            def connection_made() -> None:
                # Files come in reads of 1 MiB, not Twisted's 64 KiB: a sixteenth of the
                # parsing and Python calls per byte of a large upstream file.
                transport: Any = protocol.transport
                transport.bufferSize = UPSTREAM_READ_SIZE
                made()

            protocol.connectionMade = connection_made
            return protocol

    class QuietPool(HTTPConnectionPool):
        _factory = QuietFactory

    pool = QuietPool(reactor, persistent=True)
    pool.maxPersistentPerHost = 8
    return HTTPClient(Agent(reactor, pool=pool))


class _DatabaseOpener(Service):
    """Opens the daemon's connection in the database thread once the pool runs, then
    collects unused blobs (older than the grace period) at start and every hour."""

    def __init__(self, database: DatabaseService, reactor: Any, blobs: IBlobStore,
                 guard: BlobGuard, retention_days: float = 0.0) -> None:
        self._database = database
        self._retention_days = retention_days
        self._blobs = blobs
        self._guard = guard
        self._collector = LoopingCall(self.collect)
        self._collector.clock = reactor

    def startService(self) -> None:
        super().startService()
        def collect_regularly(_: object) -> None:
            self._collector.start(GC_INTERVAL_SECONDS, now=True)

        self._database.open().addCallbacks(
            collect_regularly, lambda failure: log.failure("cannot open the database", failure)
        )

    def collect(self) -> Deferred[None]:
        def report(removed: int) -> None:
            if removed:
                log.info("removed {count} unused blobs", count=removed)

        return self._database.run(
            collect_garbage, self._blobs, self._guard, DEFAULT_GRACE_SECONDS,
            self._retention_days,
        ).addCallbacks(report, lambda failure: log.failure("garbage collection", failure))

    def stopService(self) -> None:
        super().stopService()
        if self._collector.running:
            self._collector.stop()
