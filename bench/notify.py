"""What routing notifications costs: one routing pass over a backlog of events, beside reading the
same events with the same reader (the baseline, measured in the same run).

One fresh database (`tg_notifybench_<pid>`, created, migrated, dropped at the end) holding `--events`
events of one project, 100 per transaction, one in four a happening that notifies (`protocol.completed`),
the others `step.created`; the project has `--channels` channels, each subscribed to every kind. Then:

- baseline: `events.read_after` page by page (500, the watched event types), as the routing duty
  reads them, without routing;
- routing: `route_new_events` from the start of the backlog: the same reads, the rules, one delivery
  row per channel and notifying event, its job deferred, the cursor moved (one transaction).

Writers pay nothing: recording an event runs no notification code (the duty reads the log after it).

    .venv/bin/python bench/notify.py [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
    .venv/bin/python bench/notify.py --quick      # smoke run, a few seconds
"""

# ruff: noqa: E402 - the imports follow the sys.path fix below

from __future__ import annotations

import sys
from pathlib import Path

# As in bench/api.py: bench/queue.py shadows the standard library's `queue` if this folder is on the path.
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (HERE, ROOT)]

import argparse
import asyncio
import os
import tempfile
import time
from types import SimpleNamespace
from typing import Any

from bench.api import quiet_logs

PER_TRANSACTION = 100
BASELINE = "baseline: read the watched events"
ROUTING = "routing pass (rules, deliveries, jobs, cursor)"


async def measure(url: str, count: int, channels: int) -> dict[str, Any]:
    from sqlalchemy import text

    from app.domain.events import NewEvent
    from app.domain.notifications import KINDS, WATCHED_EVENTS
    from app.services import notify_delivery
    from app.store import events, projects, protocols
    from app.store import notifications as store
    from app.store.database import Database

    database = Database(url)
    try:
        async with database.transaction() as conn:
            project = await projects.create(conn, name="bench", local_path="/srv/bench")
            run = await protocols.create(conn, project.id, title="Bench", slug="bench")
            for index in range(channels):
                await store.add_channel(
                    conn, project_id=project.id, name=f"c{index}", channel_type="webhook", kinds=list(KINDS),
                    host="hooks.example.com", url_ciphertext="x", secret_ciphertext="x",
                )  # fmt: skip
            await store.ensure_cursor(conn, events.START)
        for first in range(0, count, PER_TRANSACTION):
            async with database.transaction() as conn:
                for index in range(first, min(first + PER_TRANSACTION, count)):
                    kind = "protocol.completed" if index % 4 == 0 else "step.created"
                    await events.append(
                        conn,
                        NewEvent(
                            project_id=project.id, protocol_run_id=run.id, event_type=kind,
                            message="bench", payload={"n": index},
                        ),
                    )  # fmt: skip
        # Events are handed out once every older transaction has ended (app/store/events.py): on a
        # shared server, another client's long transaction holds them back; wait for it, unmeasured.
        deadline = time.monotonic() + 600
        async with database.read() as conn:
            last = await conn.scalar(text("SELECT max(txid)::text::bigint FROM events"))
        while True:
            async with database.read() as conn:
                if (await events.horizon(conn)).txid > last:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("the events never settled: a transaction on the server stays open")
            await asyncio.sleep(0.2)
        started = time.perf_counter()
        read = 0
        cursor = events.START
        async with database.read() as conn:
            while True:
                batch = await events.read_after(conn, cursor, event_types=list(WATCHED_EVENTS), limit=500)
                if not batch.settled:
                    break
                read += len(batch.settled)
                cursor = batch.settled[-1].position
        baseline = time.perf_counter() - started
        svc = SimpleNamespace(database=database)
        started = time.perf_counter()
        routed = 0
        while done := await notify_delivery.route_new_events(svc):  # type: ignore[arg-type]
            routed += done
        routing = time.perf_counter() - started
        return {"read": read, "routed": routed, BASELINE: baseline, ROUTING: routing}
    finally:
        await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", help="a server where databases may be created (default: embedded)")
    parser.add_argument("--events", type=int, default=40_000, help="events in the backlog")
    parser.add_argument("--channels", type=int, default=2, help="channels of the project, every kind each")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2,000 events")
    args = parser.parse_args()
    if args.quick:
        args.events = 2_000
    from app.store.scratch import migrated_database

    quiet_logs()
    name = f"tg_notifybench_{os.getpid()}"
    with (
        tempfile.TemporaryDirectory(prefix="tg-notifybench-") as scratch,
        migrated_database(args.database_url, name, Path(scratch)) as (url, where),
    ):
        found = asyncio.run(measure(url, args.events, args.channels))
    base, routing = found[BASELINE], found[ROUTING]
    print(f"{args.events:,} events ({found['read']:,} watched), {args.channels} channels, {where}")
    print("| measure | seconds | events/s | vs baseline |")
    print("|---|---|---|---|")
    for label, seconds in ((BASELINE, base), (ROUTING, routing)):
        print(f"| {label} | {seconds:.3f} | {args.events / seconds:,.0f} | {seconds / base:.2f}x |")
    print(f"deliveries routed: {found['routed']:,} (one per channel and notifying event)")


if __name__ == "__main__":
    main()
