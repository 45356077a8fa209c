"""`tasksgodzilla eval SUITE`: run a suite of sample tasks across variants; a table and JSON of results.

No database: every run is a temporary repository (app.services.evals). Progress goes to stderr, the
results to stdout (and to `--json PATH`). A failed task is a result: the exit code is 0 once the suite
ran, unless `--min-pass-rate` is given and a variant falls below it (exit 1).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from pathlib import Path

import click

from app.cli.common import reports_errors, settings_for_command, table
from app.cli.progress import elapsed_text
from app.domain.evals import EvalRun, EvalTask, EvalVariant, report, summarise, summary_rows
from app.errors import InvalidInputError
from app.services.evals import Evaluator, load_suite, run_suite


def _started(index: int, total: int, variant: EvalVariant, task: EvalTask, repeat: int) -> None:
    click.echo(f"[{index}/{total}] {variant.name} · {task.name} #{repeat} …", err=True)


def _finished(index: int, total: int, run: EvalRun) -> None:
    outcome = "pass" if run.passed else f"fail ({run.error})" if run.error else "fail"
    click.echo(f"[{index}/{total}] {outcome} in {elapsed_text(run.duration_ms / 1000)}", err=True)


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise InvalidInputError(f"cannot write {path}: {error.strerror}", field="json") from None


@click.command("eval")
@click.argument("suite", type=click.Path(path_type=Path))
@click.option("--variant", "variants", multiple=True, help="Run only this variant (repeatable).")
@click.option("--task", "tasks", multiple=True, help="Run only this task (repeatable).")
@click.option("--repeat", type=click.IntRange(1, 100), default=1, show_default=True, help="Runs per task.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write the JSON report here.")
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="What stdout shows.",
)
@click.option(
    "--min-pass-rate",
    type=click.FloatRange(0, 1),
    help="Exit 1 when a variant passes less than this share of its runs (0 to 1).",
)
@reports_errors
def evaluate(
    suite: Path,
    variants: tuple[str, ...],
    tasks: tuple[str, ...],
    repeat: int,
    json_path: Path | None,
    output: str,
    min_pass_rate: float | None,
) -> None:
    """Run the sample tasks of SUITE (a folder with suite.yaml) across its variants.

    Each run executes the task with the variant's engine, model and prompt in a fresh git repository,
    then the task's checker there; the table shows each variant's pass rate, tokens, cost and time.
    """
    loaded = load_suite(suite)
    loaded = dataclasses.replace(loaded, suite=loaded.suite.selected(variants, tasks))
    settings = settings_for_command()
    evaluator = Evaluator.from_settings(settings)
    runs = asyncio.run(run_suite(evaluator, loaded, repeat=repeat, started=_started, finished=_finished))
    summaries = summarise(runs, [variant.name for variant in loaded.suite.variants])
    document = report(runs, summaries)
    if json_path is not None:
        _write(json_path, json.dumps(document, indent=2) + "\n")
    if output == "json":
        click.echo(json.dumps(document, indent=2))
    else:
        for line in table(*summary_rows(summaries)):
            click.echo(line)
    if min_pass_rate is not None:
        below = [s for s in summaries if s.pass_rate < min_pass_rate]
        for summary in below:
            click.echo(
                f"variant {summary.variant} passed {summary.pass_rate:.0%}, under {min_pass_rate:.0%}",
                err=True,
            )
        if below:
            sys.exit(1)
