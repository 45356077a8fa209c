"""A second QA opinion end to end: the real Codex CLI against the scripted model endpoint, under a
policy whose `qa.second_opinion` names another model, so every step is critical and judged twice.

Step 1: both pass (the first names no file: a guardrail warning, the step still completes).
Step 2: they disagree: the step and run are blocked with `qa.disagreement`, the console shows both
reports side by side, and a person approves. Step 3: both fail: the step fails as with one QA.
"""

from __future__ import annotations

import json
import os

from sqlalchemy import insert, update

from app.domain.statuses import StepStatus as S
from app.services import planning, projects, quality
from app.store import agent_runs, events, protocols, steps
from app.store.tables import policy_packs
from app.store.tables import projects as project_rows
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.console.support import sign_in
from tests.support.fake_openai import API_KEY_ENV, Message, ToolCall, codex_env, provider_overrides
from tests.support.workflow import make_repos, project_ready, run_status, running_worker, wait_for
from tests.support.workflow import workflow_settings as base_settings

TOKEN = "api-token-0123456789"
PACK = {"qa": {"second_opinion": {"engine": "codex", "model": "second-model"}}}
PLAN = {
    "plan_md": "# Plan: three files\n\n1. one\n2. two\n3. three\n",
    "context_md": "# Context\n",
    "log_md": "# Log\n",
    "step_files": [
        {"filename": f"0{i}-{name}.md", "content": f"# Write {name}\n\n## Goal\n{name}.txt says {name}.\n"}
        for i, name in enumerate(("one", "two", "three"), start=1)
    ],
}


def _verdict(verdict: str, summary: str) -> Message:
    return Message(json.dumps({"verdict": verdict, "summary": summary, "findings": []}))


async def _step_is(svc, step_id: int, status: S) -> bool:
    async with svc.database.read() as conn:
        return (await steps.get(conn, step_id)).status is status


