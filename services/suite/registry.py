"""Every service of the suite, in start-up order (the directory first).

A service's `app` module offers NAME, DESCRIPTORS, KERNEL (its kernel tables),
catalogue(), build(settings, page_secret, grants) and OUTBOX_DISCARDED (what follows when
operations discard one of its outbox events, by topic; empty if it publishes none). Adding a
service is one line here.
"""

from __future__ import annotations

from types import ModuleType

from services.directory import app as directory_app
from services.finance import app as finance_app
from services.hr import app as hr_app
from services.procurement import app as procurement_app

SERVICE_APPS: list[ModuleType] = [directory_app, procurement_app, finance_app, hr_app]
SERVICES: tuple[str, ...] = tuple(m.NAME for m in SERVICE_APPS)
