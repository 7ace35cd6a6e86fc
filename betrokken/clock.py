"""The one clock: timezone-aware UTC now. Times a person reads are converted to Europe/Amsterdam
where they are shown; everything stored and signed is UTC."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
