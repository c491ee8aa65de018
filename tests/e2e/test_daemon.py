"""The real daemon: first start, CLI beside it, revocation, restart, daemonized runs."""

from __future__ import annotations

import os
import re
import select
import signal
import stat
import subprocess
import time
from pathlib import Path

from tests.e2e.daemon import BIN, REPO, Daemon, environment

SIMPLE = "/api/v4/projects/{}/packages/pypi/simple/"


def test_first_start(daemon: Daemon) -> None:
    """Health is 200; root's token is in a 0600 file; the log names the file, not the token."""
    code, body = daemon.get("/-/health")
    assert code == 200 and b'"database": "ok"' in body
    token_file = daemon.data_dir / "initial-root-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert str(token_file) in daemon.log
    assert daemon.token not in daemon.log


def test_cli_beside_the_running_daemon(daemon: Daemon) -> None:
    """CLI changes are seen by the daemon; a revoked token is refused at the next request
    (the CLI publishes on the change signal before it exits)."""
    project_id = daemon.cli("project", "create", "acme/tools").stdout.strip()
    daemon.cli("user", "create", "alice")
    daemon.cli("member", "add", "acme/tools", "alice", "--role", "reporter")
    secret = daemon.cli("token", "create", "alice", "--scopes", "read_api").stdout.strip()
    assert daemon.get(SIMPLE.format(project_id), secret)[0] == 200
    assert daemon.get(SIMPLE.format("acme%2Ftools"), secret)[0] == 200
    token_id = daemon.cli("token", "list", "alice", "--json").stdout.split('"id": ')[1].split(",")[0]
    daemon.cli("token", "revoke", token_id)
    assert daemon.get(SIMPLE.format(project_id), secret)[0] == 401
    assert daemon.get(SIMPLE.format(project_id), daemon.token)[0] == 200
    assert daemon.token not in daemon.log and secret not in daemon.log


def test_restart_keeps_everything(tmp_path: Path) -> None:
    """After a stop and a start on the same data dir, projects and tokens still work."""
    first = Daemon(tmp_path / "data").start()
    token = first.token
    first.cli("project", "create", "acme/tools", "--visibility", "public")
    # twistd re-raises the signal after a clean shutdown, so the status is -SIGTERM.
    assert first.stop() in (0, -signal.SIGTERM)
    assert "Main loop terminated" in first.log
    second = Daemon(tmp_path / "data").start()
    try:
        assert second.token == token
        assert "first start" not in second.log
        assert second.get(SIMPLE.format(1), token)[0] == 200
        assert "acme/tools" in second.cli("project", "list").stdout
    finally:
        second.stop()


def test_daemonized_start_writes_pidfile_and_stops_on_sigterm(tmp_path: Path) -> None:
    """`twistd pypid` detaches, writes its pidfile, serves, and exits on SIGTERM."""
    pidfile, logfile = tmp_path / "twistd.pid", tmp_path / "twistd.log"
    subprocess.run(
        [str(BIN / "twistd"), "--pidfile", str(pidfile), "--logfile", str(logfile), "pypid",
         "--data-dir", str(tmp_path / "data"), "--listen", "tcp:0:interface=127.0.0.1"],
        check=True, env=environment(), cwd=tmp_path, timeout=60,
    )
    # The detached daemon is nobody's child and writes only to its log file: polling that
    # file (bounded) is the one way to see it come up.
    deadline = time.monotonic() + 30
    while not (logfile.exists() and "pypid serving on" in logfile.read_text()):
        assert time.monotonic() < deadline, "daemon did not start"
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    url = re.search(r"pypid serving on (http://\S+)/", logfile.read_text())
    assert url is not None
    import urllib.request

    with urllib.request.urlopen(url.group(1) + "/-/health", timeout=10) as response:
        assert response.status == 200
    exited = os.pidfd_open(pid)  # becomes readable when the process ends: an event to await
    try:
        os.kill(pid, signal.SIGTERM)
        readable, _, _ = select.select([exited], [], [], 30)
        assert readable, "daemon did not stop within 30 s"
    finally:
        os.close(exited)
    assert not pidfile.exists()
    assert "Main loop terminated" in logfile.read_text()


def test_help_lists_options_with_defaults() -> None:
    """`twistd pypid --help` lists every option with its default."""
    result = subprocess.run([str(BIN / "twistd"), "pypid", "--help"], capture_output=True,
                            text=True, env=environment(), cwd=REPO, timeout=60, check=True)
    for option in ("--data-dir", "--listen", "--config", "--max-upload-size", "--public-url"):
        assert option in result.stdout
    assert "./pypid-data" in result.stdout and "52428800" in result.stdout


