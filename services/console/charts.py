"""Bars for the charts page, computed here and drawn by the template as inline SVG (no
script, nothing fetched from elsewhere)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from google.protobuf.message import Message
from google.type import money_pb2

from backoffice.finance.v1 import reports_pb2
from backoffice.hr.v1 import reporting_pb2

BAR_WIDTH = 480  # SVG user units of the longest bar


@dataclass(frozen=True)
class Bar:
    label: str
    values: tuple[Decimal, ...]
    widths: tuple[int, ...]
    texts: tuple[str, ...]


@dataclass(frozen=True)
class Chart:
    title: str
    series: tuple[str, ...]
    bars: tuple[Bar, ...]

    @property
    def height(self) -> int:
        return 24 + len(self.bars) * (8 + 16 * len(self.series))


def _amount(value: money_pb2.Money) -> Decimal:
    return Decimal(value.units) + Decimal(value.nanos) / Decimal(10**9)


def _number(text: str) -> Decimal:
    try:
        return Decimal(text or "0")
    except InvalidOperation:
        return Decimal(0)


def _scale(
    rows: Sequence[tuple[str, Sequence[Decimal], Sequence[str]]], title: str, series: tuple[str, ...]
) -> Chart:
    top = max((v for _, values, _ in rows for v in values), default=Decimal(0))
    bars = tuple(
        Bar(
            label,
            tuple(values),
            tuple(int(BAR_WIDTH * max(v, Decimal(0)) / top) if top > 0 else 0 for v in values),
            tuple(texts),
        )
        for label, values, texts in rows
    )
    return Chart(title, series, bars)


def _label(enum_name: str, prefix: str) -> str:
    return enum_name.removeprefix(prefix).replace("_", " ").capitalize()


def _enum_name(message: type[Message], field: str, number: int) -> str:
    enum = message.DESCRIPTOR.fields_by_name[field].enum_type
    assert enum is not None
    return str(enum.values_by_number[number].name)


def budget_chart(report: reports_pb2.BudgetReport) -> Chart:
    """Budget against actual by CIPFA Police Objective Analysis category."""
    rows = []
    for row in report.rows:
        budget, actual = _amount(row.budget), _amount(row.actual)
        rows.append(
            (
                _label(
                    _enum_name(reports_pb2.BudgetReportRow, "poa_category", row.poa_category), "POA_CATEGORY_"
                ),
                (budget, actual),
                (f"£{budget:,.2f}", f"£{actual:,.2f}"),
            )
        )
    return _scale(rows, f"Budget against actual, {report.financial_year}", ("budget", "actual"))


def _figures(figures: list[reporting_pb2.WorkforceFigure], title: str) -> Chart:
    rows = []
    for f in figures:
        fte = _number(f.fte)
        worker_type = _label(
            _enum_name(reporting_pb2.WorkforceFigure, "worker_type", f.worker_type), "WORKER_TYPE_"
        )
        label = f"{worker_type}: {f.category}" if f.category else worker_type
        rows.append((label, (fte, Decimal(f.headcount)), (f"{fte} FTE", f"{f.headcount} people")))
    return _scale(rows, title, ("FTE", "headcount"))


def workforce_charts(stats: reporting_pb2.WorkforceStatistics) -> list[Chart]:
    """Workforce by rank and by sex, from the Home Office return's figures."""
    return [
        _figures(list(stats.strength.by_rank), "Officers by rank"),
        _figures(list(stats.strength.by_sex), "Workforce by sex"),
    ]
