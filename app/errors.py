"""The one exception tree of TasksGodzilla, and the one table that maps it to HTTP and CLI.

    TasksGodzillaError                 anything we raise on purpose
    ├── ConfigError                    a setting is invalid or missing
    ├── InvalidInputError              a request, an argument or an agent's output is malformed
    │   ├── PlanRejectedError          a plan failed its guardrails
    │   ├── UnsafeRepositoryError      a repository's own git config asks git to run a program
    │   └── PayloadTooLargeError       a request body is larger than accepted
    ├── NotFoundError                  the thing asked for does not exist
    ├── ConflictError                  the request clashes with the current state
    │   ├── IllegalTransitionError     the status machine forbids this move
    │   ├── PushRejectedError          the remote refused the branch (not a fast-forward)
    │   └── StaleWriteError            someone else changed the row first (lost compare-and-set)
    ├── AuthenticationError            no or bad credentials
    ├── PermissionDeniedError          valid credentials, wrong scope
    ├── BudgetExceededError            a token or cost ceiling stops the work
    ├── UnavailableError               a dependency (database, forge) cannot be reached
    │   └── NotConfiguredError         ... or this feature is not set up here (a webhook secret)
    ├── AgentError                     a coding agent failed
    │   └── AgentTimeoutError          ... by running past its deadline
    ├── GitError                       a git command failed
    └── CIError                        a CI or forge exchange failed

Rules for raising: the message is safe to show a user (no secrets, no tracebacks); `details` holds
machine-readable context (for instance the offending `field`), also safe to show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class TasksGodzillaError(Exception):
    """Base of every error we raise on purpose."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigError(TasksGodzillaError):
    """A setting is invalid or missing."""


class InvalidInputError(TasksGodzillaError):
    """A request, an argument or an agent's output is malformed."""


class PlanRejectedError(InvalidInputError):
    """A plan produced by an agent failed its guardrails."""


class UnsafeRepositoryError(InvalidInputError):
    """A repository's own git configuration names a program for git to run (or redirects git):
    refused until the operator removes it. Terminal: trying again finds the same config."""


class PayloadTooLargeError(InvalidInputError):
    """A request body is larger than accepted."""


class NotFoundError(TasksGodzillaError):
    """The thing asked for does not exist."""


class ConflictError(TasksGodzillaError):
    """The request clashes with the current state."""


class IllegalTransitionError(ConflictError):
    """The status machine forbids this move."""


class PushRejectedError(ConflictError):
    """The remote refused the protocol branch (it moved on there): a person must reconcile the two.

    Terminal: pushing again, or running the agent again, cannot succeed while the remote has diverged.
    """


class StaleWriteError(ConflictError):
    """Someone else changed the row first: the compare-and-set lost."""


class AuthenticationError(TasksGodzillaError):
    """No credentials, or bad ones."""


class PermissionDeniedError(TasksGodzillaError):
    """Valid credentials for another scope."""


class BudgetExceededError(TasksGodzillaError):
    """A token or cost ceiling stops the work."""


class UnavailableError(TasksGodzillaError):
    """A dependency (database, forge) cannot be reached."""


class NotConfiguredError(UnavailableError):
    """The feature asked for is not set up on this server (for instance a webhook's secret)."""


class AgentError(TasksGodzillaError):
    """A coding agent failed."""


class AgentTimeoutError(AgentError):
    """A coding agent ran past its deadline."""


class GitError(TasksGodzillaError):
    """A git command failed."""


class CIError(TasksGodzillaError):
    """A CI or forge exchange failed."""


@dataclass(frozen=True)
class ErrorSpec:
    """How one kind of error is reported: HTTP status, CLI exit code, and a stable code string."""

    http_status: int
    exit_code: int
    code: str


# Exit codes follow sysexits.h where one fits, so scripts can tell failures apart.
ERROR_TABLE: dict[type[TasksGodzillaError], ErrorSpec] = {
    TasksGodzillaError: ErrorSpec(500, 1, "internal_error"),
    ConfigError: ErrorSpec(500, 78, "config_error"),  # EX_CONFIG
    InvalidInputError: ErrorSpec(422, 65, "invalid_input"),  # EX_DATAERR
    PlanRejectedError: ErrorSpec(422, 65, "plan_rejected"),
    UnsafeRepositoryError: ErrorSpec(422, 65, "unsafe_repository"),
    PayloadTooLargeError: ErrorSpec(413, 65, "payload_too_large"),
    NotFoundError: ErrorSpec(404, 66, "not_found"),  # EX_NOINPUT
    ConflictError: ErrorSpec(409, 75, "conflict"),  # EX_TEMPFAIL: re-read and try again
    IllegalTransitionError: ErrorSpec(409, 75, "illegal_transition"),
    StaleWriteError: ErrorSpec(409, 75, "stale_write"),
    PushRejectedError: ErrorSpec(409, 75, "push_rejected"),
    AuthenticationError: ErrorSpec(401, 77, "unauthenticated"),  # EX_NOPERM
    PermissionDeniedError: ErrorSpec(403, 77, "forbidden"),
    BudgetExceededError: ErrorSpec(409, 73, "budget_exceeded"),  # no sysexits code fits; 73 is ours
    UnavailableError: ErrorSpec(503, 69, "unavailable"),  # EX_UNAVAILABLE
    NotConfiguredError: ErrorSpec(503, 78, "not_configured"),  # EX_CONFIG
    AgentError: ErrorSpec(502, 70, "agent_error"),  # EX_SOFTWARE
    AgentTimeoutError: ErrorSpec(504, 70, "agent_timeout"),
    GitError: ErrorSpec(502, 74, "git_error"),  # EX_IOERR
    CIError: ErrorSpec(502, 76, "ci_error"),  # EX_PROTOCOL
}


def spec_for(error: BaseException) -> ErrorSpec:
    """The table row of the closest class in the error's ancestry; unknown errors are internal."""
    for cls in type(error).__mro__:
        spec = ERROR_TABLE.get(cls)
        if spec is not None:
            return spec
    return ERROR_TABLE[TasksGodzillaError]
