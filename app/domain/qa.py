"""The QA verdict: a strict schema for the agent, and a fail-closed reading of what it returned.

No verdict, a malformed one, or a "pass" that lists an error-severity finding all read as a fail:
a step is only completed on a clear pass or a person's approval.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 (a verdict, not a password)
    FAIL = "fail"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


QA_OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["verdict", "summary", "findings"],
    "properties": {
        "verdict": {"type": "string", "enum": [v.value for v in Verdict]},
        "summary": {"type": "string"},
        "findings": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["severity", "message", "file"],
                "properties": {
                    "severity": {"type": "string", "enum": [s.value for s in Severity]},
                    "message": {"type": "string"},
                    "file": {"type": ["string", "null"]},
                },
            },
        },
    },
}


class QaFinding(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    severity: Severity
    message: str = Field(max_length=4000)
    file: str | None = Field(None, max_length=500)


class QaVerdict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    verdict: Verdict
    summary: str = Field(max_length=8000)
    findings: tuple[QaFinding, ...]

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS


def read_verdict(output: Any) -> QaVerdict:
    """The agent's verdict if it is well-formed and consistent; otherwise a fail saying why."""
    if output is None:
        return _fail("the QA agent returned no verdict")
    try:
        verdict = QaVerdict.model_validate(output)
    except ValidationError as exc:
        where = ", ".join(".".join(map(str, e["loc"])) or "verdict" for e in exc.errors()[:5])
        return _fail(f"the QA agent's verdict is malformed ({where})")
    if verdict.passed and any(f.severity is Severity.ERROR for f in verdict.findings):
        return verdict.model_copy(
            update={
                "verdict": Verdict.FAIL,
                "summary": f"pass with error findings read as fail: {verdict.summary}",
            }
        )
    if not verdict.summary.strip():
        return verdict.model_copy(update={"verdict": Verdict.FAIL, "summary": "the QA agent gave no summary"})
    return verdict


def _fail(reason: str) -> QaVerdict:
    return QaVerdict(verdict=Verdict.FAIL, summary=reason, findings=())


def render_report(step_title: str, verdict: QaVerdict) -> str:
    """The QA report written beside the step file (Markdown)."""
    lines = [f"# QA: {step_title}", "", f"**Verdict:** {verdict.verdict}", "", verdict.summary.strip(), ""]
    if verdict.findings:
        lines += ["## Findings", ""]
        for finding in verdict.findings:
            where = f" (`{finding.file}`)" if finding.file else ""
            lines.append(f"- **{finding.severity}**{where}: {finding.message.strip()}")
        lines.append("")
    return "\n".join(lines)
