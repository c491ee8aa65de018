"""What every store module shares: the refusals a store gives, and its clock's format.

Registry re-exports them, which is where the rest of pypid imports them from.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pypid.domain.access import Refusal


class StoreError(ValueError):
    """A request the store refuses; the message is meant for a person."""


class NotFound(StoreError):
    pass


class Conflict(StoreError):
    pass


class Invalid(StoreError):
    pass


class WriteRefused(StoreError):
    """What a write's own transaction read refuses it (a token revoked, a role lowered)."""

    def __init__(self, refused: Refusal) -> None:
        super().__init__(refused.name)
        self.refusal = refused


class Protected(WriteRefused):
    """A package protection rule refuses the push or delete; the message names it."""

    def __init__(self, message: str) -> None:
        StoreError.__init__(self, message)
        self.refusal = Refusal.forbidden


def update_columns(db: Any, table: str, row_id: int, changes: dict[str, Any]) -> None:
    """UPDATE table SET each changed column WHERE id = row_id, inside the caller's
    transaction; nothing when nothing changes. table and the column names are the store's
    own, never a client's."""
    if changes:
        assignments = ", ".join(f"{column} = ?" for column in changes)
        db.execute(f"UPDATE {table} SET {assignments} WHERE id = ?",  # noqa: S608
                   (*changes.values(), row_id))


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
