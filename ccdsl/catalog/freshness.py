"""How old a catalog price may be before an answer or ``catalog info`` warns about it.

One place for the rule, because the resolver's answers and ``ccdsl catalog info`` both apply it.  Standard library
only: the resolver imports it on every start.
"""

from __future__ import annotations

import datetime as dt

# On-demand prices change a few times a year: a price older than about six months is worth refreshing.
PRICE_MAX_AGE_DAYS = 180
# Spot prices follow spare capacity and change within days, so a spot price older than a week is a guess about
# today's.
SPOT_PRICE_MAX_AGE_DAYS = 7


def price_age_days(date: str, today: dt.date | None = None) -> int | None:
    """Days from ``date`` (ISO 8601; a time after the date is ignored) to ``today`` (UTC); None when the date does
    not read as ISO 8601 (an unknown price has no date)."""
    try:
        day = dt.date.fromisoformat(date[:10])
    except ValueError:
        return None
    return ((today or dt.datetime.now(dt.timezone.utc).date()) - day).days
