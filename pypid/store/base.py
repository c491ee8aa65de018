"""What every store module shares: the refusals a store gives, and its clock's format.

Registry re-exports them, which is where the rest of pypid imports them from.
"""

from __future__ import annotations

from datetime import UTC, datetime

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


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
