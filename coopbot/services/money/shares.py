"""The arithmetic of sharing a surplus, with no database in sight.

Everything here is integers: cents for money, thousandths for points,
hundredths of a percent ("basis points") for percentages. Splits use the
largest-remainder method so the parts always add up to the whole, to the
cent, and each part is within one cent of its exact share; ties go to the
lower member id so the result never depends on the order rows came back in.
Keeping it pure lets hypothesis hammer it with random co-ops.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

FULL_BP = 10_000
MILLI = 1000


@dataclass(frozen=True)
class Terms:
    """The rules in force for one period, fixed when it opens (a vote changes the next one)."""

    legal_reserve_bp: int = 1500
    development_fund_bp: int = 2500
    dividend_bp: int = 6000
    equity_threshold_cents: int = 0
    base_pay_per_hour_cents: int = 0
    base_pay_per_delivery_cents: int = 0
    #: Points per hour or per item, in thousandths of a point.
    weights: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> Terms:
        reserve = int(data.get("legal_reserve_bp", 1500))
        fund = int(data.get("development_fund_bp", 2500))
        return cls(
            legal_reserve_bp=reserve,
            development_fund_bp=fund,
            dividend_bp=int(data.get("dividend_bp", FULL_BP - reserve - fund)),
            equity_threshold_cents=int(data.get("equity_threshold_cents", 0)),
            base_pay_per_hour_cents=int(data.get("base_pay_per_hour_cents", 0)),
            base_pay_per_delivery_cents=int(data.get("base_pay_per_delivery_cents", 0)),
            weights={str(k): int(v) for k, v in dict(data.get("weights", {})).items()},
        )

    def weight(self, kind: str) -> int | None:
        return self.weights.get(kind)


def points_for(quantity_milli: int, weight_milli: int) -> int:
    """quantity × weight, in thousandths of a point, rounded half away from zero."""
    return round_div(quantity_milli * weight_milli, MILLI)


def round_div(numerator: int, denominator: int) -> int:
    """Integer division rounded half away from zero (never banker's rounding, never float)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    sign = -1 if numerator < 0 else 1
    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return sign * quotient


def largest_remainder(total: int, weights: Mapping[int, int]) -> dict[int, int]:
    """Split `total` cents among keys in proportion to positive weights.

    Keys with a weight of zero or less get nothing. Each key first gets the
    floor of its exact share; the cents left over go one each to the largest
    remainders, ties to the smaller key.
    """
    if total < 0:
        raise ValueError("cannot split a negative amount")
    eligible = {key: weight for key, weight in weights.items() if weight > 0}
    result = dict.fromkeys(weights, 0)
    whole = sum(eligible.values())
    if whole == 0 or total == 0:
        return result
    remainders: list[tuple[int, int]] = []
    given = 0
    for key, weight in eligible.items():
        share, remainder = divmod(total * weight, whole)
        result[key] = share
        given += share
        remainders.append((-remainder, key))
    left = total - given
    if left:
        remainders.sort()
        for _, key in remainders[:left]:
            result[key] += 1
    return result


@dataclass(frozen=True)
class Buckets:
    legal_reserve: int
    development_fund: int
    dividend: int

    @property
    def total(self) -> int:
        return self.legal_reserve + self.development_fund + self.dividend


def split_buckets(surplus: int, terms: Terms) -> Buckets:
    """Reserve, fund and dividend by the governed percentages, adding up to the surplus."""
    parts = largest_remainder(surplus, {0: terms.legal_reserve_bp, 1: terms.development_fund_bp, 2: terms.dividend_bp})
    return Buckets(parts[0], parts[1], parts[2])


def base_pay(hours_milli: int, deliveries_milli: int, terms: Terms) -> int:
    """Hours × rate per hour + deliveries × rate per delivery, in cents."""
    return round_div(
        hours_milli * terms.base_pay_per_hour_cents + deliveries_milli * terms.base_pay_per_delivery_cents,
        MILLI,
    )


@dataclass(frozen=True)
class Outcome:
    """What a close decides, before anything is written."""

    income: int
    expenses: int
    base_pay: int
    net: int
    threshold: int
    surplus: int
    buckets: Buckets
    #: member id → dividend cents (every member given, zero when not sharing)
    dividends: dict[int, int]
    total_points: int
    #: Why nothing was shared: "deficit", "below_threshold", "no_points", or "".
    nothing_because: str

    @property
    def distributed(self) -> int:
        return sum(self.dividends.values())

    @property
    def kept(self) -> int:
        """Dividend pool kept by the co-op because nobody had points."""
        return self.buckets.dividend - self.distributed

    @classmethod
    def from_totals(cls, totals: Mapping[str, Any]) -> Outcome:
        """Back from what a closed period stored (its members' dividends are in allocations)."""

        def get(key: str) -> int:
            return int(totals.get(key, 0))

        return cls(
            income=get("income"),
            expenses=get("expenses"),
            base_pay=get("base_pay"),
            net=get("net"),
            threshold=get("threshold"),
            surplus=get("surplus"),
            buckets=Buckets(get("legal_reserve"), get("development_fund"), get("dividend")),
            dividends={},
            total_points=get("total_points_milli"),
            nothing_because=str(totals.get("nothing_because", "")),
        )

    def as_totals(self) -> dict[str, Any]:
        return {
            "income": self.income,
            "expenses": self.expenses,
            "base_pay": self.base_pay,
            "net": self.net,
            "threshold": self.threshold,
            "surplus": self.surplus,
            "legal_reserve": self.buckets.legal_reserve,
            "development_fund": self.buckets.development_fund,
            "dividend": self.buckets.dividend,
            "distributed": self.distributed,
            "kept": self.kept,
            "total_points_milli": self.total_points,
            "nothing_because": self.nothing_because,
        }


def settle(
    income: int,
    expenses: int,
    base_pay_total: int,
    points: Mapping[int, int],
    terms: Terms,
) -> Outcome:
    """Net, surplus, buckets and each member's dividend, to the cent.

    `expenses` excludes base pay, which is added here. Only members with a
    positive point total share the dividend; a negative total (a correction
    bigger than the period's work) counts as zero, never as a debt.
    """
    net = income - expenses - base_pay_total
    surplus = max(0, net - terms.equity_threshold_cents)
    buckets = split_buckets(surplus, terms)
    positive = {member: pts for member, pts in points.items() if pts > 0}
    total_points = sum(positive.values())
    dividends = largest_remainder(buckets.dividend, positive) if total_points else {}
    dividends = {member: dividends.get(member, 0) for member in points}
    because = ""
    if net < 0:
        because = "deficit"
    elif surplus == 0:
        because = "below_threshold"
    elif total_points == 0:
        because = "no_points"
    return Outcome(
        income=income,
        expenses=expenses,
        base_pay=base_pay_total,
        net=net,
        threshold=terms.equity_threshold_cents,
        surplus=surplus,
        buckets=buckets,
        dividends=dividends,
        total_points=total_points,
        nothing_because=because,
    )


def share_bp(points: int, total: int) -> int:
    """A member's share of the points in basis points (for '12.34 %')."""
    if total <= 0 or points <= 0:
        return 0
    return round_div(points * FULL_BP, total)


def total(values: Iterable[int]) -> int:
    return sum(values)
