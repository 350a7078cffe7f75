"""The ``location`` table: one row per place the agency serves."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from askagency.clock import now_utc
from askagency.db import Base, UtcDateTime
from askagency.location_codes import CODE_MAX_LEN

NAME_MAX_LEN = 200
ALIAS_MAX_LEN = 100
MAX_ALIASES = 30
ACTOR_MAX_LEN = 128


class Location(Base):
    """A place conversations can be about, with the aliases that recognise it in text."""

    __tablename__ = "location"

    # "DEN", "ORD", "OFFICE-12": upper case, as reports and filters show it.
    code: Mapped[str] = mapped_column(String(CODE_MAX_LEN), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX_LEN))
    # Other names citizens write: "O'Hare", "Chicago O'Hare", "Denver International".
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)
    # An inactive location keeps its history in reports but is no longer recognised.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc)
    updated_by: Mapped[str | None] = mapped_column(String(ACTOR_MAX_LEN), nullable=True)
