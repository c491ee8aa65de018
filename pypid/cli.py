"""The admin command: `pypid --data-dir PATH ...`, working beside a running daemon.

It opens the same SQLite database (WAL mode) and writes in short immediate transactions;
then publishes on the data dir's change signal, so running daemons apply the change
before their next request. Results go to stdout, one-line errors to
stderr with a non-zero exit.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from pypid.audit import AuditLog, cli_actor
from pypid.blobs.s3 import S3Error
from pypid.changes import EVERYTHING, ChangeSignal
from pypid.changes import FILE_NAME as CHANGES_FILE
from pypid.config import DEFAULT_DATA_DIR
from pypid.store import schema
from pypid.store.db import DATABASE_NAME, open_registry, run_job
from pypid.store.registry import Registry, StoreError

EXIT_FAILURE = 1
EXIT_USAGE = 2
VISIBILITY_CHOICES = ["private", "internal", "public"]
ROLE_CHOICES = ["guest", "reporter", "developer", "maintainer", "owner"]


class CliError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, as every other pypid error, instead of argparse's usage block.
        self.exit(EXIT_USAGE, f"pypid: {message} (see pypid --help)\n")


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[str("" if row[c] is None else row[c]) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(line.rstrip() for line in lines)


def _user_create(registry: Registry, args: argparse.Namespace) -> str:
    user = registry.create_user(args.name, admin=args.admin)
    return f"{user['username']}"


def _project_create(registry: Registry, args: argparse.Namespace) -> str:
    return str(registry.create_project(args.path, args.visibility))


def _project_list(registry: Registry, args: argparse.Namespace) -> str:
    projects = registry.list_projects()
    if args.json:
        return json.dumps(projects, indent=2)
    return _table(projects, ["id", "path", "visibility", "duplicates"])


def _project_settings(registry: Registry, args: argparse.Namespace) -> str:
    project = registry.project(args.project)
    if args.duplicates is not None:
        project = registry.set_duplicates(project["id"], args.duplicates)
    if args.visibility is not None:
        project = registry.set_project_visibility(project["id"], args.visibility)
    _set_upstream(registry, "projects", project["id"], args)
    project = registry.project(project["id"])
    return json.dumps(
        {"id": project["id"], "path": project["path"], "visibility": project["visibility"],
         "duplicates": project["duplicates"], **_upstream_shown(
             project, registry.project_layers(project))}, indent=2,
    )


_UPSTREAM_OPTIONS = ("upstream", "upstream_allow", "upstream_min_age", "upstream_ttl")


def _set_upstream(registry: Registry, table: str, row_id: int,
                  args: argparse.Namespace) -> None:
    given = {name: getattr(args, name) for name in _UPSTREAM_OPTIONS
             if getattr(args, name) is not None}
    if given:
        registry.set_upstream(table, row_id, **{
            {"upstream": "url", "upstream_allow": "allow", "upstream_min_age": "min_age",
             "upstream_ttl": "ttl"}[name]: value for name, value in given.items()})


def _upstream_shown(row: dict[str, Any], layers: list[Any]) -> dict[str, Any]:
    """Its own upstream settings (null: inherited) and those in force (the daemon's
    --upstream, under all of them, is not known here)."""
    from pypid.upstream.settings import Layer, public_url, resolve

    own = Layer.from_row(row)
    effective = resolve(layers)
    return {
        "upstream": public_url(own.upstream) if own.upstream else own.upstream,
        "upstream_allow": list(own.allow) if own.allow is not None else None,
        "upstream_min_age": own.min_age_days, "upstream_ttl": own.ttl,
        "upstream_in_force": {
            "url": public_url(effective.url) if effective.url else None,
            "allow": list(effective.allow), "min_age": effective.min_age_days,
            "ttl": effective.ttl, "note": "unless off or set here or in a group, the "
                                          "daemon's --upstream applies"},
    }


def _member_add(registry: Registry, args: argparse.Namespace) -> str:
    member = registry.add_member(args.project, args.user, args.role)
    return f"{member['user']} is {member['role']} of {member['project']}"


def _member_remove(registry: Registry, args: argparse.Namespace) -> str:
    removed = registry.remove_member(args.project, args.user)
    return f"{removed['user']} is no longer a member of {removed['path']}"


def _group_create(registry: Registry, args: argparse.Namespace) -> str:
    return str(registry.create_group(args.path, args.visibility))


def _group_list(registry: Registry, args: argparse.Namespace) -> str:
    rows = registry.list_groups()
    if args.json:
        return json.dumps(rows, indent=2)
    return _table(rows, ["id", "path", "visibility"])


def _group_settings(registry: Registry, args: argparse.Namespace) -> str:
    group = registry.group(args.group_ref)
    if args.visibility is not None:
        group = registry.set_group_visibility(group["id"], args.visibility)
    _set_upstream(registry, "groups", group["id"], args)
    group = registry.group(group["id"])
    return json.dumps({"id": group["id"], "path": group["path"],
                       "visibility": group["visibility"],
                       **_upstream_shown(group, registry.group_layers(group["id"]))}, indent=2)


def _group_member_add(registry: Registry, args: argparse.Namespace) -> str:
    member = registry.add_group_member(args.group_ref, args.user, args.role)
    return f"{member['user']} is {member['role']} of group {member['group']}"


def _group_member_remove(registry: Registry, args: argparse.Namespace) -> str:
    removed = registry.remove_group_member(args.group_ref, args.user)
    return f"{removed['user']} is no longer a member of group {removed['path']}"


def _group_deploy_token_create(registry: Registry, args: argparse.Namespace) -> str:
    username, secret = registry.create_group_deploy_token(
        args.group_ref, args.scopes, args.username, args.name, args.expires_at)
    return f"{username} {secret}"


def _blobs_migrate(registry: Registry, args: argparse.Namespace) -> str:
    """Copy every blob the rows use into a bucket, checked; resumable (what is there is
    skipped) and safe beside the running daemon. Then restart it with --blob-store s3:
    the data dir's blobs become its local copy."""
    from pypid.blobs.filesystem import FilesystemBlobs
    from pypid.blobs.s3 import S3Blobs, S3Settings
    from pypid.config import Config, ConfigError, apply_settings

    try:
        config = apply_settings(Config(), {
            key: value for key, value in (
                ("s3-bucket", args.s3_bucket), ("s3-endpoint-url", args.s3_endpoint_url),
                ("s3-prefix", args.s3_prefix), ("s3-region", args.s3_region),
                ("s3-addressing-style", args.s3_addressing_style)) if value is not None},
            "command line")
    except ConfigError as error:
        raise CliError(str(error)) from None
    assert config.s3_bucket is not None
    data_dir = Path(args.data_dir)
    local = FilesystemBlobs(data_dir)
    target = S3Blobs(data_dir, S3Settings(config.s3_bucket, config.s3_prefix,
                                          config.s3_endpoint_url, config.s3_region,
                                          config.s3_addressing_style))
    target.check()
    there = set(target.keys())
    copied = skipped = missing = 0
    for key in local.keys():
        if key in there:
            skipped += 1
            continue
        stream = local.open(key)
        if stream is None:
            missing += 1
            continue
        with stream:
            with target.new_temp() as temp:
                while chunk := stream.read(1 << 20):
                    temp.write(chunk)
                name = str(temp.name)
        target.commit(name, key)  # checksummed put; the local blob stays as the copy
        copied += 1
    return (f"copied {copied} blobs to s3://{config.s3_bucket}/{config.s3_prefix}, "
            f"{skipped} were there already" + (f", {missing} vanished meanwhile" if missing
                                               else "")
            + "; now restart the daemon with --blob-store s3 and these settings")


