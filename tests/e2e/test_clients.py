"""Real clients against the real daemon: twine, pip, uv, pdm and poetry, as users run them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dists import sdist_bytes, sdist_filename, wheel_bytes, write_wheel
from tests.e2e.daemon import BIN, Daemon, environment, run


def make_dists(directory: Path, name: str, version: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    write_wheel(directory, name, version)
    (directory / sdist_filename(name, version)).write_bytes(sdist_bytes(name, version))
    return directory


def upload_url(daemon: Daemon, project: str) -> str:
    return f"{daemon.url}/api/v4/projects/{project}/packages/pypi"


def index_url(daemon: Daemon, project: str, user: str, secret: str) -> str:
    host = daemon.url.removeprefix("http://")
    return f"http://{user}:{secret}@{host}/api/v4/projects/{project}/packages/pypi/simple/"


def twine(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**environment(), "NO_COLOR": "1", "COLUMNS": "200"}
    return run([str(BIN / "twine"), *argv, "--non-interactive", "--disable-progress-bar"],
               check=check, env=env)


def pip_install(tmp_path: Path, url: str, requirement: str) -> Path:
    target = tmp_path / f"site-{abs(hash(url + requirement))}"
    run([sys.executable, "-m", "pip", "--isolated", "install", "--no-cache-dir",
         "--disable-pip-version-check", "--index-url", url, "--target", str(target), requirement])
    return target


def uv_install(tmp_path: Path, url: str, requirement: str) -> Path:
    """uv installs into a venv of its own; the venv's python."""
    venv = tmp_path / f"uv-{abs(hash(url + requirement))}"
    run([str(BIN / "uv"), "venv", "--python", sys.executable, str(venv)])
    run([str(BIN / "uv"), "pip", "install", "--python", str(venv / "bin" / "python"),
         "--no-cache", "--index-url", url, requirement])
    return venv / "bin" / "python"


def imported_value(site: Path, module: str) -> str:
    result = run([sys.executable, "-c", f"import {module}; print({module}.VALUE)"],
                 env={**environment(), "PYTHONPATH": str(site)})
    return result.stdout.strip()


def test_twine_upload_then_pip_install(daemon: Daemon, tmp_path: Path) -> None:
    """twine uploads a wheel and an sdist; pip installs the package with a token in the URL."""
    project = daemon.cli("project", "create", "acme/tools").stdout.strip()
    dist = make_dists(tmp_path / "dist", "hello-pypid", "1.0")
    result = twine("upload", "--repository-url", upload_url(daemon, "acme%2Ftools"),
                   "-u", "__token__", "-p", daemon.token, *map(str, sorted(dist.iterdir())))
    assert len(re.findall(r"^Uploading \S+\.(?:whl|tar\.gz)$", result.stdout, re.M)) == 2
    site = pip_install(tmp_path, index_url(daemon, project, "__token__", daemon.token),
                       "hello-pypid==1.0")
    assert imported_value(site, "hello_pypid") == "1.0"
    assert daemon.token not in daemon.log


def test_uv_publish_then_uv_install(daemon: Daemon, tmp_path: Path) -> None:
    """uv publishes with a token and installs from the project's index into a venv."""
    project = daemon.cli("project", "create", "acme/uv").stdout.strip()
    dist = make_dists(tmp_path / "dist", "uv-thing", "2.1")
    run([str(BIN / "uv"), "publish", "--publish-url", upload_url(daemon, project),
         "--username", "__token__", "--password", daemon.token, *map(str, dist.iterdir())])
    venv = tmp_path / "venv"
    run([str(BIN / "uv"), "venv", "--python", sys.executable, str(venv)])
    run([str(BIN / "uv"), "pip", "install", "--python", str(venv / "bin" / "python"),
         "--no-cache", "--index-url", index_url(daemon, project, "__token__", daemon.token),
         "uv-thing==2.1"])
    result = run([str(venv / "bin" / "python"), "-c", "import uv_thing; print(uv_thing.VALUE)"])
    assert result.stdout.strip() == "2.1"


def test_deploy_token_installs(daemon: Daemon, tmp_path: Path) -> None:
    """A read-only deploy token installs with its own user name, and nothing else works."""
    project = daemon.cli("project", "create", "acme/deploy").stdout.strip()
    dist = make_dists(tmp_path / "dist", "deployed", "0.3")
    twine("upload", "--repository-url", upload_url(daemon, project), "-u", "__token__",
          "-p", daemon.token, *map(str, dist.iterdir()))
    username, secret = daemon.cli("deploy-token", "create", project, "--scopes",
                                  "read_package_registry").stdout.split()
    site = pip_install(tmp_path, index_url(daemon, project, username, secret), "deployed")
    assert imported_value(site, "deployed") == "0.3"
    refused = twine("upload", "--repository-url", upload_url(daemon, project), "-u", username,
                    "-p", secret, str(write_wheel(tmp_path, "deployed", "0.4")), check=False)
    assert refused.returncode != 0 and "403" in refused.stdout + refused.stderr


