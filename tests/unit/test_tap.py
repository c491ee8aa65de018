"""The twistd plugin and the service it makes, without opening sockets."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
from zope.interface.verify import verifyObject

from pypid import tap
from pypid.daemon import ListenerService, PypidService
from pypid.store.db import DatabaseService
from pypid.web.site import PypidSite


def test_plugin_is_discovered() -> None:
    """twistd finds a plugin named pypid that provides IServiceMaker."""
    import twisted.plugins

    makers = [m for m in getPlugins(IServiceMaker, twisted.plugins) if m.tapname == "pypid"]
    assert len(makers) == 1
    assert verifyObject(IServiceMaker, makers[0])
    assert makers[0].options is tap.Options


def test_make_service_builds_the_tree(tmp_path: Path) -> None:
    """makeService prepares the data dir and returns database, pools and listeners."""
    options = tap.Options()
    options.parseOptions(["--data-dir", str(tmp_path / "data"), "--listen", "tcp:0",
                          "--listen", "tcp:0:interface=127.0.0.1"])
    service = tap.makeService(options)
    assert isinstance(service, PypidService)
    children = list(service)
    assert any(isinstance(child, DatabaseService) for child in children)
    listeners = [child for child in children if isinstance(child, ListenerService)]
    assert len(listeners) == 2
    site = listeners[0]._site
    assert isinstance(site, PypidSite)
    assert site._parsePOSTFormSubmission is False
    assert site.spool_dir == tmp_path / "data" / "tmp"
    token = tmp_path / "data" / "initial-root-token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert token.read_text().startswith("glpat-")


def test_newer_data_dir_stops_the_start(tmp_path: Path) -> None:
    """A data dir from a newer pypid ends the start with one clear line."""
    import sqlite3

    from pypid.store import schema
    from pypid.store.db import DATABASE_NAME, connect

    connect(tmp_path / DATABASE_NAME).close()
    conn = sqlite3.connect(tmp_path / DATABASE_NAME)
    conn.execute(f"PRAGMA user_version = {schema.latest_version() + 5}")
    conn.close()
    options = tap.Options()
    options.parseOptions(["--data-dir", str(tmp_path)])
    with pytest.raises(SystemExit, match="newer than this pypid"):
        tap.makeService(options)
