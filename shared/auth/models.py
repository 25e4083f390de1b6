"""People the service has seen, with their last known role."""

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from shared.core.models import utc_column


class KnownPerson(SQLModel, table=True):
    """Someone of the org who authenticated, as their last token said
    (``shared.auth.people``). ``last_seen_at`` is written at most once per
    ``PEOPLE_SEEN_WRITE_SECONDS`` per person and replica, so it may lag by that."""

    __tablename__ = "people"
    __table_args__ = (sa.Index("ix_people_org_last_seen", "org_id", "last_seen_at"),)

    org_id: str = Field(primary_key=True, max_length=128)
    id: str = Field(primary_key=True, max_length=128)
    name: str = Field(max_length=256)
    role: str = Field(max_length=16)
    first_seen_at: datetime = utc_column()
    last_seen_at: datetime = utc_column()
