"""The live API against its own /openapi.json, fuzzed by Schemathesis.

The real application (create_app over a fresh database) listens on a loopback port in a thread of
its own, with a little data seeded so generated requests reach existing resources too. Then `st run`
(the Schemathesis CLI, in a subprocess) sends generated requests, valid and invalid, to every
operation and checks each answer: never a 5xx; status, content type and body as documented.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from app.config import Settings
from app.domain.records import ProjectStatus
from app.services import planning
from app.services import projects as project_service
from app.store import agent_runs as agent_store
from app.store import projects as project_store
from app.store import protocols as protocol_store
from app.store import steps as step_store
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.support import seed
from tests.support.workflow import commit_protocol_files, make_repos

TOKEN = "schemathesis-token-0123456789"
ST = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"
EXAMPLES_PER_OPERATION = 12
RUN_TIMEOUT_SECONDS = 300  # about 80 s on a quiet 2-core machine; a loaded one takes longer
ARTIFACTS = ("plan.md", "01-first.md")

# Deleting a project would delete the seed every other operation should reach: it is left out of the
# main run and fuzzed on its own afterwards. Nothing else is left out.
DELETE_PROJECT = "delete_project"
# Found by this test in files other sessions own; each stays listed here until fixed there (a fixed one
# just stops being reported). Any problem not listed fails the test.
# Every finding fails the test: none is known and accepted.
KNOWN_ISSUES: set[str] = set()


@dataclass(frozen=True)
class LiveServer:
    url: str
    seed: dict[str, int]


class _ServerThread(threading.Thread):
    """create_app on 127.0.0.1:<free port>, in an event loop of its own, until stop()."""

    def __init__(self, settings: Settings, database_url: str, repo: Path) -> None:
        super().__init__(name="live-api", daemon=True)
        self.app = create_app(settings, database_url)
        self.repo = repo
        self.ready = threading.Event()
        self.port = 0
        self.seed: dict[str, int] = {}
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self.error = exc
            self.ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        # Event-stream handlers outlive their clients until the next ping (15 s): don't wait for them.
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            self.port = runner.addresses[0][1]
            self.seed = await self._seed_data()
            self.ready.set()
            await self._stopping.wait()
        finally:
            await runner.cleanup()

    async def _seed_data(self) -> dict[str, int]:
        """A ready project over a local repository; a protocol run of it with a folder of artifacts;
        a step of that run; an agent run of that step with a transcript."""
        svc = self.app[SERVICES]
        project = await project_service.register_project(svc, name="seed", local_path=str(self.repo))
        run = await planning.create_protocol(svc, project.id, title="Seeded run", description="seed")
        head = commit_protocol_files(self.repo, run.name, {name: f"# {name}\n" for name in ARTIFACTS})
        async with svc.database.transaction() as conn:
            await project_store.set_status(
                conn, project.id, ProjectStatus.READY, expected_version=project.version
            )
            await protocol_store.update_fields(conn, run.id, expected_version=run.version, head_sha=head)
            [step] = await step_store.create_many(
                conn, run.id, [{"step_index": 1, "name": "first", "step_file": ARTIFACTS[1]}]
            )
            agent = await seed.agent_run(conn, run, step)
            await agent_store.store_log(conn, agent.id, "did the work\n", truncated=False)
        return {"project_id": project.id, "protocol_id": run.id, "step_id": step.id, "agent_run_id": agent.id}

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self.join(timeout=30)


@pytest.fixture
def live_server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    repos = make_repos(tmp_path / "repos")
    settings = Settings(
        run_worker=False, api_token=TOKEN, data_dir=tmp_path / "data", git_allow_local_remotes=True
    )
    server = _ServerThread(settings, database_url, repos.local)
    server.start()
    try:
        assert server.ready.wait(60), "the server never started"
        if server.error is not None:
            raise server.error
        yield LiveServer(f"http://127.0.0.1:{server.port}", server.seed)
    finally:
        server.stop()


def _config(seed: dict[str, int]) -> str:
    """schemathesis.toml: half the generated ids and artifact names are ones that exist."""
    lines = [f"[dictionaries.{name}]\nvalues = [{value}]\n" for name, value in seed.items()]
    lines.append(f"[dictionaries.artifacts]\nvalues = {json.dumps(list(ARTIFACTS))}\n")
    lines.append("[parameters]")
    lines += [f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}' for name in seed]
    lines.append('"path.name" = { dictionary = "artifacts", probability = 0.5 }\n')
    # The event stream never ends by itself: read at most 2 events, or for 0.5 s, from each answer;
    # each answer costs that long, so the stream gets fewer generated cases than the rest. Its handlers
    # notice a closed connection only at their next ping (15 s), polling the database until then: under
    # that load an answer may be slow to start, and is retried.
    lines.append(
        '[[operations]]\ninclude-operation-id = "stream_events"\nrequest-timeout = 0.5\n'
        "request-retries = 2\nmax-stream-events = 2\ngeneration.max-examples = 10\n"
    )
    return "\n".join(lines)


def _schemathesis(server: LiveServer, workdir: Path, *options: str) -> tuple[int, str, list[str]]:
    """Run `st run` on the live document: its exit code, its output, and the problems it reported."""
    workdir.mkdir()
    config = workdir / "schemathesis.toml"
    config.write_text(_config(server.seed))
    report = workdir / "events.ndjson"
    command = [
        *(ST, "--config-file", str(config), "run", f"{server.url}/openapi.json"),
        *("--header", f"Authorization: Bearer {TOKEN}"),
        *("--checks", CHECKS),
        *("--max-examples", str(EXAMPLES_PER_OPERATION)),
        *("--phases", "examples,coverage,fuzzing"),
        *("--seed", "20240601"),
        # One worker: Hypothesis parses lambdas' source with `ast`, which CPython 3.11 cannot do
        # from several threads at once ("AST constructor recursion depth mismatch").
        *("--workers", "1"),
        *("--request-timeout", "10"),
        "--continue-on-failure",  # a known problem must not hide the next one in the same operation
        *("--generation-database", "none"),
        *("--report", "ndjson", "--report-ndjson-path", str(report)),
        "--no-color",
        *options,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS, cwd=workdir, check=False
    )
    return done.returncode, done.stdout + done.stderr, _problems(report)


def _problems(report: Path) -> list[str]:
    """Every failed check and every error in the NDJSON event stream, one line each."""
    found = []
    for line in report.read_text().splitlines() if report.exists() else []:
        event = json.loads(line)
        if error := event.get("NonFatalError"):
            found.append(f"{error.get('label')}: error {error['value']['type']}: {error['value']['message']}")
        recorder = (event.get("ScenarioFinished") or {}).get("recorder") or {}
        for case_id, checks in recorder.get("checks", {}).items():
            response = (recorder.get("interactions", {}).get(case_id) or {}).get("response") or {}
            found += [
                f"{recorder['label']}: {check['name']} failed (status {response.get('status_code')})"
                for check in checks
                if check.get("status") == "failure"
            ]
    return sorted(set(found))


def _counts(output: str) -> tuple[int, int, int]:
    """Operations selected, in the document, and tested, as the run's summary says."""
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    tested = re.search(r"Tested: (\d+)", output)
    assert selected, output[-5_000:]
    assert tested, output[-5_000:]
    return int(selected[1]), int(selected[2]), int(tested[1])


def test_the_live_api_conforms_to_its_openapi_document(live_server: LiveServer, tmp_path: Path) -> None:
    code, output, problems = _schemathesis(
        live_server, tmp_path / "main", "--exclude-operation-id", DELETE_PROJECT
    )
    print(output, *problems, sep="\n")  # shown with `pytest -rP`
    assert set(problems) <= KNOWN_ISSUES, output[-20_000:]
    assert code == (1 if problems else 0), output[-20_000:]
    selected, total, tested = _counts(output)
    assert selected == tested == total - 1

    code, output, problems = _schemathesis(
        live_server, tmp_path / "delete", "--include-operation-id", DELETE_PROJECT
    )
    assert (code, problems) == (0, []), output[-20_000:]
    assert _counts(output)[::2] == (1, 1)