def test_pdm_publish(daemon: Daemon, tmp_path: Path) -> None:
    """pdm publishes prebuilt files from dist/ the way it does to GitLab."""
    project = daemon.cli("project", "create", "acme/pdm").stdout.strip()
    work = tmp_path / "proj"
    make_dists(work / "dist", "pdm-made", "1.2")
    (work / "pyproject.toml").write_text(
        '[project]\nname = "pdm-made"\nversion = "1.2"\n')
    env = {**environment(), "PDM_CHECK_UPDATE": "false", "PDM_HOME": str(tmp_path / "pdm-home"),
           "PDM_CONFIG_FILE": str(tmp_path / "pdm.toml"), "NO_COLOR": "1",
           "PDM_USE_VENV": "false", "PDM_PYTHON": sys.executable}
    run([str(BIN / "pdm"), "publish", "--no-build", "-r", upload_url(daemon, project),
         "-u", "__token__", "-P", daemon.token], cwd=work, env=env)
    document = daemon.get_json(f"/api/v4/projects/{project}/packages", daemon.token)
    assert [(p["name"], p["version"]) for p in document] == [("pdm-made", "1.2")]


def test_poetry_publish(daemon: Daemon, tmp_path: Path) -> None:
    """poetry publishes prebuilt files from dist/ to a repository set up as for GitLab."""
    project = daemon.cli("project", "create", "acme/poetry").stdout.strip()
    work = tmp_path / "proj"
    make_dists(work / "dist", "poetry-made", "1.3")
    (work / "pyproject.toml").write_text(
        '[project]\nname = "poetry-made"\nversion = "1.3"\n'
        '[build-system]\nrequires = ["poetry-core>=2"]\n'
        'build-backend = "poetry.core.masonry.api"\n')
    env = {**environment(), "POETRY_CONFIG_DIR": str(tmp_path / "poetry-config"),
           "POETRY_CACHE_DIR": str(tmp_path / "poetry-cache"), "NO_COLOR": "1",
           "POETRY_REPOSITORIES_PYPID_URL": upload_url(daemon, project),
           "POETRY_HTTP_BASIC_PYPID_USERNAME": "__token__",
           "POETRY_HTTP_BASIC_PYPID_PASSWORD": daemon.token}
    run([str(BIN / "poetry"), "publish", "--repository", "pypid", "--no-interaction"],
        cwd=work, env=env)
    files = daemon.get_json(f"/api/v4/projects/{project}/packages/1/package_files",
                            daemon.token)
    assert sorted(f["file_name"] for f in files) == [
        "poetry_made-1.3-py3-none-any.whl", "poetry_made-1.3.tar.gz"]


@pytest.fixture
def small_daemon(tmp_path: Path) -> Daemon:
    running = Daemon(tmp_path / "small", ["--max-upload-size", "20000"]).start()
    yield running  # type: ignore[misc]
    running.stop()


def test_twine_shows_refusals(small_daemon: Daemon, tmp_path: Path) -> None:
    """413, a wrong digest and a wrong filename reach the user as twine prints them."""
    daemon = small_daemon
    project = daemon.cli("project", "create", "acme/refuse").stdout.strip()
    url = upload_url(daemon, project)
    big = tmp_path / "big"
    big.mkdir()
    write_wheel(big, "big", "1.0", padding=60_000)
    result = twine("upload", "--repository-url", url, "-u", "__token__", "-p", daemon.token,
                   str(next(big.iterdir())), check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert re.search(r"413 .*File too large: \d+ bytes, limit 20000", " ".join(output.split()))

    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "wrongname-1.0-py3-none-any.whl").write_bytes(wheel_bytes("pkg", "1.0"))
    result = twine("upload", "--repository-url", url, "-u", "__token__", "-p", daemon.token,
                   str(next(wrong.iterdir())), check=False)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert "400" in output and "not a file of package" in output

    # A digest damaged on the way: twine itself always computes the right one, so this run
    # of twine has its sha256 replaced before it sends the form.
    good = tmp_path / "good"
    good.mkdir()
    wheel = write_wheel(good, "pkg", "1.0")
    tamper = ("import sys, twine.package as p\n"
              "from twine.__main__ import main\n"
              "orig = p.PackageFile.metadata_dictionary\n"
              "def bad(self):\n"
              "    d = orig(self); d['sha256_digest'] = '0' * 64; return d\n"
              "p.PackageFile.metadata_dictionary = bad\n"
              "sys.exit(main())\n")
    env = {**environment(), "NO_COLOR": "1", "COLUMNS": "200"}
    result = run([sys.executable, "-c", tamper, "upload", "--repository-url", url, "-u",
                  "__token__", "-p", daemon.token, "--non-interactive",
                  "--disable-progress-bar", str(wheel)], check=False, env=env)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert "400" in output and "sha256_digest sent does not match" in output
    listed = daemon.get_json(f"/api/v4/projects/{project}/packages", daemon.token)
    assert listed == []
    assert os.listdir(daemon.data_dir / "tmp") == []


