"""The missing-work scan reads one step per run, and decides from it what the whole plan decides."""

from __future__ import annotations

from sqlalchemy import text

from app.domain.statuses import ProtocolStatus as P
from app.domain.workflow import next_work
from app.store import projects, protocols, steps

PLANS = (
    (),
    ("completed", "completed"),
    ("completed", "pending", "pending"),
    ("completed", "needs_qa", "pending"),
    ("running", "pending"),
    ("completed", "blocked", "pending"),
    ("pending", "completed"),
)


async def test_the_next_step_of_each_run_decides_as_its_whole_plan(database):
    async with database.transaction() as conn:
        project = await projects.create(conn, name="shop", local_path="/srv/shop")
        runs = [
            await protocols.create(conn, project.id, title=f"T{i}", slug=f"t{i}") for i in range(len(PLANS))
        ]
        for run, plan in zip(runs, PLANS, strict=True):
            made = await steps.create_many(
                conn,
                run.id,
                [{"step_index": i, "name": f"{i}-s", "step_file": f"{i}-s.md"} for i in range(len(plan))],
            )
            for step, status in zip(made, plan, strict=True):
                await conn.execute(
                    text("UPDATE step_runs SET status = :s WHERE id = :id"), {"s": status, "id": step.id}
                )
    async with database.read() as conn:
        ids = [run.id for run in runs]
        whole, next_of = await steps.list_for_protocols(conn, ids), await steps.next_of(conn, ids)
    assert sum(len(found) for found in next_of.values()) == len(PLANS) - 1  # one each; none without a plan
    for run_id in ids:
        for auto_qa in (True, False):
            assert next_work(P.RUNNING, next_of[run_id], auto_qa=auto_qa) == next_work(
                P.RUNNING, whole[run_id], auto_qa=auto_qa
            ), run_id