def test_unusable_listen_stops_the_daemon(tmp_path: Path) -> None:
    """A --listen that cannot be used ends the daemon with a non-zero status and a reason."""
    result = subprocess.run(
        [str(BIN / "twistd"), "-n", "--pidfile=", "pypid", "--data-dir", str(tmp_path / "d"),
         "--listen", "bogus:1234"],
        capture_output=True, text=True, env=environment(), cwd=tmp_path, timeout=60, check=False)
    assert result.returncode == 1
    assert "bad --listen 'bogus:1234'" in result.stdout + result.stderr


def test_bad_config_stops_the_start_with_one_line(tmp_path: Path) -> None:
    """An unknown key in the config file ends the start with a message naming it."""
    config = tmp_path / "bad.toml"
    config.write_text("colour = 'blue'\n")
    result = subprocess.run(
        [str(BIN / "twistd"), "-n", "pypid", "--config", str(config)],
        capture_output=True, text=True, env=environment(), cwd=tmp_path, timeout=60, check=False)
    assert result.returncode != 0
    assert "unknown setting 'colour'" in result.stdout + result.stderr


def test_systemd_socket_activation(tmp_path: Path) -> None:
    """With --listen systemd:domain=INET:index=0 pypid serves on the socket it is handed."""
    import socket
    import sys
    import urllib.request

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    # As systemd does: the socket as fd 3, LISTEN_FDS=1 and LISTEN_PID = the daemon's pid
    # (set just before exec, which keeps the pid).
    launcher = ("import os, sys; os.environ['LISTEN_PID'] = str(os.getpid()); "
                "os.environ['LISTEN_FDS'] = '1'; os.environ['LISTEN_FDNAMES'] = 'pypid.socket'; "
                "os.execv(sys.argv[1], sys.argv[1:])")
    process = subprocess.Popen(
        [sys.executable, "-c", launcher, str(BIN / "twistd"), "-n", "--pidfile=", "pypid",
         "--data-dir", str(tmp_path / "data"), "--listen", "systemd:domain=INET:index=0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment(),
        cwd=tmp_path, pass_fds=(3,),
        preexec_fn=lambda: os.dup2(listener.fileno(), 3),
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if "pypid serving on" in line:
                break
        else:
            raise AssertionError("daemon exited before serving")
        listener.close()  # only the daemon's copy is left
        url = f"http://127.0.0.1:{port}/-/health"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


def test_metrics_of_the_real_daemon(tmp_path: Path) -> None:
    """The daemon's /-/metrics counts requests, database jobs, queue and process figures
    for loopback clients; with --metrics-allow elsewhere, loopback gets 404."""
    daemon = Daemon(tmp_path / "data").start()
    try:
        daemon.cli("project", "create", "acme/seen", "--visibility", "public")
        for _ in range(3):
            assert daemon.get(SIMPLE.format(1))[0] == 200
        code, body = daemon.get("/-/metrics")
        text = body.decode()
        assert code == 200
        assert 'pypid_requests_total{code="2xx",endpoint="simple_root"} 3.0' in text
        assert re.search(r"^pypid_database_job_seconds_count [1-9]", text, re.M)
        for name in ("pypid_upload_queue_waiting", "pypid_requests_in_flight",
                     "pypid_banned_addresses", "pypid_bans_total", "process_resident_memory_bytes"):
            assert f"\n{name} " in text, name
    finally:
        daemon.stop()
    hidden = Daemon(tmp_path / "other", args=["--metrics-allow", "10.0.0.0/8"]).start()
    try:
        assert hidden.get("/-/metrics")[0] == 404
    finally:
        hidden.stop()


def test_json_logs(tmp_path: Path) -> None:
    """--log-format json: every line twistd and pypid write is one JSON object, with the
    event's fields (the listening address among them)."""
    import json

    command = [str(BIN / "twistd"), "-n", "--pidfile=", "pypid", "--data-dir",
               str(tmp_path / "data"), "--listen", "tcp:0:interface=127.0.0.1",
               "--log-format", "json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=environment(), cwd=tmp_path)
    events = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            events.append(json.loads(line))
            if "pypid serving on" in events[-1].get("log_format", ""):
                break
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
    assert events[-1]["where"].startswith("http://127.0.0.1:")
    assert any("first start" in event.get("log_format", "") for event in events)


def test_group_changes_by_the_cli_reach_the_running_daemon(daemon: Daemon) -> None:
    """A group membership added and removed with the CLI changes what the daemon's group
    index shows at its next request (its cached group access is dropped too)."""
    daemon.cli("project", "create", "team/private-tools")
    daemon.cli("user", "create", "gwen")
    secret = daemon.cli("token", "create", "gwen", "--scopes", "read_api").stdout.strip()
    group_index = "/api/v4/groups/team/-/packages/pypi/simple/"
    assert daemon.get(group_index, secret)[0] == 404
    for change, expected in ((("add", "team", "gwen", "--role", "reporter"), 200),
                             (("remove", "team", "gwen"), 404)):
        daemon.cli("group", "member", *change)
        assert daemon.get(group_index, secret)[0] == expected, f"{change[0]} not seen"
