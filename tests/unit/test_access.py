"""Roles, segregation of duties, and agreements opening other organisations."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

import pytest

from libs.common.access import (
    GRANTS_FUNCTION,
    NOTHING,
    AccessKind,
    AccessPolicy,
    AccessRule,
    Grant,
    GrantKind,
    RoleCatalogue,
    Scope,
    check_permission,
    check_segregation,
)
from libs.common.context import Principal, PrincipalKind
from libs.common.errors import PermissionDenied

TODAY = dt.date(2026, 3, 31)
HOME = "E23000013"  # the caller's force
PARTNER = "E23000014"
OTHER = "E23000015"
UNRELATED = "E23000016"

READ_SUPPLIERS = AccessRule("procurement.suppliers.list", "procurement.suppliers", AccessKind.READ)
WRITE_SUPPLIERS = AccessRule("procurement.suppliers.create", "procurement.suppliers", AccessKind.WRITE)


def user(org: str = HOME, *roles: str) -> Principal:
    return Principal(subject="alice", organisation=org, roles=frozenset(roles))


# --- RoleCatalogue --------------------------------------------------------------------


CATALOGUE = RoleCatalogue(
    {
        "procurement.buyer": ["procurement.suppliers.*", "procurement.orders.list"],
        "hr.viewer": ["hr.people.get"],
    },
    everyone=["reference.countries.list"],
)


@pytest.mark.parametrize(
    ("permission", "granted"),
    [
        ("procurement.suppliers.create", True),
        ("procurement.suppliers.list", True),
        ("procurement.suppliers.bank_details.update", True),
        ("procurement.orders.list", True),
        ("procurement.supplierszzz", False),
        ("procurement.supplierszzz.create", False),
        ("procurement.suppliers", False),
        ("procurement.orders.create", False),
        ("hr.people.get", False),
        ("reference.countries.list", True),  # everyone
    ],
)
def test_wildcard_and_exact_permissions(permission: str, granted: bool) -> None:
    assert CATALOGUE.grants(["procurement.buyer"], permission) is granted


def test_everyone_permissions_need_no_role() -> None:
    assert CATALOGUE.grants([], "reference.countries.list")
    assert not CATALOGUE.grants([], "procurement.suppliers.list")
    assert not CATALOGUE.grants(["no.such.role"], "procurement.suppliers.list")


def test_add_merges_roles_and_everyone() -> None:
    catalogue = RoleCatalogue({"a": ["x.read"]})
    catalogue.add({"a": ["x.write"], "b": ["y.*"]}, everyone=["z.list"])
    assert catalogue.roles == frozenset({"a", "b"})
    assert catalogue.grants(["a"], "x.read")
    assert catalogue.grants(["a"], "x.write")
    assert catalogue.grants(["b"], "y.anything")
    assert catalogue.grants([], "z.list")


def test_check_permission() -> None:
    check_permission(user(HOME, "procurement.buyer"), WRITE_SUPPLIERS, CATALOGUE)
    with pytest.raises(PermissionDenied) as err:
        check_permission(user(HOME, "hr.viewer"), WRITE_SUPPLIERS, CATALOGUE)
    assert err.value.reason == "MISSING_PERMISSION"
    assert err.value.metadata == {"permission": "procurement.suppliers.create"}


# --- segregation of duties --------------------------------------------------------------


@pytest.mark.parametrize(
    "roles",
    [
        ("platform.operator", "procurement.buyer"),
        ("platform.operator", "hr.viewer", "platform.auditor"),
        ("platform.operator", "platformx"),  # not in the platform. namespace
    ],
)
def test_operator_with_business_role_is_refused(roles: tuple[str, ...]) -> None:
    with pytest.raises(PermissionDenied) as err:
        check_segregation(user(HOME, *roles))
    assert err.value.reason == "SEGREGATION_OF_DUTIES"
    for role in roles:
        if not role.startswith("platform."):
            assert role in err.value.message


def test_segregation_applies_before_permission() -> None:
    with pytest.raises(PermissionDenied) as err:
        check_permission(user(HOME, "platform.operator", "procurement.buyer"), WRITE_SUPPLIERS, CATALOGUE)
    assert err.value.reason == "SEGREGATION_OF_DUTIES"


@pytest.mark.parametrize(
    "roles",
    [
        ("platform.operator",),
        ("platform.operator", "platform.auditor"),
        ("procurement.buyer", "hr.viewer"),  # no operator: business roles alone are fine
        (),
    ],
)
def test_segregation_allows(roles: tuple[str, ...]) -> None:
    check_segregation(user(HOME, *roles))


# --- AccessPolicy with agreements --------------------------------------------------------


class FakeGrants:
    """An in-memory GrantSource."""

    def __init__(self, grants: dict[str, list[Grant]]) -> None:
        self._grants = grants
        self.asked: list[str] = []

    async def grants_for(self, holder: str) -> Sequence[Grant]:
        self.asked.append(holder)
        return list(self._grants.get(holder, []))


def grant(
    organisation: str,
    function: str = "procurement.suppliers",
    kind: GrantKind = GrantKind.SERVICE_PROVISION,
    start: dt.date = TODAY - dt.timedelta(days=30),
    end: dt.date | None = None,
) -> Grant:
    return Grant(organisation, function, kind, start, end, agreement=f"agreements/{organisation}")


def policy(*grants: Grant, holder: str = HOME) -> AccessPolicy:
    return AccessPolicy(FakeGrants({holder: list(grants)}))


def scope_in(p: AccessPolicy, principal: Principal, rule: AccessRule, org: str) -> Scope:
    return asyncio.run(p.scope_in(principal, rule, org, TODAY))


def test_own_organisation() -> None:
    scope = scope_in(policy(), user(HOME), WRITE_SUPPLIERS, HOME)
    assert scope == Scope.of(HOME)
    assert scope.acting_for is None
    assert HOME in scope
    assert PARTNER not in scope


def test_service_provision_opens_the_organisation() -> None:
    p = policy(grant(PARTNER))
    for rule in (READ_SUPPLIERS, WRITE_SUPPLIERS):
        scope = scope_in(p, user(), rule, PARTNER)
        assert scope == Scope(frozenset({PARTNER}), acting_for=PARTNER)
        assert HOME not in scope


def test_grant_for_another_function_gives_nothing() -> None:
    p = policy(grant(PARTNER, function="hr.records"))
    assert scope_in(p, user(), READ_SUPPLIERS, PARTNER) is NOTHING


def test_grant_in_another_organisation_gives_nothing() -> None:
    p = policy(grant(OTHER))
    assert scope_in(p, user(), READ_SUPPLIERS, PARTNER) is NOTHING


def test_no_grants_gives_nothing() -> None:
    assert scope_in(policy(), user(), READ_SUPPLIERS, PARTNER) is NOTHING
    assert not NOTHING.organisations


def test_grants_of_another_holder_do_not_count() -> None:
    p = AccessPolicy(FakeGrants({OTHER: [grant(PARTNER)]}))
    assert scope_in(p, user(HOME), READ_SUPPLIERS, PARTNER) is NOTHING


def test_data_sharing_is_read_only() -> None:
    p = policy(grant(PARTNER, kind=GrantKind.DATA_SHARING))
    assert scope_in(p, user(), READ_SUPPLIERS, PARTNER) == Scope.of(PARTNER, acting_for=PARTNER)
    assert scope_in(p, user(), WRITE_SUPPLIERS, PARTNER) is NOTHING


@pytest.mark.parametrize(
    ("start", "end", "active"),
    [
        (TODAY + dt.timedelta(days=1), None, False),  # starts tomorrow
        (TODAY - dt.timedelta(days=30), TODAY - dt.timedelta(days=1), False),  # ended yesterday
        (TODAY, None, True),  # starts today
        (TODAY - dt.timedelta(days=30), TODAY, True),  # ends today (inclusive)
        (TODAY, TODAY, True),
    ],
)
def test_grant_dates(start: dt.date, end: dt.date | None, active: bool) -> None:
    p = policy(grant(PARTNER, start=start, end=end))
    scope = scope_in(p, user(), READ_SUPPLIERS, PARTNER)
    if active:
        assert scope == Scope.of(PARTNER, acting_for=PARTNER)
    else:
        assert scope is NOTHING


def test_a_service_acting_for_no_organisation_reads_grants_anywhere_and_nothing_else() -> None:
    service = Principal("procurement", "", frozenset({"procurement.commercial"}), PrincipalKind.SERVICE)
    grants = AccessRule("directory.grants.list", GRANTS_FUNCTION, AccessKind.READ)
    assert scope_in(policy(), service, grants, PARTNER) == Scope.of(PARTNER)
    assert scope_in(policy(grant(PARTNER)), service, WRITE_SUPPLIERS, PARTNER) is NOTHING
    assert scope_in(policy(), service, READ_SUPPLIERS, PARTNER) is NOTHING
    assert asyncio.run(policy().scope_everywhere(service, READ_SUPPLIERS, TODAY)) is NOTHING


def test_require_in_explains_refusal() -> None:
    p = policy(grant(PARTNER, kind=GrantKind.DATA_SHARING))
    with pytest.raises(PermissionDenied) as err:
        asyncio.run(p.require_in(user(), WRITE_SUPPLIERS, PARTNER, TODAY))
    assert err.value.reason == "NO_AGREEMENT"
    assert err.value.metadata == {"organisation": PARTNER, "function": "procurement.suppliers"}
    assert HOME in err.value.message
    assert PARTNER in err.value.message


def test_require_in_returns_the_scope() -> None:
    p = policy(grant(PARTNER))
    assert asyncio.run(p.require_in(user(), WRITE_SUPPLIERS, PARTNER, TODAY)) == Scope.of(
        PARTNER, acting_for=PARTNER
    )
    assert asyncio.run(p.require_in(user(), WRITE_SUPPLIERS, HOME, TODAY)) == Scope.of(HOME)


def test_scope_everywhere() -> None:
    p = policy(
        grant(PARTNER),
        grant(OTHER, kind=GrantKind.DATA_SHARING),
        grant(UNRELATED, function="hr.records"),
        grant("E23000017", start=TODAY + dt.timedelta(days=1)),
        grant("E23000018", end=TODAY - dt.timedelta(days=1)),
    )
    read = asyncio.run(p.scope_everywhere(user(), READ_SUPPLIERS, TODAY))
    assert read == Scope(frozenset({HOME, PARTNER, OTHER}))
    assert read.acting_for is None
    write = asyncio.run(p.scope_everywhere(user(), WRITE_SUPPLIERS, TODAY))
    assert write == Scope(frozenset({HOME, PARTNER}))
    hr = AccessRule("hr.people.list", "hr.records", AccessKind.READ)
    assert asyncio.run(p.scope_everywhere(user(), hr, TODAY)) == Scope(frozenset({HOME, UNRELATED}))


def test_scope_everywhere_without_grants_is_home_only() -> None:
    assert asyncio.run(policy().scope_everywhere(user(), READ_SUPPLIERS, TODAY)) == Scope.of(HOME)
