"""The admin command, run in-process against a data dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pypid.cli import main
from pypid.daemon import prepare_data_dir


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    prepare_data_dir(tmp_path / "data")
    return tmp_path / "data"


def run(capsys: pytest.CaptureFixture[str], data_dir: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["--data-dir", str(data_dir), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_full_session(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    """Every SPEC command works and prints what SPEC says."""
    assert run(capsys, data_dir, "user", "create", "alice")[0] == 0
    code, out, _ = run(capsys, data_dir, "project", "create", "acme/tools", "--visibility", "public")
    assert code == 0 and out.strip() == "1"
    code, out, _ = run(capsys, data_dir, "project", "create", "acme/secret")
    assert out.strip() == "2"
    code, out, _ = run(capsys, data_dir, "project", "list", "--json")
    projects = json.loads(out)
    assert [(p["id"], p["path"], p["visibility"]) for p in projects] == [
        (1, "acme/tools", "public"), (2, "acme/secret", "private")]
    code, out, _ = run(capsys, data_dir, "project", "list")
    assert "acme/secret" in out and "private" in out
    assert run(capsys, data_dir, "member", "add", "acme/tools", "alice", "--role", "developer")[0] == 0
    assert run(capsys, data_dir, "member", "add", "2", "alice", "--role", "reporter")[0] == 0
    code, out, _ = run(capsys, data_dir, "token", "create", "alice", "--scopes",
                       "read_api,write_package_registry", "--name", "ci", "--expires-at", "2999-01-01")
    assert code == 0 and out.strip().startswith("glpat-") and len(out.strip().split()) == 1
    secret = out.strip()
    code, out, _ = run(capsys, data_dir, "token", "list", "alice", "--json")
    tokens = json.loads(out)
    assert tokens[0]["name"] == "ci" and tokens[0]["scopes"] == ["read_api", "write_package_registry"]
    assert tokens[0]["expires_at"] == "2999-01-01" and tokens[0]["revoked"] is False
    assert {"id", "last_used_at", "created_at"} <= set(tokens[0])
    assert secret not in out
    code, out, _ = run(capsys, data_dir, "token", "revoke", str(tokens[0]["id"]))
    assert code == 0
    code, out, _ = run(capsys, data_dir, "token", "list", "alice", "--json")
    assert json.loads(out)[0]["revoked"] is True
    code, out, _ = run(capsys, data_dir, "deploy-token", "create", "acme/tools", "--scopes",
                       "read_package_registry")
    username, deploy_secret = out.split()
    assert username == "gitlab+deploy-token-1" and deploy_secret.startswith("gldt-")
    code, out, _ = run(capsys, data_dir, "deploy-token", "create", "1", "--scopes", "api",
                       "--username", "ci-bot")
    assert out.split()[0] == "ci-bot"
    code, out, _ = run(capsys, data_dir, "project", "settings", "acme/tools", "--duplicates", "deny")
    assert json.loads(out)["duplicates"] == "deny"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("user", "create", "root"), "already exists"),
        (("user", "create", "bad name"), "user name"),
        (("project", "create", "nopath"), "NAMESPACE/NAME"),
        (("member", "add", "no/such", "root", "--role", "reporter"), "no project"),
        (("member", "add", "1", "root", "--role", "reporter"), "no project"),
        (("token", "create", "ghost", "--scopes", "api"), "no user"),
        (("token", "create", "root", "--scopes", "sudo"), "unknown scope"),
        (("token", "create", "root", "--scopes", "api", "--expires-at", "2000-01-01"),
         "not in the future"),
        (("token", "create", "root", "--scopes", "api", "--expires-at", "soon"), "YYYY-MM-DD"),
        (("token", "revoke", "999"), "no personal access token"),
        (("token", "revoke", "abc"), "must be a number"),
        (("token", "list", "ghost"), "no user"),
        (("deploy-token", "create", "no/such", "--scopes", "api"), "no project"),
    ],
)
def test_errors_are_one_line_on_stderr(
    capsys: pytest.CaptureFixture[str], data_dir: Path, argv: tuple[str, ...], fragment: str
) -> None:
    """Refusals exit non-zero with one line on stderr and nothing on stdout."""
    code, out, err = run(capsys, data_dir, *argv)
    assert code != 0
    assert out == ""
    assert fragment in err and err.count("\n") == 1


def test_duplicate_project_is_refused(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    """A second project with the same path is refused."""
    run(capsys, data_dir, "project", "create", "a/b")
    code, _, err = run(capsys, data_dir, "project", "create", "a/b")
    assert code == 1 and "already exists" in err


def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    """A bad command line is one line too, exit 2."""
    with pytest.raises(SystemExit) as exit_:
        main(["--data-dir", str(data_dir), "member", "add", "1", "root", "--role", "boss"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_missing_data_dir_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The CLI does not create a data dir by accident."""
    code, _, err = run(capsys, tmp_path / "nothing", "project", "list")
    assert code == 1 and "no pypid database" in err
    assert not (tmp_path / "nothing").exists()