def _rule_create(registry: Registry, args: argparse.Namespace) -> str:
    project = registry.project(args.project)
    row = registry.set_protection_rule(project["id"], None, args.pattern, args.push,
                                       args.delete)
    return str(row["id"])


def _rule_list(registry: Registry, args: argparse.Namespace) -> str:
    rows = registry.protection_rules(registry.project(args.project)["id"])
    if args.json:
        return json.dumps(rows, indent=2)
    return _table(rows, ["id", "package_name_pattern", "minimum_access_level_for_push",
                         "minimum_access_level_for_delete"])


def _rule_delete(registry: Registry, args: argparse.Namespace) -> str:
    row = registry.delete_protection_rule(registry.project(args.project)["id"], args.rule_id)
    return f"deleted protection rule {row['id']} ({row['package_name_pattern']})"


def _token_create(registry: Registry, args: argparse.Namespace) -> str:
    _, secret = registry.create_token(args.user, args.scopes, args.name, args.expires_at)
    return secret


def _token_list(registry: Registry, args: argparse.Namespace) -> str:
    rows = registry.list_tokens(args.user)
    if args.json:
        return json.dumps(rows, indent=2)
    shown = [{**row, "scopes": ",".join(row["scopes"])} for row in rows]
    return _table(shown, ["id", "name", "scopes", "expires_at", "revoked", "last_used_at"])