def test_pip_installs_the_dependencies_of_an_old_sdist(daemon: Daemon, tmp_path: Path) -> None:
    """An sdist with Metadata-Version 1.0 (dependencies only in setup.py, as Flask 0.10.1)
    is not advertised with PEP 658 metadata, so pip builds it and installs its dependency;
    trusting a .metadata without Requires-Dist, it used to install it without."""
    project = daemon.cli("project", "create", "acme/old").stdout.strip()
    dist = tmp_path / "old-dist"
    dist.mkdir()
    setup_py = ("from setuptools import setup\n"
                "setup(name='oldflask', version='1.0', py_modules=['oldflask'],\n"
                "      install_requires=['olddep'])\n")
    pkg_info = "Metadata-Version: 1.0\nName: oldflask\nVersion: 1.0\nSummary: old\n\n"
    (dist / sdist_filename("oldflask", "1.0")).write_bytes(
        sdist_bytes("oldflask", "1.0", metadata=pkg_info, extra={"setup.py": setup_py}))
    write_wheel(dist, "olddep", "2.0")
    twine("upload", "--repository-url", upload_url(daemon, project), "-u", "__token__",
          "-p", daemon.token, *map(str, sorted(dist.iterdir())))
    target = tmp_path / "site-old"
    run([sys.executable, "-m", "pip", "--isolated", "install", "--no-cache-dir",
         "--disable-pip-version-check", "--no-build-isolation", "--index-url",
         index_url(daemon, project, "__token__", daemon.token), "--target", str(target),
         "oldflask"])
    assert imported_value(target, "olddep") == "2.0"
    assert imported_value(target, "oldflask") == "1.0"


def test_pip_and_uv_install_through_one_group_index(daemon: Daemon, tmp_path: Path) -> None:
    """One group URL serves the packages of every project below: an app from one project
    installs with its dependency from another, with pip and with uv, with a group deploy
    token."""
    apps = daemon.cli("project", "create", "team/apps").stdout.strip()
    libs = daemon.cli("project", "create", "team/platform/libs").stdout.strip()
    dist = tmp_path / "group-dist"
    dist.mkdir()
    app_metadata = ("Metadata-Version: 2.1\nName: teamapp\nVersion: 1.0\n"
                    "Requires-Dist: corelib>=2\n\n")
    (dist / "teamapp-1.0-py3-none-any.whl").write_bytes(
        wheel_bytes("teamapp", "1.0", metadata=app_metadata))
    write_wheel(dist, "corelib", "2.0")
    for project, filename in ((apps, "teamapp-1.0-py3-none-any.whl"),
                              (libs, "corelib-2.0-py3-none-any.whl")):
        twine("upload", "--repository-url", upload_url(daemon, project), "-u", "__token__",
              "-p", daemon.token, str(dist / filename))
    username, secret = daemon.cli("group", "deploy-token", "create", "team", "--scopes",
                                  "read_package_registry").stdout.split()
    host = daemon.url.removeprefix("http://")
    group_url = f"http://{username}:{secret}@{host}/api/v4/groups/team/-/packages/pypi/simple/"
    site = pip_install(tmp_path, group_url, "teamapp")
    assert imported_value(site, "corelib") == "2.0"
    assert imported_value(site, "teamapp") == "1.0"
    venv = tmp_path / "group-venv"
    run([str(BIN / "uv"), "venv", "--python", sys.executable, str(venv)])
    run([str(BIN / "uv"), "pip", "install", "--python", str(venv / "bin" / "python"),
         "--no-cache", "--index-url", group_url, "teamapp"])
    result = run([str(venv / "bin" / "python"), "-c", "import corelib; print(corelib.VALUE)"])
    assert result.stdout.strip() == "2.0"
