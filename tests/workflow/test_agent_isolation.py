"""Agents do not share the service's privileges: they cannot read its environment nor log in to its
database, whichever user they run as.

A real `tasksgodzilla worker` process, started with its secrets in its environment as an operator
would, runs a probe agent (tests/support/probe_agent.py) through the `command` engine. The probe
reads the environment of every process above it, tries `psql` on the embedded database's socket
without a password, and tries to read the password file; the test reads its report.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from app.jobs.runtime import open_runtime
from app.services import planning, projects
from app.store.embedded import password_file
from tests.support.faults import Fleet, fault_environment, fault_settings
from tests.support.workflow import make_repos, project_ready, shared_with_agents, wait_for

PROBE = Path(__file__).resolve().parents[1] / "support" / "probe_agent.py"
PROBE_VARIABLES = ["AGENT_PROBE_REPORT", "AGENT_PROBE_SOCKET", "AGENT_PROBE_PASSWORD_FILE"]
API_TOKEN = "api-token-isolation-0123456789"
GITHUB_TOKEN = "ghp_isolationProbe0123456789abcdef"


@pytest.mark.parametrize(
    "agent_user",
    [
        pytest.param(None, id="default: another user"),
        pytest.param("root", id="the service's own user"),
    ],
)
async def test_an_agent_reads_no_service_secret_and_cannot_log_in_to_the_database(
    database_url, tmp_path, agent_user
):
    repos = make_repos(tmp_path)
    report = shared_with_agents(tmp_path / "probe.json")
    report.write_text("")
    settings = fault_settings(
        tmp_path,
        api_token=API_TOKEN,
        github_token=GITHUB_TOKEN,
        command_agent=[sys.executable, str(PROBE)],
        agent_user=agent_user,
    )
    settings = settings.model_copy(
        update={"agent_env_passthrough": [*settings.agent_env_passthrough, *PROBE_VARIABLES]}
    )
    socket_dir = parse_qs(urlsplit(database_url).query)["host"][0]
    env = fault_environment(
        settings,
        database_url,
        AGENT_PROBE_REPORT=str(report),
        AGENT_PROBE_SOCKET=socket_dir,
        AGENT_PROBE_PASSWORD_FILE=str(password_file(Path(socket_dir))),
    )
    if agent_user is not None:
        env["TASKSGODZILLA_AGENT_USER"] = agent_user
    fleet = Fleet(tmp_path, env)
    try:
        fleet.worker("w1")
        async with open_runtime(settings, database_url, environ=env) as (_, svc):
            project = await projects.register_project(svc, name="demo", local_path=str(repos.local))
            await wait_for(lambda: project_ready(svc, project.id), seconds=60, what="project setup")
            run = await planning.create_protocol(svc, project.id, title="Probe")
            await planning.start_protocol(svc, run.id)
            found = json.loads(await wait_for(report.read_text, seconds=90, what="the probe's report"))
    finally:
        fleet.close()

    assert (found["uid"] != 0) is (agent_user is None)
    password = urlsplit(database_url).password
    assert password
    seen = json.dumps(found["environ"])
    worker = next(iter(found["environ"].values()))  # the probe's parent
    if agent_user is None:
        assert worker.startswith("unreadable"), "another user's /proc/<pid>/environ is closed"
    else:
        assert "FAULTS_TAG=" in worker, "the same user reads it: what counts is that it holds no secret"
    for secret in (API_TOKEN, GITHUB_TOKEN, password):
        assert secret not in seen
    assert "TASKSGODZILLA_" not in seen
    assert found["database"]["exit_code"] != 0, found["database"]
    if agent_user is None:  # as the service's own user, its files are the agent's (see README)
        assert found["password_file"].startswith("unreadable"), "the password file is not the agent's"