def _token_revoke(registry: Registry, args: argparse.Namespace) -> str:
    if not args.token_id.isdecimal():
        raise CliError(f"token id must be a number, not {args.token_id!r}")
    row = registry.revoke_token(int(args.token_id))
    return f"revoked token {row['id']} ({row['name']})"


def _deploy_token_create(registry: Registry, args: argparse.Namespace) -> str:
    username, secret = registry.create_deploy_token(
        args.project, args.scopes, args.username, args.name, args.expires_at
    )
    return f"{username} {secret}"


def _yank(registry: Registry, args: argparse.Namespace) -> str:
    from pypid.domain.names import BadName, normalize_package_name

    try:
        name = normalize_package_name(args.package)
    except BadName as error:
        raise CliError(str(error)) from None
    project = registry.project(args.project)
    yanking = args.command == "yank"
    rows = registry.set_yanked(
        project["id"], name, args.version, args.file, yanking, args.reason if yanking else None
    )
    verb = "yanked" if yanking else "unyanked"
    return "\n".join(f"{verb} {row['filename']}" for row in rows)


def _fsck(registry: Registry, args: argparse.Namespace) -> str:
    from pypid.blobs.filesystem import FilesystemBlobs
    from pypid.blobs.guard import LOCK_FILE, BlobGuard
    from pypid.blobs.s3 import S3Blobs, remembered
    from pypid.maintenance import fsck

    data_dir = Path(args.data_dir)
    s3 = remembered(data_dir)  # the daemon notes an S3 store in the data dir
    blobs = FilesystemBlobs(data_dir) if s3 is None else S3Blobs(data_dir, s3)
    # The data dir's guard: a running daemon's uploads in flight keep their blobs.
    lock = data_dir / LOCK_FILE  # made by the daemon; never by the CLI (see changes.py)
    report = fsck(registry, blobs, repair=args.repair, grace=args.grace,
                  verify=not args.quick, guard=BlobGuard(lock if lock.exists() else None))
    args.fsck_failed = not report.clean and not args.repair
    return "\n".join(report.lines())


