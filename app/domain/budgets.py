"""Whether an agent run may start: each budget's ceiling, what is spent, raised and expected.

Scopes and their units:

    step            tokens of one step's agent runs (execution and QA)
    protocol        tokens of one protocol run's agent runs (planning, steps, QA)
    protocol_cost   US dollars of one protocol run's agent runs
    project         US dollars of every agent run of the project, ever
    month           tokens of the project's agent runs started this calendar month (UTC)
    month_cost      US dollars of the same
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from app.domain.usage import Ceiling

TOKEN_SCOPES = frozenset({"step", "protocol", "month"})
USD_SCOPES = frozenset({"protocol_cost", "project", "month_cost"})
SCOPES = TOKEN_SCOPES | USD_SCOPES
RUN_SCOPES = frozenset({"protocol", "protocol_cost"})  # raised per protocol run
ESTIMATE_RUNS = 10  # the expected cost of a stage is the mean of the project's last runs of it


@dataclass(frozen=True)
class Spend:
    """Tokens and dollars of some agent runs; `unpriced_tokens` are those of runs whose cost is unknown."""

    tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    unpriced_tokens: int = 0
    running: int = 0  # of them still running: they will spend too (a reservation of their estimate)

    def usd(self, unpriced_per_1k: Decimal | None) -> Decimal:
        """Dollars, counting unpriced tokens at `unpriced_per_1k` (not at all when None)."""
        if unpriced_per_1k is None:
            return self.cost_usd
        return self.cost_usd + Decimal(self.unpriced_tokens) * unpriced_per_1k / 1000


@dataclass(frozen=True)
class Standing:
    """One budget at one check: its ceiling, what was raised on it, spent, and the run is expected to use."""

    ceiling: Ceiling
    raised: float
    used: float
    expected: float

    @property
    def limit(self) -> float:
        return self.ceiling.limit + self.raised

    @property
    def refuses(self) -> bool:
        """Spent already, or the remaining budget cannot cover the expected run."""
        return self.used >= self.limit or self.used + self.expected > self.limit


def month_start(now: datetime) -> datetime:
    """The first instant of `now`'s calendar month, in UTC."""
    now = now.astimezone(UTC)
    return datetime(now.year, now.month, 1, tzinfo=UTC)


def month_key(now: datetime) -> str:
    """`YYYY-MM` of `now` in UTC: the month a monthly raise belongs to."""
    return month_start(now).strftime("%Y-%m")


def expected_spend(
    recent: Sequence[Spend], *, floor_tokens: int, floor_usd: Decimal, unpriced_per_1k: Decimal | None
) -> tuple[float, Decimal]:
    """Expected (tokens, dollars) of the next run: the mean of `recent` runs of its stage (their
    unpriced tokens at `unpriced_per_1k`), or the floors when there are none."""
    if not recent:
        return float(floor_tokens), floor_usd
    tokens = sum(spend.tokens for spend in recent) / len(recent)
    dollars = sum((spend.usd(unpriced_per_1k) for spend in recent), Decimal(0)) / len(recent)
    return tokens, dollars


def first_refusal(standings: Sequence[Standing]) -> Standing | None:
    """The first budget that refuses the run, if any."""
    return next((standing for standing in standings if standing.refuses), None)


@dataclass(frozen=True)
class Headroom:
    """What the tightest USD and token budgets have left after a check let a run start (None: none)."""

    usd: Decimal | None = None
    tokens: int | None = None


def headroom(standings: Sequence[Standing]) -> Headroom:
    """What the tightest budget of each unit has left; at least one token, one millionth of a dollar."""
    tokens = [s.limit - s.used for s in standings if s.ceiling.scope in TOKEN_SCOPES]
    return Headroom(usd=remaining_usd(standings), tokens=max(1, int(min(tokens))) if tokens else None)


def remaining_usd(standings: Sequence[Standing]) -> Decimal | None:
    """What the tightest USD budget has left, to the millionth of a dollar; None without one."""
    left = [standing.limit - standing.used for standing in standings if standing.ceiling.scope in USD_SCOPES]
    if not left:
        return None
    return max(Decimal(str(min(left))).quantize(Decimal("0.000001")), Decimal("0.000001"))
