"""`twistd pypid`: the command-line options and the service they make."""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService
from twisted.python import usage

from pypid.blobs.s3 import S3Error
from pypid.config import (
    DEFAULT_DATA_DIR,
    DEFAULT_MAX_UPLOAD_SIZE,
    Config,
    ConfigError,
    load_config,
)
from pypid.store.schema import SchemaError


class Options(usage.Options):
    synopsis = "[--data-dir PATH] [--listen STRPORT ...] [--config FILE] [options]"
    longdesc = (
        "Run pypid, a Python package registry speaking GitLab's PyPI API. Settings come "
        "from the defaults, then --config, then the command line."
    )
    # Defaults are None here so that a TOML value is not overridden by an option that was
    # never given; the real defaults are in the help text and in pypid.config.
    optParameters = [
        ["data-dir", None, None,
         f"Directory for the database, blobs and temp files [default: {DEFAULT_DATA_DIR}]"],
        ["config", None, None, "TOML file with the same settings (see conf/)"],
        ["max-upload-size", None, None,
         f"Largest upload in bytes; larger ones get 413 [default: {DEFAULT_MAX_UPLOAD_SIZE}]"],
        ["public-url", None, None,
         "External base URL (may have a path prefix) when behind a reverse proxy"],
        ["upload-workers", None, None, "Uploads processed at once [default: 4]"],
        ["upload-queue", None, None,
         "Uploads waiting beyond those before 503 + Retry-After [default: 64]"],
        ["shutdown-grace", None, None,
         "Seconds a stopping daemon waits for requests in flight [default: 10]"],
        ["request-timeout", None, None,
         "Seconds before an idle or stalled connection is closed [default: 60]"],
        ["min-upload-rate", None, None,
         "Bytes/s below which a request body is cut after 10 s; 0: off [default: 1024]"],
        ["auth-failure-limit", None, None,
         "Failed sign-ins from one address before it is banned [default: 30]"],
        ["auth-failure-window", None, None,
         "Seconds over which failed sign-ins are counted [default: 60]"],
        ["auth-ban-time", None, None, "Seconds an address stays banned [default: 3600]"],
        ["log-format", None, None,
         "text, or json: one JSON object a line for log shippers [default: text]"],
        ["accel-redirect", None, None,
         "Answer downloads with X-Accel-Redirect to PREFIX (an nginx internal location "
         "aliased to the data dir's blobs/sha256/); see conf/nginx.conf [default: off]"],
        ["blob-store", None, None, "file, or s3 (see the s3 options) [default: file]"],
        ["s3-endpoint-url", None, None,
         "S3 API endpoint (MinIO, Ceph, R2...); credentials come from the environment, "
         "~/.aws or instance roles, never from options [default: AWS]"],
        ["s3-bucket", None, None, "Bucket for the blobs (must exist)"],
        ["s3-prefix", None, None, "Key prefix inside the bucket [default: none]"],
        ["s3-region", None, None, "Region of the bucket"],
        ["s3-addressing-style", None, None, "auto, path or virtual [default: auto]"],
        ["s3-verify-tls", None, None, "Check the endpoint's TLS certificate [default: true]"],
        ["download", None, None,
         "serve (pypid sends the bytes), redirect (302 to a presigned S3 URL) or proxy "
         "(pypid streams the S3 object, keeping no local copy) [default: serve]"],
        ["download-expiry", None, None,
         "Seconds a presigned download URL is valid [default: 300]"],
        ["upstream", None, None,
         "Simple index (PEP 503/691) that names with no local files come from, for every "
         "project and group that does not set its own; off: none [default: off]"],
        ["upstream-min-age", None, None,
         "Days an upstream file must have been public before it is shown [default: 0]"],
        ["upstream-ttl", None, None,
         "Seconds an upstream page is served before it is revalidated [default: 300]"],
        ["upstream-timeout", None, None,
         "Seconds an upstream may take to answer before 504 [default: 30]"],
        ["upstream-max-file-size", None, None,
         "Largest upstream file in bytes; larger ones are not listed [default: 5 GiB]"],
        ["upstream-retention-days", None, None,
         "Days a cached upstream file is kept after its last request; 0: for good "
         "[default: 90]"],
    ]

    optFlags = [["access-log", None, "Log one line per request [default: off]"],
                ["no-metrics", None, "Do not count requests for /-/metrics [default: count]"]]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self.config: Config | None = None

    def opt_auth_allow(self, network: str) -> None:
        """Address or network never banned for failed sign-ins; repeatable
        [default: 127.0.0.0/8 and ::1]."""
        self.setdefault("auth-allow", []).append(network)

    def opt_metrics_allow(self, network: str) -> None:
        """Address or network allowed to read /-/metrics; repeatable
        [default: 127.0.0.0/8 and ::1]."""
        self.setdefault("metrics-allow", []).append(network)

    def opt_upstream_allow(self, pattern: str) -> None:
        """Name or glob pattern that may come from the upstream; repeatable
        [default: every name with no local files]."""
        self.setdefault("upstream-allow", []).append(pattern)

    def opt_listen(self, description: str) -> None:
        """Twisted endpoint to listen on; repeatable
        [default: tcp:8080:interface=127.0.0.1]; systemd:domain=INET:index=0 for socket
        activation."""
        self["listen"].append(description)

    def postOptions(self) -> None:
        given: dict[str, Any] = {
            name: self[name]
            for name in ("data-dir", "max-upload-size", "public-url", "upload-workers",
                         "upload-queue", "shutdown-grace", "request-timeout", "min-upload-rate",
                         "auth-failure-limit", "auth-failure-window", "auth-ban-time",
                         "log-format", "accel-redirect", "upstream", "upstream-min-age",
                         "upstream-ttl", "upstream-timeout", "upstream-max-file-size",
                         "upstream-retention-days", "blob-store", "s3-endpoint-url",
                         "s3-bucket", "s3-prefix", "s3-region", "s3-addressing-style",
                         "s3-verify-tls", "download", "download-expiry")
            if self[name] is not None
        }
        if self["listen"]:
            given["listen"] = list(self["listen"])
        if self["access-log"]:
            given["access-log"] = True
        if self.get("auth-allow"):
            given["auth-allowlist"] = list(self["auth-allow"])
        if self.get("metrics-allow"):
            given["metrics-allow"] = list(self["metrics-allow"])
        if self.get("upstream-allow"):
            given["upstream-allow"] = list(self["upstream-allow"])
        if self["no-metrics"]:
            given["metrics"] = False
        try:
            self.config = load_config(self["config"], given)
        except ConfigError as error:
            raise usage.UsageError(str(error)) from None
        parent = getattr(self, "parent", None)
        if self.config.log_format == "json" and parent is not None:
            from pypid import logs

            # twistd's --logger hook, resolved by twistd after this and called when it
            # starts logging.
            logs.destination = (parent.get("logfile"), bool(parent.get("nodaemon")))
            parent["logger"] = logs.FACTORY


def makeService(options: Options) -> IService:
    from twisted.internet import reactor

    from pypid.daemon import build_service

    assert options.config is not None
    try:
        return build_service(options.config, reactor)
    except (SchemaError, OSError, S3Error) as error:
        raise SystemExit(f"pypid: cannot start: {error}") from None
