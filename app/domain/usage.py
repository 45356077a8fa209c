"""Token usage and what it costs: engines report tokens, a per-model price table turns them into dollars."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class BudgetMode(StrEnum):
    """What a breached budget does: `warn` records an event, `enforce` also stops the work, `off`
    checks nothing."""

    WARN = "warn"
    ENFORCE = "enforce"
    OFF = "off"


MILLION = Decimal(1_000_000)
CENT_FRACTION = Decimal("0.000001")


class TokenUsage(BaseModel):
    """Tokens of one agent run. `cached_input_tokens` is part of `input_tokens`, billed at its own rate."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int = Field(0, ge=0)
    cached_input_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(0, ge=0)
    reasoning_tokens: int = Field(0, ge=0)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
        )

    def minus(self, earlier: TokenUsage) -> TokenUsage:
        """The usage added since `earlier` (engines that report running totals); never negative."""
        return TokenUsage(
            input_tokens=max(0, self.input_tokens - earlier.input_tokens),
            cached_input_tokens=max(0, self.cached_input_tokens - earlier.cached_input_tokens),
            output_tokens=max(0, self.output_tokens - earlier.output_tokens),
            reasoning_tokens=max(0, self.reasoning_tokens - earlier.reasoning_tokens),
        )


class ModelPrice(BaseModel):
    """US dollars per million tokens. Reasoning tokens are billed as output (they are part of it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: Decimal = Field(ge=0)
    output: Decimal = Field(ge=0)
    cached_input: Decimal | None = Field(None, ge=0)


# Published list prices at the time of writing; override with TASKSGODZILLA_MODEL_PRICES.
DEFAULT_MODEL_PRICES: dict[str, ModelPrice] = {
    "gpt-5.1-codex": ModelPrice(input=Decimal("1.25"), cached_input=Decimal("0.125"), output=Decimal("10")),
    "gpt-5.1": ModelPrice(input=Decimal("1.25"), cached_input=Decimal("0.125"), output=Decimal("10")),
    "gpt-5-codex": ModelPrice(input=Decimal("1.25"), cached_input=Decimal("0.125"), output=Decimal("10")),
    "gpt-5.1-codex-mini": ModelPrice(
        input=Decimal("0.25"), cached_input=Decimal("0.025"), output=Decimal("2")
    ),
}


def cost_of(usage: TokenUsage, price: ModelPrice | None) -> Decimal | None:
    """The cost of `usage` at `price`, to the millionth of a dollar; None when the model has no price."""
    if price is None:
        return None
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    cached_rate = price.cached_input if price.cached_input is not None else price.input
    dollars = (
        Decimal(usage.input_tokens - cached) * price.input
        + Decimal(cached) * cached_rate
        + Decimal(usage.output_tokens) * price.output
    ) / MILLION
    return dollars.quantize(CENT_FRACTION, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Ceiling:
    """One budget: what it caps (`scope`), the limit, and who set it (a setting, or the run's policy)."""

    scope: str
    limit: float
    source: str


def tighter(
    scope: str, setting: tuple[float | None, str], policy: tuple[float | None, str]
) -> Ceiling | None:
    """The lower of the setting's limit and the policy's (each `(limit or None, source)`); the setting
    on a tie; None when neither sets one."""
    found = [
        Ceiling(scope=scope, limit=limit, source=source)
        for limit, source in (setting, policy)
        if limit is not None
    ]
    return min(found, key=lambda ceiling: ceiling.limit) if found else None
