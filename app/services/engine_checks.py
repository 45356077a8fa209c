"""Whether the configured engines can start: reported by `/health`, required by project setup."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.domain.records import Project, Stage
from app.engines.base import Engine
from app.engines.probe import EngineCheck
from app.engines.registry import pick
from app.errors import ConfigError
from app.services.choices import engine_for
from app.services.context import Services
from app.services.events import record

# How long one report waits for a version probe; a slower one goes on, and its answer is cached.
REPORT_WAIT_SECONDS = 5.0


async def engine_report(
    svc: Services, *, workdir: Path | None = None, wait_seconds: float = REPORT_WAIT_SECONDS
) -> dict[str, EngineCheck]:
    """Every configured engine, checked concurrently (from `workdir` when given)."""
    names = list(svc.engines)
    checks = await asyncio.gather(*(_check(svc.engines[n], workdir, wait_seconds) for n in names))
    return dict(zip(names, checks, strict=True))


async def _check(engine: Engine, workdir: Path | None, wait_seconds: float) -> EngineCheck:
    try:
        async with asyncio.timeout(wait_seconds):
            return await engine.check(workdir)
    except TimeoutError:
        return EngineCheck(
            "unknown",
            engine.setting,
            error=f"its version probe has not answered within {wait_seconds:g} s; ask again",
        )


async def stages_by_engine(svc: Services, project: Project | None = None) -> dict[str, list[str]]:
    """Which stages each engine runs: the project's choices (its policy's too), or the settings' defaults."""
    stages = [Stage.PLANNING, Stage.EXECUTION, Stage.QA]
    if svc.settings.setup_discovery:
        stages.insert(0, Stage.DISCOVERY)
    used: dict[str, list[str]] = {}
    for stage in stages:
        if project is not None:
            name = (await engine_for(svc, stage, project)).engine
        else:  # the settings' defaults; discovery runs on the planning engine
            prefix = Stage.PLANNING if stage is Stage.DISCOVERY else stage
            name = str(getattr(svc.settings, f"{prefix}_engine"))
        used.setdefault(name, []).append(str(stage))
    return used


async def require_project_engines(svc: Services, project: Project, workdir: Path) -> None:
    """Setup: report every engine as seen from the project's repository, and refuse (a ConfigError
    naming the setting to fix) when one its stages use cannot start."""
    used = await stages_by_engine(svc, project)
    for name in used:
        pick(svc.engines, name)  # an engine that is not configured at all: ConfigError saying how
    report = await engine_report(svc, workdir=workdir)
    async with svc.database.transaction() as conn:
        await record(
            conn,
            project.id,
            "setup.engines",
            "engines: " + ", ".join(f"{n} {c.version or c.status}" for n, c in report.items()),
            engines={n: {**c.as_dict(), "stages": used.get(n, [])} for n, c in report.items()},
        )
    broken = [f"{n} ({', '.join(used[n])}): {report[n].error}" for n in used if report[n].status == "error"]
    if broken:
        raise ConfigError("an engine this project uses cannot start: " + "; ".join(broken), field="engine")
