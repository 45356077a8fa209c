"""Policy packs in use: statuses draft/active/retired, the seeded packs in the pack shape, every project
on a pack (existing ones on `default@1.0`, new ones on `default`, latest active), a project's strict
mode, and the effective policy a protocol run ran under.

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Snapshots, not imports: a migration must keep meaning what it meant when it was written.
DEFAULT = {"description": "Baseline: no requirements; findings are warnings."}
STRICT = {
    "description": (
        "Regulated repositories: tests required, QA by a second engine, no auto-merge, "
        "required plan and step sections, workflows untouchable; the guardrails are locked."
    ),
    "plan": {"required_sections": ["Goal", "Steps", "Risks"], "max_steps": 12},
    "steps": {"required_sections": ["Objective", "Acceptance criteria"]},
    "checks": {"required": []},
    "qa": {"strictness": "strict", "second_opinion": {"engine": "claude", "model": None}},
    "paths": {"forbidden": [".github/workflows/**", ".gitlab-ci.yml", "secrets/**", "**/*.pem"]},
    "findings": {
        "blocking": [
            "plan.missing_section",
            "plan.too_many_steps",
            "step.missing_section",
            "step.required_check_not_seen",
            "step.forbidden_path_touched",
            "onboarding.no_test_command",
        ]
    },
    "onboarding": {
        "questions": [
            {"key": "test_command", "question": "Which command runs the tests?", "required": True},
            {
                "key": "change_approver",
                "question": "Who approves changes to this repository?",
                "required": True,
            },
        ]
    },
    "auto_merge": False,
    "locked": [
        "plan.required_sections",
        "steps.required_sections",
        "checks.required",
        "qa.strictness",
        "qa.second_opinion",
        "paths.forbidden",
        "findings.blocking",
        "auto_merge",
    ],
}
STARTER = {
    "description": "Getting started: guided setup questions, generous limits, findings as warnings.",
    "plan": {"required_sections": ["Goal", "Steps"], "max_steps": 30},
    "qa": {"strictness": "lenient"},
    "limits": {"tokens_per_step": 2_000_000, "tokens_per_protocol": 20_000_000, "usd_per_protocol": 50.0},
    "onboarding": {
        "questions": [
            {
                "key": "test_command",
                "question": "How are the tests run (for example `pytest -q`)?",
                "required": False,
            },
            {"key": "goal", "question": "What should agents help with first?", "required": False},
            {
                "key": "off_limits",
                "question": "Which files or folders must agents leave alone?",
                "required": False,
            },
        ]
    },
}
PACKS = [
    ("strict", "Strict", STRICT),
    ("starter", "Starter", STARTER),
]


def upgrade() -> None:
    op.drop_constraint(op.f("ck_policy_packs_status_known"), "policy_packs", type_="check")
    op.execute("UPDATE policy_packs SET status = 'retired' WHERE status = 'deprecated'")
    op.create_check_constraint(
        op.f("ck_policy_packs_status_known"), "policy_packs", "status IN ('draft', 'active', 'retired')"
    )
    packs = sa.table(
        "policy_packs",
        sa.column("key", sa.Text),
        sa.column("version", sa.Text),
        sa.column("name", sa.Text),
        sa.column("description", sa.Text),
        sa.column("status", sa.Text),
        sa.column("pack", postgresql.JSONB),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    # The first seed was written before packs had a shape: default@1.0 becomes what it meant.
    op.execute(
        packs.update()
        .where(packs.c.key == "default", packs.c.version == "1.0")
        .values(pack=DEFAULT, description=DEFAULT["description"], updated_at=sa.func.now())
    )
    op.bulk_insert(
        packs,
        [
            {
                "key": key,
                "version": "1.0",
                "name": name,
                "description": pack["description"],
                "status": "active",
                "pack": pack,
            }
            for key, name, pack in PACKS
        ],
    )
    op.add_column(
        "projects", sa.Column("policy_strict", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )
    op.alter_column("projects", "policy_pack_key", server_default="default")
    op.execute(
        "UPDATE projects SET policy_pack_key = 'default', policy_pack_version = '1.0', version = version + 1"
        " WHERE policy_pack_key IS NULL"
    )
    op.add_column(
        "protocol_runs", sa.Column("policy_effective", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("protocol_runs", "policy_effective")
    op.alter_column("projects", "policy_pack_key", server_default=None)
    op.drop_column("projects", "policy_strict")
    op.execute("DELETE FROM policy_packs WHERE key IN ('strict', 'starter') AND version = '1.0'")
    op.drop_constraint(op.f("ck_policy_packs_status_known"), "policy_packs", type_="check")
    op.execute("UPDATE policy_packs SET status = 'deprecated' WHERE status = 'retired'")
    op.create_check_constraint(
        op.f("ck_policy_packs_status_known"), "policy_packs", "status IN ('active', 'deprecated', 'draft')"
    )
