"""What a protocol run's PR/MR says: its title, its description, and the run summary posted on it."""

from __future__ import annotations

from collections.abc import Sequence

from app.domain.commits import clean_subject
from app.domain.records import ProtocolRun, StepRun

BODY_MAX = 60_000  # GitHub refuses bodies over 65,536 characters
MARKER = "<!-- tasksgodzilla -->"

_ICONS = {"completed": "✅", "failed": "❌", "blocked": "⛔", "cancelled": "🚫"}


def pr_title(run: ProtocolRun) -> str:
    return clean_subject(f"{run.title} [protocol-{run.number:04d}]", 250)


def _steps_table(steps: Sequence[StepRun]) -> list[str]:
    lines = ["| step | status | QA | CI | commit |", "|---|---|---|---|---|"]
    for step in sorted(steps, key=lambda s: s.step_index):
        icon = _ICONS.get(str(step.status), "⏳")
        lines.append(
            f"| {step.step_index:02d} {_cell(step.name)} | {icon} {step.status} | {step.qa_verdict or '–'} "
            f"| {step.ci_status or '–'} | {(step.commit_sha or '–')[:12]} |"
        )
    return lines


def _cell(text: str) -> str:
    """Text that stays inside one Markdown table cell."""
    return clean_subject(text, 120).replace("|", "\\|")


def pr_body(run: ProtocolRun, steps: Sequence[StepRun], *, console_base: str | None = None) -> str:
    """The description: what was asked, and the steps that did it (with a link to the run in the
    console when the service's public address is known)."""
    link = f" ([the run]({console_base}/console/protocols/{run.id}))" if console_base else ""
    parts = [
        f"Protocol `{run.name}`, run by TasksGodzilla{link}.",
        "",
        run.description.strip() or "_No description was given._",
        "",
        "### Steps",
        *_steps_table(steps),
        "",
        MARKER,
    ]
    return _capped("\n".join(parts))


def summary_comment(run: ProtocolRun, steps: Sequence[StepRun], sha: str) -> str:
    """The comment posted when every step is done: where the run stands at `sha`."""
    done = sum(1 for step in steps if str(step.status) == "completed")
    parts = [
        f"**TasksGodzilla**: all {done} steps of `{run.name}` are completed at `{sha[:12]}`.",
        "Merging this PR/MR completes the protocol run.",
        "",
        *_steps_table(steps),
    ]
    if run.summary:
        parts += ["", clean_subject(run.summary, 2000)]
    return _capped("\n".join(parts))


def _capped(text: str) -> str:
    return text if len(text) <= BODY_MAX else text[: BODY_MAX - 1] + "…"
