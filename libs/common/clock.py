"""Dates as the business sees them: agreements and periods run on Europe/London days."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")


def today_london() -> dt.date:
    return dt.datetime.now(LONDON).date()


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