def _upstream_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--upstream", metavar="URL|off|inherit",
                     help="simple index that names with no local files come from; off: "
                          "none; inherit: as the group above (or the daemon's --upstream)")
    sub.add_argument("--upstream-allow", metavar="PATTERN", action="append",
                     help="name or glob pattern that may come from upstream; repeatable "
                          "(replaces the list; '*': any; inherit: as the group above)")
    sub.add_argument("--upstream-min-age", metavar="DAYS",
                     help="hide upstream files published less than DAYS ago (or inherit)")
    sub.add_argument("--upstream-ttl", metavar="SECONDS",
                     help="seconds an upstream page is served before it is revalidated "
                          "(or inherit)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pypid", description="Administer a pypid data dir.")
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                        help=f"the daemon's data dir (default: {DEFAULT_DATA_DIR})")
    groups = parser.add_subparsers(dest="group", required=True, parser_class=_Parser)

    def command(group: Any, name: str, handler: Callable[..., str], help: str) -> Any:
        sub = group.add_parser(name, help=help)
        sub.set_defaults(handler=handler)
        return sub

    users = groups.add_parser("user", help="users").add_subparsers(dest="command", required=True)
    sub = command(users, "create", _user_create, "create a user")
    sub.add_argument("name")
    sub.add_argument("--admin", action="store_true", help="make the user an administrator")

    projects = groups.add_parser("project", help="projects").add_subparsers(
        dest="command", required=True)
    sub = command(projects, "create", _project_create, "create a project; prints its id")
    sub.add_argument("path", metavar="NAMESPACE/NAME")
    sub.add_argument("--visibility", choices=VISIBILITY_CHOICES, default="private")
    sub = command(projects, "list", _project_list, "list projects")
    sub.add_argument("--json", action="store_true")
    sub = command(projects, "settings", _project_settings, "show or change a project's settings")
    sub.add_argument("project", metavar="PROJECT", help="id or NAMESPACE/NAME")
    sub.add_argument("--duplicates", choices=["allow", "deny"],
                     help="deny: re-uploading an existing filename fails with 400")
    sub.add_argument("--visibility", choices=VISIBILITY_CHOICES)
    _upstream_arguments(sub)

    namespaces = groups.add_parser("group", help="groups (namespaces, nested)").add_subparsers(
        dest="command", required=True)
    sub = command(namespaces, "create", _group_create,
                  "create a group (missing parents are created private); prints its id")
    sub.add_argument("path", metavar="PATH")
    sub.add_argument("--visibility", choices=VISIBILITY_CHOICES, default="private")
    sub = command(namespaces, "list", _group_list, "list groups")
    sub.add_argument("--json", action="store_true")
    sub = command(namespaces, "settings", _group_settings, "show or change a group's settings")
    sub.add_argument("group_ref", metavar="GROUP", help="id or full path")
    sub.add_argument("--visibility", choices=VISIBILITY_CHOICES)
    _upstream_arguments(sub)
    group_members = namespaces.add_parser("member", help="group members").add_subparsers(
        dest="subcommand", required=True)
    sub = command(group_members, "add", _group_member_add,
                  "add a group member (or change their role): the role counts on every "
                  "project below the group")
    sub.add_argument("group_ref", metavar="GROUP")
    sub.add_argument("user", metavar="USER")
    sub.add_argument("--role", required=True, choices=ROLE_CHOICES)
    sub = command(group_members, "remove", _group_member_remove, "remove a group member")
    sub.add_argument("group_ref", metavar="GROUP")
    sub.add_argument("user", metavar="USER")
    group_deploy = namespaces.add_parser(
        "deploy-token", help="group deploy tokens").add_subparsers(
        dest="subcommand", required=True)
    sub = command(group_deploy, "create", _group_deploy_token_create,
                  "create a deploy token for every project below the group; prints "
                  "USERNAME TOKEN")
    sub.add_argument("group_ref", metavar="GROUP")
    sub.add_argument("--scopes", required=True)
    sub.add_argument("--username")
    sub.add_argument("--name")
    sub.add_argument("--expires-at", metavar="YYYY-MM-DD")

    members = groups.add_parser("member", help="project members").add_subparsers(
        dest="command", required=True)
    sub = command(members, "add", _member_add, "add a member (or change their role)")
    sub.add_argument("project", metavar="PROJECT")
    sub.add_argument("user", metavar="USER")
    sub.add_argument("--role", required=True, choices=ROLE_CHOICES)
    sub = command(members, "remove", _member_remove, "remove a direct member")
    sub.add_argument("project", metavar="PROJECT")
    sub.add_argument("user", metavar="USER")

    tokens = groups.add_parser("token", help="personal access tokens").add_subparsers(
        dest="command", required=True)
    sub = command(tokens, "create", _token_create, "create a token; prints the secret only")
    sub.add_argument("user", metavar="USER")
    sub.add_argument("--scopes", required=True,
                     help="comma-separated: api, read_api, read_package_registry, "
                          "write_package_registry")
    sub.add_argument("--name")
    sub.add_argument("--expires-at", metavar="YYYY-MM-DD",
                     help="the token stops working at 00:00 UTC on that date")
    sub = command(tokens, "list", _token_list, "list a user's tokens (never their secrets)")
    sub.add_argument("user", metavar="USER")
    sub.add_argument("--json", action="store_true")
    sub = command(tokens, "revoke", _token_revoke, "revoke a token")
    sub.add_argument("token_id", metavar="TOKEN_ID")

    deploy = groups.add_parser("deploy-token", help="project deploy tokens").add_subparsers(
        dest="command", required=True)
    sub = command(deploy, "create", _deploy_token_create,
                  "create a deploy token; prints USERNAME TOKEN")
    sub.add_argument("project", metavar="PROJECT")
    sub.add_argument("--scopes", required=True)
    sub.add_argument("--username")
    sub.add_argument("--name")
    sub.add_argument("--expires-at", metavar="YYYY-MM-DD")

    rules = groups.add_parser(
        "protection-rule", help="package protection rules (who may push or delete which "
                                "names)").add_subparsers(dest="command", required=True)
    sub = command(rules, "create", _rule_create, "protect package names; prints the rule id")
    sub.add_argument("project", metavar="PROJECT")
    sub.add_argument("pattern", metavar="PATTERN", help="package name, '*' as a wildcard")
    sub.add_argument("--push", choices=["maintainer", "owner", "admin"],
                     help="the least role that may upload matching packages")
    sub.add_argument("--delete", choices=["maintainer", "owner", "admin"],
                     help="the least role that may delete them")
    sub = command(rules, "list", _rule_list, "list a project's rules")
    sub.add_argument("project", metavar="PROJECT")
    sub.add_argument("--json", action="store_true")
    sub = command(rules, "delete", _rule_delete, "delete a rule")
    sub.add_argument("project", metavar="PROJECT")
    sub.add_argument("rule_id", metavar="RULE_ID", type=int)

    blob_commands = groups.add_parser("blobs", help="the blob store").add_subparsers(
        dest="command", required=True)
    sub = command(blob_commands, "migrate", _blobs_migrate,
                  "copy the data dir's blobs into an S3 bucket (resumable, daemon running)")
    sub.add_argument("--to", choices=["s3"], required=True)
    sub.add_argument("--s3-bucket", required=True)
    sub.add_argument("--s3-endpoint-url")
    sub.add_argument("--s3-prefix")
    sub.add_argument("--s3-region")
    sub.add_argument("--s3-addressing-style", choices=["auto", "path", "virtual"])

    sub = groups.add_parser("fsck", help="check (and with --repair fix) rows against blobs")
    sub.set_defaults(handler=_fsck, command="fsck")
    sub.add_argument("--repair", action="store_true",
                     help="remove rows whose blob is missing or corrupt (corrupt blobs are "
                          "moved to quarantine/), unused blobs and stale temp files")
    sub.add_argument("--grace", type=float, default=3600.0, metavar="SECONDS",
                     help="leave blobs and temp files younger than this (uploads in progress)")
    sub.add_argument("--quick", action="store_true", help="do not re-hash the blobs")

    sub = groups.add_parser("backup", help="consistent copy of the data dir, daemon running")
    sub.set_defaults(handler=None, command="backup")
    sub.add_argument("destination", metavar="DEST", help="a new or empty directory")
    sub.add_argument("--without-upstream", action="store_true",
                     help="leave out the files cached from upstream indexes (they are "
                          "fetched again when asked for)")
    sub = groups.add_parser("restore", help="copy a backup into an empty --data-dir")
    sub.set_defaults(handler=None, command="restore")
    sub.add_argument("source", metavar="BACKUP")

    packages = groups.add_parser("package", help="packages").add_subparsers(
        dest="command", required=True)
    for name, help in (("yank", "yank a release or one file (PEP 592)"),
                       ("unyank", "undo a yank")):
        sub = command(packages, name, _yank, help)
        sub.add_argument("project", metavar="PROJECT")
        sub.add_argument("package", metavar="PACKAGE")
        sub.add_argument("version", metavar="VERSION", nargs="?")
        sub.add_argument("--file", metavar="FILENAME", help="only this file")
        if name == "yank":
            sub.add_argument("--reason", help="shown to installers")
    return parser


