"""The SMS/WhatsApp opt-out (STOP) list: one table in the product database, keyed by number.

Why the database: a STOP must hold on every Rasa replica and after every restart (TCPA/CTIA;
carriers fine senders that ignore it). The list used to be a SQLite file per Rasa process,
keyed by conversation id, so a replica or a new container forgot it, and a message addressed
as ``1555...`` instead of ``sms-1555...`` passed the check. Now the key is the channel and the
normalised E.164 number (``+15551234567``) that the message would actually go to, and
:meth:`OptOutList.is_opted_out` is asked before every outbound text.

SMS and WhatsApp are separate consents (Twilio and WhatsApp handle them separately), so a STOP
sent by SMS silences SMS only.

Runs in the Rasa env (Python 3.10, SQLAlchemy 1.4, psycopg2) and in the app env (SQLAlchemy 2,
psycopg 3), so it uses only SQLAlchemy Core and the standard library. The table is created by
the migration ``0006_opt_out``; :mod:`askagency.opt_out_schema` registers it for Alembic.
"""

from __future__ import annotations

import importlib.util
import os
import re
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, MetaData, String, Table, and_, create_engine, select
from sqlalchemy.exc import IntegrityError

from askagency.clock import now_utc
from askagency.paths import default_data_dir, embedded_database_url

TABLE_NAME = "channel_opt_out"
OPT_OUT_CHANNELS = ("sms", "whatsapp")
E164 = re.compile(r"^\+[1-9][0-9]{4,14}$")


def define_table(metadata: MetaData) -> Table:
    """The one definition of the table, for the store here and for Alembic's model check."""
    return Table(
        TABLE_NAME,
        metadata,
        Column("channel", String(16), primary_key=True),
        Column("number", String(16), primary_key=True),
        Column("opted_out_at", DateTime(timezone=True), nullable=False),
    )


def normalise_number(text: str) -> str | None:
    """``+15551234567`` for ``+1 (555) 123-4567``, ``15551234567``, ``whatsapp:+1555...`` or
    the conversation ids ``sms-15551234567`` / ``whatsapp-1555...``; None if not a number."""
    value = text.strip()
    for prefix in ("whatsapp:", "sms-", "whatsapp-"):
        if value.lower().startswith(prefix):
            value = value[len(prefix) :]
    digits = re.sub(r"[\s().-]", "", value).lstrip("+")
    number = "+" + digits
    return number if digits.isdigit() and E164.match(number) else None


def database_url(environ: Mapping[str, str] | None = None) -> str:
    """The product database as ``askagency.config.Settings`` resolves it (that module needs
    pydantic-settings, absent from the Rasa env), with a driver this env has."""
    environ = os.environ if environ is None else environ
    url = environ.get("ASKAGENCY_DATABASE_URL", "").strip()
    if not url:
        data_dir = environ.get("ASKAGENCY_DATA_DIR", "").strip() or str(default_data_dir())
        url = embedded_database_url(data_dir)
    if url.startswith("postgresql+psycopg://") and importlib.util.find_spec("psycopg") is None:
        url = "postgresql+psycopg2://" + url.split("://", 1)[1]  # the Rasa env ships psycopg2
    return url


class OptOutList:
    """Reads and writes the opt-out table. Blocking calls: async callers use a thread."""

    def __init__(self, url: str, clock: Callable[[], datetime] = now_utc) -> None:
        self.url = url
        self.clock = clock
        self.table = define_table(MetaData())
        self._engine: Any = None
        self._lock = threading.Lock()

    def _db(self) -> Any:
        with self._lock:
            if self._engine is None:
                if self.url.startswith("sqlite:"):
                    self._engine = create_engine(self.url, connect_args={"timeout": 10})
                else:
                    self._engine = create_engine(
                        self.url, pool_pre_ping=True, connect_args={"connect_timeout": 5}
                    )
            return self._engine

    def _where(self, channel: str, number: str) -> Any:
        return and_(self.table.c.channel == channel, self.table.c.number == number)

    def is_opted_out(self, channel: str, number: str) -> bool:
        with self._db().connect() as connection:
            row = connection.execute(
                select(self.table.c.number).where(self._where(channel, number))
            ).first()
        return row is not None

    def opt_out(self, channel: str, number: str) -> None:
        """Records a STOP (again: the time is refreshed)."""
        try:
            with self._db().begin() as connection:
                connection.execute(self.table.delete().where(self._where(channel, number)))
                connection.execute(
                    self.table.insert().values(
                        channel=channel, number=number, opted_out_at=self.clock()
                    )
                )
        except IntegrityError:  # another replica recorded the same STOP at the same moment
            if not self.is_opted_out(channel, number):
                raise

    def opt_in(self, channel: str, number: str) -> None:
        with self._db().begin() as connection:
            connection.execute(self.table.delete().where(self._where(channel, number)))

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
