"""UTC time helpers: every stored and serialized time is UTC."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were written as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def isoformat(value: datetime) -> str:
    """ISO 8601 with microseconds and a ``Z`` suffix, the API's one time format.
    (``strftime("%Y")`` would write year 900 as ``900``, not ISO's ``0900``.)"""
    return as_utc(value).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