def _backup_or_restore(args: argparse.Namespace, data_dir: Path) -> int:
    from pypid import maintenance

    try:
        if args.group == "backup":
            if not (data_dir / DATABASE_NAME).exists():
                raise ValueError(f"no pypid database in {data_dir}")
            report = maintenance.backup(data_dir, Path(args.destination),
                                        with_upstream=not args.without_upstream)
            print(f"backed up {report.files} files ({report.blobs_copied} blobs, "
                  f"{report.bytes_copied} bytes) to {args.destination}")
            for name in report.rows_dropped:
                print(f"left out (deleted while backing up): {name}")
            return 0
        check = maintenance.restore(Path(args.source), data_dir)
    except (ValueError, OSError, sqlite3.Error, schema.SchemaError) as error:
        print(f"pypid: {error}", file=sys.stderr)
        return EXIT_FAILURE
    print("\n".join(check.lines()))
    print(f"restored {args.source} into {data_dir}")
    return 0 if check.clean else EXIT_FAILURE


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    data_dir = Path(args.data_dir)
    if args.group in ("backup", "restore"):
        return _backup_or_restore(args, data_dir)
    if not (data_dir / DATABASE_NAME).exists():
        print(f"pypid: no pypid database in {data_dir} (start the daemon once with "
              "--data-dir to create it)", file=sys.stderr)
        return EXIT_FAILURE
    try:
        registry = open_registry(data_dir)
        # Running daemons drop what they cached before their next request. Only a file a
        # daemon made: none, no daemon of this version ran here.
        signal = (ChangeSignal(data_dir, create=False)
                  if (data_dir / CHANGES_FILE).exists() else None)
        try:
            output = run_job(registry, args.handler, (args,), {}, None, signal, EVERYTHING)
        finally:
            if signal is not None:
                signal.close()
            registry.close()
    except (StoreError, CliError, schema.SchemaError, S3Error) as error:
        print(f"pypid: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except sqlite3.OperationalError as error:
        print(f"pypid: database error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    _audit(data_dir, args)
    if output:
        print(output)
    return EXIT_FAILURE if getattr(args, "fsck_failed", False) else 0


# What each changing command records (never a secret): the action and the argument names.
_AUDITED: dict[tuple[str, ...], tuple[str, tuple[str, ...]]] = {
    ("user", "create"): ("user_create", ("name", "admin")),
    ("project", "create"): ("project_create", ("path", "visibility")),
    ("member", "add"): ("member_add", ("project", "user", "role")),
    ("member", "remove"): ("member_remove", ("project", "user")),
    ("group", "create"): ("group_create", ("path", "visibility")),
    ("group", "member", "add"): ("group_member_add", ("group_ref", "user", "role")),
    ("group", "member", "remove"): ("group_member_remove", ("group_ref", "user")),
    ("group", "deploy-token", "create"): ("group_deploy_token_create",
                                          ("group_ref", "scopes", "username")),
    ("token", "create"): ("token_create", ("user", "scopes", "name", "expires_at")),
    ("token", "revoke"): ("token_revoke", ("token_id",)),
    ("deploy-token", "create"): ("deploy_token_create", ("project", "scopes", "username")),
    ("package", "yank"): ("yank", ("project", "package", "version", "file", "reason")),
    ("package", "unyank"): ("unyank", ("project", "package", "version", "file")),
    ("fsck", "fsck"): ("fsck", ("repair", "grace")),
    ("protection-rule", "create"): ("protection_rule_create",
                                    ("project", "pattern", "push", "delete")),
    ("protection-rule", "delete"): ("protection_rule_delete", ("project", "rule_id")),
}


def _audit(data_dir: Path, args: argparse.Namespace) -> None:
    key: tuple[str, ...] = (args.group, str(getattr(args, "command", "")))
    if getattr(args, "subcommand", None):
        key += (args.subcommand,)
    names: tuple[str, ...]
    changed = any(getattr(args, name, None) is not None
                  for name in ("duplicates", "visibility", *_UPSTREAM_OPTIONS))
    if key == ("project", "settings") and changed:
        action, names = "settings", ("project", "duplicates", "visibility", *_UPSTREAM_OPTIONS)
    elif key == ("group", "settings") and changed:
        action, names = "group_settings", ("group_ref", "visibility", *_UPSTREAM_OPTIONS)
    elif key in _AUDITED:
        action, names = _AUDITED[key]
    else:
        return
    details = {name: getattr(args, name) for name in names}
    if details.get("upstream"):
        from pypid.upstream.settings import public_url

        details["upstream"] = public_url(details["upstream"])  # never a password in the log
    AuditLog(data_dir).record(cli_actor(), "local", action, **details)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