async def test_two_qa_opinions_agree_disagree_and_block_for_a_person(
    database_url, aiohttp_client, tmp_path, fake_openai, codex_bin, codex_home
):
    repos = make_repos(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    settings = base_settings(
        tmp_path,
        api_token=TOKEN,
        **{f"{stage}_engine": "codex" for stage in ("planning", "execution", "qa")},
        **{f"{stage}_model": "mock-model" for stage in ("planning", "execution", "qa")},
        codex_bin=codex_bin,
        codex_config=provider_overrides(fake_openai.base_url),
        agent_env_passthrough=["PATH", "HOME", "CODEX_HOME", API_KEY_ENV],
    )
    fake_openai.play(
        Message(json.dumps(PLAN)),
        ToolCall("printf one > one.txt"),
        Message("wrote one.txt"),
        _verdict("pass", "all good"),  # names no file of the diff: a guardrail warning
        _verdict("pass", "one.txt says one"),
        ToolCall("printf two > two.txt"),
        Message("wrote two.txt"),
        _verdict("pass", "two.txt says two"),
        _verdict("fail", "two.txt lacks its trailing newline"),
        ToolCall("printf three > three.txt"),
        Message("wrote three.txt"),
        _verdict("fail", "three.txt says nothing useful"),
        _verdict("fail", "three.txt is wrong"),
    )
    environ = codex_env(codex_home, os.environ["PATH"], home)
    client = await aiohttp_client(create_app(settings, database_url, environ=environ))
    svc = client.app[SERVICES]
    project = await projects.register_project(svc, name="careful", local_path=str(repos.local))
    await wait_for(lambda: project_ready(svc, project.id), what="setup")
    async with svc.database.transaction() as conn:
        await conn.execute(insert(policy_packs).values(key="two-eyes", version="1.0", name="Two", pack=PACK))
        await conn.execute(
            update(project_rows)
            .where(project_rows.c.id == project.id)
            .values(policy_pack_key="two-eyes", policy_pack_version="1.0")
        )
    run = await planning.create_protocol(svc, project.id, title="Three files")
    await planning.start_protocol(svc, run.id)

    async def is_blocked():
        return await run_status(svc, run.id) == "blocked"

    await wait_for(is_blocked, seconds=180, what="the disagreement")
    async with svc.database.read() as conn:
        first, second, third = await steps.list_for_protocol(conn, run.id)
        blocked_run = await protocols.get(conn, run.id)
        [disagreement] = await events.recent(conn, step_run_id=second.id, type_prefix="qa.disagreement")
        found = await events.recent(conn, step_run_id=first.id, type_prefix="policy.finding")
    assert (first.status, second.status, third.status) == (S.COMPLETED, S.BLOCKED, S.PENDING)
    assert second.qa_verdict == "disagreement"
    reason = (
        "QA opinions disagree (codex/mock-model pass, codex/second-model fail): approve or retry the step"
    )
    assert (second.last_error, blocked_run.last_error) == (reason, reason)
    opinions = disagreement.payload["opinions"]
    assert [(o["opinion"], o["model"], o["verdict"]) for o in opinions] == [
        ("first", "mock-model", "pass"),
        ("second", "second-model", "fail"),
    ]
    assert "two.txt lacks its trailing newline" in opinions[1]["report"]
    assert [e.payload["finding"]["code"] for e in found] == ["qa.summary_names_no_file"]

    await sign_in(client, TOKEN)
    page = await (await client.get(f"/console/steps/{second.id}")).text()
    side_by_side = page[page.index("QA opinions: they disagree") :]
    assert side_by_side.index("first opinion, codex/mock-model") < side_by_side.index(
        "second opinion, codex/second-model"
    )
    assert "two.txt says two" in side_by_side
    assert "two.txt lacks its trailing newline" in side_by_side
    first_page = await (await client.get(f"/console/steps/{first.id}")).text()
    assert "qa.summary_names_no_file" in first_page[first_page.index("Guardrails") :]

    await quality.approve_step(svc, second.id, by="reviewer", note="the newline does not matter")
    await wait_for(lambda: _step_is(svc, third.id, S.FAILED), seconds=180, what="both opinions to fail")
    assert await run_status(svc, run.id) == "blocked"

    async with svc.database.read() as conn:
        history = await events.list_page(conn, protocol_run_id=run.id, limit=500)
        qa_runs = {
            s.id: [(r.stage.value, r.model) for r in await agent_runs.list_for_step(conn, s.id)]
            for s in (first, second, third)
        }
    verdicts = [
        (e.step_run_id, e.payload["opinion"], e.payload["model"], e.payload["verdict"])
        for e in history
        if e.event_type == "qa.verdict"
    ]
    assert verdicts == [
        (first.id, "first", "mock-model", "pass"),
        (first.id, "second", "second-model", "pass"),
        (second.id, "first", "mock-model", "pass"),
        (second.id, "second", "second-model", "fail"),
        (third.id, "first", "mock-model", "fail"),
        (third.id, "second", "second-model", "fail"),
    ]
    ids = [e.payload["agent_run_id"] for e in history if e.event_type == "qa.verdict"]
    assert len(set(ids)) == 6
    assert all(
        runs == [("execution", "mock-model"), ("qa", "mock-model"), ("qa", "second-model")]
        for runs in qa_runs.values()
    )
    assert [r["model"] for r in fake_openai.requests].count("second-model") == 3
    assert [e.event_type for e in history].count("qa.disagreement") == 1


async def test_in_strict_mode_a_guardrail_finding_on_a_pass_blocks_the_step(
    database_url, tmp_path, fake_openai, codex_bin, codex_home
):
    repos = make_repos(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    settings = base_settings(
        tmp_path,
        **{f"{stage}_engine": "codex" for stage in ("planning", "execution", "qa")},
        **{f"{stage}_model": "mock-model" for stage in ("planning", "execution", "qa")},
        codex_bin=codex_bin,
        codex_config=provider_overrides(fake_openai.base_url),
        agent_env_passthrough=["PATH", "HOME", "CODEX_HOME", API_KEY_ENV],
    )
    plan = {**PLAN, "step_files": PLAN["step_files"][:1]}
    fake_openai.play(
        Message(json.dumps(plan)),
        ToolCall("printf one > one.txt"),
        Message("wrote one.txt"),
        _verdict("pass", "all good"),  # names no file of the diff
    )
    pack = {"findings": {"blocking": ["qa.summary_names_no_file"]}}
    environ = codex_env(codex_home, os.environ["PATH"], home)
    async with running_worker(settings, database_url, environ=environ) as svc:
        project = await projects.register_project(svc, name="strict", local_path=str(repos.local))
        await wait_for(lambda: project_ready(svc, project.id), what="setup")
        async with svc.database.transaction() as conn:
            await conn.execute(insert(policy_packs).values(key="guard", version="1.0", name="G", pack=pack))
            await conn.execute(
                update(project_rows)
                .where(project_rows.c.id == project.id)
                .values(policy_pack_key="guard", policy_pack_version="1.0", policy_strict=True)
            )
        run = await planning.create_protocol(svc, project.id, title="One file")
        await planning.start_protocol(svc, run.id)

        async def is_blocked():
            return await run_status(svc, run.id) == "blocked"

        await wait_for(is_blocked, seconds=180, what="the guardrail to block")
        async with svc.database.read() as conn:
            [step] = await steps.list_for_protocol(conn, run.id)
            [verdict] = await events.recent(conn, step_run_id=step.id, type_prefix="qa.verdict")
    assert (step.status, step.qa_verdict) == (S.BLOCKED, "pass")
    assert step.last_error.startswith("policy finding qa.summary_names_no_file: QA pass: its summary")
    assert verdict.payload["opinion"] == "only"
    assert [g["code"] for g in verdict.payload["guardrails"]] == ["qa.summary_names_no_file"]
