"""Roles of the HR service and the permissions they grant.

Person records are OFFICIAL-SENSITIVE: only the HR roles that need them read them. A line
manager decides leave and records sickness but reads no person record; a workforce
planner sees the establishment and the statistics, never an individual's record.
"""

from __future__ import annotations

from libs.common.operations import ROLES as OPERATIONS_ROLES

_ESTABLISHMENT_READ = frozenset(
    {
        "hr.posts.get",
        "hr.posts.list",
        "hr.orgunits.list",
        "hr.grades.get",
        "hr.grades.list",
        "hr.establishment.get",
    }
)

_ALL = frozenset(
    {
        "hr.people.*",
        "hr.grades.*",
        "hr.orgunits.*",
        "hr.posts.*",
        "hr.assignments.*",
        "hr.establishment.*",
        "hr.leave.*",
        "hr.sickness.*",
        "hr.training.*",
        "hr.vetting.*",
        "hr.statistics.*",
        "hr.headcount.*",
        "hr.payrecords.*",
        "hr.paygap.*",
        "hr.transfers.*",
    }
)

ROLES: dict[str, frozenset[str]] = {
    # A force's HR officer keeps its people's records and everything that hangs on them.
    "hr.officer": _ALL,
    # The shared-service unit's HR team does the same inside a member force, under an
    # agreement that provides hr.records (and hr.absence, hr.training, ... as agreed).
    "hr.shared_service": _ALL,
    # A line manager requests and decides leave, records sickness and checks training.
    "hr.line_manager": frozenset(
        {
            "hr.leave.*",
            "hr.sickness.*",
            "hr.training.list",
            *_ESTABLISHMENT_READ,
        }
    ),
    # A workforce planner files the Home Office return and publishes the pay gap.
    "hr.workforce_planner": frozenset(
        {"hr.statistics.*", "hr.headcount.*", "hr.paygap.*", *_ESTABLISHMENT_READ}
    ),
    # The finance service's own calls (allocating a unit's costs by its members' workforce,
    # on behalf of the unit): headcount and FTE, nothing about anyone.
    "service.finance": frozenset({"hr.headcount.get"}),
    # Shared-service operations staff and auditors: this service's outbox and audit log
    # (libs/common/operations.py).
    **OPERATIONS_ROLES,
}
