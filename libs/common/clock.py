"""Dates as the business sees them: agreements and periods run on Europe/London days."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")


def today_london() -> dt.date:
    return dt.datetime.now(LONDON).date()


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# The years a day given to HR or finance may fall in. A google.type.Date may be any day of
# the years 1 to 9999, but the services compute from a day (its leave year, an expiry
# window after it, the day before it, the month after a report's end), and near the
# calendar's ends those fall off it (a bug reported as INTERNAL). No record needs a day
# outside these years.
FIRST_YEAR, LAST_YEAR = 1900, 2999
YEARS_RULE = f"must fall in the years {FIRST_YEAR} to {LAST_YEAR}"


def in_business_years(day: dt.date) -> bool:
    return FIRST_YEAR <= day.year <= LAST_YEAR
