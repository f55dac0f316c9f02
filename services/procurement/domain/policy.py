"""An organisation's scheme of delegation and receipt tolerance."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from libs.common.errors import PermissionDenied, Violations
from libs.common.records import RecordInfo

BUDGET_HOLDER = "procurement.budget_holder"
SENIOR_BUDGET_HOLDER = "procurement.senior_budget_holder"
CHIEF_FINANCE_OFFICER = "procurement.chief_finance_officer"
APPROVER_ROLES = frozenset({BUDGET_HOLDER, SENIOR_BUDGET_HOLDER, CHIEF_FINANCE_OFFICER})


@dataclass(frozen=True)
class ApprovalBand:
    up_to: Decimal | None  # inclusive; None for the open-ended last band
    approver_roles: tuple[str, ...]


DEFAULT_BANDS = (
    ApprovalBand(Decimal(25_000), (BUDGET_HOLDER, SENIOR_BUDGET_HOLDER, CHIEF_FINANCE_OFFICER)),
    ApprovalBand(Decimal(250_000), (SENIOR_BUDGET_HOLDER, CHIEF_FINANCE_OFFICER)),
    ApprovalBand(None, (CHIEF_FINANCE_OFFICER,)),
)


@dataclass(frozen=True)
class ProcurementPolicy:
    organisation: str
    approval_bands: tuple[ApprovalBand, ...]
    receipt_tolerance_percent: int
    info: RecordInfo | None  # None while the organisation keeps the defaults

    @property
    def name(self) -> str:
        return f"organisations/{self.organisation}/procurementPolicy"

    @classmethod
    def default(cls, organisation: str) -> ProcurementPolicy:
        return cls(organisation, DEFAULT_BANDS, 0, None)

    def band_for(self, gross: Decimal) -> ApprovalBand:
        for band in self.approval_bands:
            if band.up_to is None or gross <= band.up_to:
                return band
        raise AssertionError("a checked scheme always ends with an open-ended band")

    def approver_role(self, gross: Decimal, roles: Iterable[str], resource: str) -> str:
        """The role under which a holder of `roles` may approve `gross`, or refuse."""
        band = self.band_for(gross)
        held = [r for r in band.approver_roles if r in set(roles)]
        if not held:
            limit = f"up to £{band.up_to:,.2f}" if band.up_to is not None else "above every other band"
            raise PermissionDenied(
                f"approving £{gross:,.2f} ({limit}) needs one of: {', '.join(band.approver_roles)}",
                reason="APPROVAL_LIMIT",
                metadata={
                    "resource": resource,
                    "gross_total": f"{gross:.2f}",
                    "approver_roles": ",".join(band.approver_roles),
                },
            )
        return held[0]


def check_policy(bands: tuple[ApprovalBand, ...], tolerance: int, known_roles: frozenset[str]) -> None:
    v = Violations()
    if not bands:
        v.add("procurement_policy.approval_bands", "name at least one band")
    previous: Decimal | None = Decimal(-1)
    for i, band in enumerate(bands):
        path = f"procurement_policy.approval_bands[{i}]"
        last = i == len(bands) - 1
        if band.up_to is None and not last:
            v.add(f"{path}.up_to", "only the last band may be open-ended")
        if last and band.up_to is not None:
            v.add(f"{path}.up_to", "the last band must be open-ended (leave up_to unset)")
        if band.up_to is not None and previous is not None and band.up_to <= previous:
            v.add(f"{path}.up_to", "bands must rise: each up_to above the one before")
        if band.up_to is not None and band.up_to < 0:
            v.add(f"{path}.up_to", "must not be negative")
        if not band.approver_roles:
            v.add(f"{path}.approver_roles", "name at least one role")
        for j, role in enumerate(band.approver_roles):
            if role not in known_roles:
                v.add(f"{path}.approver_roles[{j}]", f"{role!r} is not a role of this service")
        previous = band.up_to
    v.check(0 <= tolerance <= 100, "procurement_policy.receipt_tolerance_percent", "must be 0 to 100")
    v.raise_if_any()
