"""Which failures a job tries again: only the ones another try can cure; a bug gives up at once."""

from __future__ import annotations

import psycopg
import pytest
from procrastinate.exceptions import ConnectorException

from app.domain.workflow import is_recoverable
from app.errors import (
    AgentError,
    AgentTimeoutError,
    AuthenticationError,
    BudgetExceededError,
    CIError,
    ConfigError,
    ConflictError,
    GitError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PlanRejectedError,
    TasksGodzillaError,
    UnavailableError,
)
from app.jobs.tasks import worth_retrying

TABLE = [
    # cured by another try
    (UnavailableError("the database cannot be reached"), True),
    (GitError("git push failed"), True),
    (AgentError("codex exited with code 1"), True),
    (AgentTimeoutError("codex did not finish"), True),
    (CIError("the forge did not answer in time"), True),
    (OSError("disk hiccup"), True),
    (ConnectionResetError("reset by peer"), True),
    (BrokenPipeError("broken pipe"), True),
    (TimeoutError("timed out"), True),
    # the same answer every time
    (InvalidInputError("bad"), False),
    (PlanRejectedError("bad plan"), False),
    (AuthenticationError("no token"), False),
    (PermissionDeniedError("wrong scope"), False),
    (ConfigError("unset"), False),
    (BudgetExceededError("over budget"), False),
    (NotFoundError("gone"), False),
    (ConflictError("clash"), False),
    (TasksGodzillaError("something on purpose"), False),
    # bugs
    (KeyError("stage"), False),
    (TypeError("unsupported operand"), False),
    (AttributeError("'NoneType' object has no attribute 'id'"), False),
    (ValueError("invalid literal"), False),
    (IndexError("list index out of range"), False),
    (ZeroDivisionError("division by zero"), False),
    (AssertionError("unreachable"), False),
    (RuntimeError("unexpected"), False),
    (NotImplementedError(), False),
]


@pytest.mark.parametrize(("error", "expected"), TABLE, ids=[type(e).__name__ for e, _ in TABLE])
def test_only_known_transient_failures_are_recoverable(error, expected):
    assert is_recoverable(error) is expected
    assert worth_retrying(error) is expected


def _wrapped(cause: BaseException) -> ConnectorException:
    try:
        raise ConnectorException("Database error.") from cause
    except ConnectorException as error:
        return error


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        (psycopg.OperationalError("server closed the connection unexpectedly"), True),
        (psycopg.errors.AdminShutdown("terminating connection due to administrator command"), True),
        (psycopg.errors.UndefinedColumn('column "name" does not exist'), False),
        (psycopg.errors.RaiseException("Job was not found"), False),
    ],
)
def test_the_job_queue_losing_its_connection_is_recoverable_and_its_other_errors_are_not(cause, expected):
    assert worth_retrying(_wrapped(cause)) is expected
