"""Reference organisations shipped with the package: the 43 police force areas of
England and Wales and a starting set of partner bodies and shared-service units."""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

REFERENCE_DIR = Path(__file__).resolve().parent / "reference"
KINDS = ("FORCE", "PARTNER", "SHARED_SERVICE_UNIT", "NATIONAL_BODY")


@dataclass(frozen=True)
class ReferenceOrganisation:
    code: str
    display_name: str
    kind: str
    country: str


def reference_organisations() -> list[ReferenceOrganisation]:
    orgs: list[ReferenceOrganisation] = []
    with (REFERENCE_DIR / "police_force_areas.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            orgs.append(ReferenceOrganisation(row["gss_code"], row["name"], "FORCE", row["country"]))
    with (REFERENCE_DIR / "organisations.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            orgs.append(ReferenceOrganisation(row["code"], row["display_name"], row["kind"], row["country"]))
    return sorted(orgs, key=lambda o: o.code)


@functools.cache
def reference_codes(*kinds: str) -> frozenset[str]:
    """The codes of the reference organisations of these kinds (e.g. every police force)."""
    return frozenset(o.code for o in reference_organisations() if o.kind in kinds)
