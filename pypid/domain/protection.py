"""GitLab's package protection rules: a package name pattern (with `*`) and the least
role that may push, or delete, packages whose name it matches. Pure rules, no I/O.

Patterns and names are compared PEP 503 normalized (pypid's package names are), so that
`Acme_*` protects `acme-core`. Administrators pass every level (GitLab's "admin" level is
theirs alone); deploy tokens have no role, so a rule that matches refuses them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pypid.domain.access import Principal, Role

LEVELS = ("maintainer", "owner", "admin")
_PATTERN = re.compile(r"[A-Za-z0-9._*-]{1,255}", re.ASCII)


class RuleError(ValueError):
    pass


def check_pattern(pattern: object) -> str:
    if not isinstance(pattern, str) or not _PATTERN.fullmatch(pattern):
        raise RuleError("package_name_pattern must be 1 to 255 letters, digits, '.', '_', "
                        "'-' and '*'")
    return pattern


def check_level(name: str, value: str | None) -> str | None:
    if value is not None and value not in LEVELS:
        raise RuleError(f"{name} must be one of {', '.join(LEVELS)}")
    return value


@dataclass(frozen=True)
class Rule:
    id: int
    pattern: str
    push: str | None
    delete: str | None

    def matches(self, name: str) -> bool:
        normalized = re.sub(r"[-_.]+", "-", self.pattern).lower()
        expression = ".*".join(re.escape(part) for part in normalized.split("*"))
        return re.fullmatch(expression, name) is not None


def refusing_rule(rules: list[Rule], name: str, principal: Principal | None,
                  role: Role | None, what: str) -> Rule | None:
    """The first rule that keeps principal (None: a trusted local caller) from pushing
    (what "push") or deleting ("delete") package name; None if none does."""
    if principal is None or (principal.is_admin and not principal.is_deploy_token):
        return None
    for rule in rules:
        level = rule.push if what == "push" else rule.delete
        if level is None or not rule.matches(name):
            continue
        if principal.is_deploy_token or level == "admin":
            return rule
        if role is None or role < Role[level]:
            return rule
    return None


def reason(rule: Rule, what: str) -> str:
    level = rule.push if what == "push" else rule.delete
    return (f"package protection rule {rule.id} ({rule.pattern!r}) lets only "
            f"{level}s and above {what} this package")
