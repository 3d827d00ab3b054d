"""Money as people read it: one format for every page, the timeline and admin.

Amounts are shown in ``DAGSTREAM["CURRENCY"]`` (a prefix, default ``"$"``) with
``DAGSTREAM["MONEY_DECIMALS"]`` decimals (default 2). What a page says about an
amount (remaining, over budget, the share used) follows from the numbers it
shows, so it never says "over budget" beside a spent figure equal to the budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from django.utils import formats

from dagstream_app.conf import config

Level = Literal["none", "ok", "warn", "over"]
WARN_RATIO = 0.8


def shown(value: float) -> float:
    """``value`` rounded as it is shown."""
    return round(float(value), int(config().money_decimals))


def format_money(value: float | None) -> str:
    """``$1,234.50``, ``-$0.05``, and ``—`` for no amount; separators as the active
    locale writes them (``$1 234,50`` in French)."""
    if value is None:
        return "—"
    decimals = int(config().money_decimals)
    number = shown(value)
    sign = "-" if number < 0 else ""  # after rounding: never "-$0.00"
    digits = formats.number_format(abs(number), decimals, force_grouping=True)
    return f"{sign}{config().currency}{digits}"


@dataclass(frozen=True, slots=True)
class BudgetUse:
    """Spent against a budget, in the amounts shown."""

    spent: float
    budget: float | None
    remaining: float | None
    pct: int  # share of the budget used, 0-100 (the bar's width)
    level: Level


def budget_use(spent: float, budget: float | None) -> BudgetUse:
    """How much of ``budget`` is used, judged on the rounded amounts people see."""
    spent = shown(spent)
    if budget is None:
        return BudgetUse(spent, None, None, 0, "none")
    budget = shown(budget)
    # A ratio may be infinite (1e308 spent of a 0.01 budget): bound it before round().
    ratio = min(spent / budget, 1.0) if budget else (1.0 if spent == 0 else 2.0)
    level: Level = "over" if spent > budget else "warn" if ratio >= WARN_RATIO else "ok"
    return BudgetUse(spent, budget, shown(budget - spent), min(100, round(ratio * 100)), level)