def test_cli_changes_are_audited(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    """Changing commands append to audit.log with the acting OS user; secrets never."""
    run(capsys, data_dir, "user", "create", "alice")
    run(capsys, data_dir, "project", "create", "a/b")
    run(capsys, data_dir, "member", "add", "a/b", "alice", "--role", "developer")
    _, secret, _ = run(capsys, data_dir, "token", "create", "alice", "--scopes", "api")
    run(capsys, data_dir, "token", "revoke", "2")
    run(capsys, data_dir, "project", "list")  # reads are not audited
    lines = (data_dir / "audit.log").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["action"] for e in events] == [
        "user_create", "project_create", "member_add", "token_create", "token_revoke"]
    assert all(e["actor"].startswith("cli:") and e["from"] == "local" for e in events)
    assert events[2]["role"] == "developer" and events[3]["scopes"] == "api"
    assert secret.strip() not in "\n".join(lines)


def test_fsck_command(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    """fsck prints its report and exits 0 on a clean data dir, 1 when something is wrong."""
    code, out, _ = run(capsys, data_dir, "fsck")
    assert code == 0 and out.strip().endswith("OK")
    orphan = data_dir / "blobs" / "sha256" / "ab" / ("abcd" + "0" * 60)
    orphan.write_bytes(b"x")
    code, out, _ = run(capsys, data_dir, "fsck", "--grace", "0")
    assert code == 1 and "blobs no row uses, found: 1" in out
    code, out, _ = run(capsys, data_dir, "fsck", "--grace", "0", "--repair")
    assert code == 0 and not orphan.exists()


def test_group_commands(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    """The group commands fixed by SPEC.md: create (parents made private), list, members,
    settings, deploy tokens; member remove; project settings --visibility; all audited."""
    code, out, _ = run(capsys, data_dir, "group", "create", "acme/platform",
                       "--visibility", "internal")
    assert code == 0 and out.strip() == "2"  # acme (1) was made for it, private
    groups = json.loads(run(capsys, data_dir, "group", "list", "--json")[1])
    assert [(g["id"], g["path"], g["visibility"]) for g in groups] == [
        (1, "acme", "private"), (2, "acme/platform", "internal")]
    assert run(capsys, data_dir, "group", "create", "acme")[0] == 1  # exists
    code, _, err = run(capsys, data_dir, "group", "create", "bad path")
    assert code == 1 and err.count("\n") == 1
    assert run(capsys, data_dir, "project", "create", "new/deep/tools")[1].strip() == "1"
    assert "new/deep" in run(capsys, data_dir, "group", "list")[1]
    run(capsys, data_dir, "user", "create", "ann")
    assert run(capsys, data_dir, "group", "member", "add", "acme", "ann", "--role",
               "developer")[0] == 0
    with pytest.raises(SystemExit) as usage:  # not a pypid role
        run(capsys, data_dir, "group", "member", "add", "acme", "ann", "--role", "superuser")
    assert usage.value.code == 2
    assert run(capsys, data_dir, "group", "member", "remove", "acme", "ann")[0] == 0
    assert run(capsys, data_dir, "group", "member", "remove", "acme", "ann")[0] == 1
    run(capsys, data_dir, "member", "add", "1", "ann", "--role", "reporter")
    assert run(capsys, data_dir, "member", "remove", "1", "ann")[0] == 0
    assert run(capsys, data_dir, "member", "remove", "1", "ann")[0] == 1
    code, out, _ = run(capsys, data_dir, "group", "deploy-token", "create", "acme",
                       "--scopes", "read_package_registry")
    username, secret = out.split()
    assert code == 0 and username.startswith("gitlab+deploy-token-") and secret.startswith("gldt-")
    settings = json.loads(run(capsys, data_dir, "project", "settings", "1", "--visibility",
                              "public")[1])
    assert settings["visibility"] == "public"
    settings = json.loads(run(capsys, data_dir, "group", "settings", "acme", "--visibility",
                              "internal")[1])
    assert settings["visibility"] == "internal"
    with pytest.raises(SystemExit):
        run(capsys, data_dir, "group", "settings", "acme", "--visibility", "secret")
    actions = [json.loads(line)["action"] for line in
               (data_dir / "audit.log").read_text().splitlines()]
    for action in ("group_create", "group_member_add", "group_member_remove", "member_remove",
                   "group_deploy_token_create", "settings", "group_settings"):
        assert action in actions
    assert secret not in (data_dir / "audit.log").read_text()


def test_protection_rules(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    """protection-rule create/list/delete; bad patterns and levels are one line."""
    run(capsys, data_dir, "project", "create", "acme/tools")
    code, out, _ = run(capsys, data_dir, "protection-rule", "create", "acme/tools", "acme-*",
                       "--push", "owner")
    assert code == 0 and out.strip() == "1"
    assert "acme-*" in run(capsys, data_dir, "protection-rule", "list", "acme/tools")[1]
    code, _, err = run(capsys, data_dir, "protection-rule", "create", "acme/tools", "a b",
                       "--push", "owner")
    assert code == 1 and err.count("\n") == 1 and "package_name_pattern" in err
    code, _, err = run(capsys, data_dir, "protection-rule", "create", "acme/tools", "x*")
    assert code == 1 and "minimum_access_level" in err
    code, _, err = run(capsys, data_dir, "protection-rule", "create", "acme/tools", "acme-*",
                       "--push", "admin")
    assert code == 1 and "already exists" in err
    assert run(capsys, data_dir, "protection-rule", "delete", "acme/tools", "1")[0] == 0
    assert run(capsys, data_dir, "protection-rule", "delete", "acme/tools", "1")[0] == 1
