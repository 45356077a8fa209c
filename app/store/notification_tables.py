"""The notification tables (migration 0020): channels, deliveries, and the scan cursor."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY

from app.store.tables import metadata


def _timestamps() -> list[Column]:
    return [
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


# A project's channel: where to send (the URL encrypted: a Slack URL is its own token; `host` is
# what may be shown), the webhook's signing secret (encrypted), or the e-mail recipients.
notification_channels = Table(
    "notification_channels",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("project_id", BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("channel_type", Text, nullable=False),
    Column("kinds", ARRAY(Text), nullable=False),
    Column("host", Text),
    Column("url_ciphertext", Text),
    Column("secret_ciphertext", Text),
    Column("recipients", ARRAY(Text)),
    *_timestamps(),
    UniqueConstraint("project_id", "name", name="uq_notification_channels_project_name"),
)

# One notification of one event on one channel: at most one row per pair, whatever the scans.
notification_deliveries = Table(
    "notification_deliveries",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column(
        "channel_id", BigInteger, ForeignKey("notification_channels.id", ondelete="CASCADE"), nullable=False
    ),
    Column("event_id", BigInteger, nullable=False),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Column("sent_at", DateTime(timezone=True)),
    *_timestamps(),
    UniqueConstraint("channel_id", "event_id", name="uq_notification_deliveries_channel_event"),
)

# Where the scan of the event log stands (one row): events up to it have been routed.
notification_cursor = Table(
    "notification_cursor",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("txid", BigInteger, nullable=False),
    Column("event_id", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("id = 1", name="ck_notification_cursor_one_row"),
)
