"""Old idempotency keys and webhook deliveries are forgotten; recent ones stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from app.domain.ci import Provider
from app.store import deliveries, idempotency
from app.store.tables import idempotency_keys, webhook_deliveries


async def test_old_deliveries_and_keys_go_and_recent_ones_stay(database):
    now = datetime.now(UTC)
    async with database.transaction() as conn:
        for name in ("old", "new"):
            await deliveries.record(
                conn, provider=Provider.GITHUB, delivery_id=name, event="status", signal={}
            )
            await idempotency.settle(conn, idempotency.Claim("POST /projects", name, "hash"), resource_id=1)
        await conn.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.delivery_id == "old")
            .values(received_at=now - timedelta(days=31))
        )
        await conn.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.key == "old")
            .values(created_at=now - timedelta(hours=25))
        )
    async with database.transaction() as conn:
        assert await deliveries.forget_before(conn, now - timedelta(days=30)) == 1
        assert await idempotency.forget_before(conn, now - timedelta(hours=24)) == 1
        left = await conn.scalars(select(webhook_deliveries.c.delivery_id))
        assert list(left) == ["new"]
        assert list(await conn.scalars(select(idempotency_keys.c.key))) == ["new"]
