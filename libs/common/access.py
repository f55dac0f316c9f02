"""Authorisation: roles grant permissions; agreements open other organisations.

Every RPC declares an `AccessRule` (permission, function, read or write) in its proto.
A caller may act inside an organisation when its roles grant the permission and either it
belongs to that organisation, or its organisation holds a grant for the rule's function
there today: a service provision (read and write) or a data-sharing agreement (read only).
Platform operators hold no business roles: a principal with both is refused outright.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from libs.common.context import Principal, PrincipalKind
from libs.common.errors import PermissionDenied

OPERATOR_ROLE = "platform.operator"
# Roles an operator may hold beside OPERATOR_ROLE: none that touch business data.
_OPERATOR_SAFE_PREFIXES = ("platform.",)


class AccessKind(enum.Enum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class AccessRule:
    permission: str
    function: str
    kind: AccessKind


class GrantKind(enum.Enum):
    SERVICE_PROVISION = "service_provision"
    DATA_SHARING = "data_sharing"


@dataclass(frozen=True)
class Grant:
    """One active-or-future agreement function: `holder` may act in `organisation`."""

    organisation: str
    function: str
    kind: GrantKind
    start_date: dt.date
    end_date: dt.date | None
    agreement: str

    def active_on(self, day: dt.date) -> bool:
        return self.start_date <= day and (self.end_date is None or day <= self.end_date)

    def allows(self, kind: AccessKind) -> bool:
        return self.kind is GrantKind.SERVICE_PROVISION or kind is AccessKind.READ


class GrantSource(Protocol):
    """Where grants come from: the directory (over gRPC, cached) or its own tables."""

    async def grants_for(self, holder: str) -> Sequence[Grant]: ...


class RoleCatalogue:
    """Role name -> permissions. A permission ending in `.*` grants a whole prefix."""

    def __init__(
        self,
        roles: Mapping[str, Iterable[str]] | None = None,
        everyone: Iterable[str] = (),
    ) -> None:
        self._roles: dict[str, frozenset[str]] = {}
        # Permissions every authenticated principal holds (reading public reference data).
        self._everyone = frozenset(everyone)
        if roles:
            self.add(roles)

    def add(self, roles: Mapping[str, Iterable[str]], everyone: Iterable[str] = ()) -> None:
        for role, permissions in roles.items():
            self._roles[role] = self._roles.get(role, frozenset()) | frozenset(permissions)
        self._everyone |= frozenset(everyone)

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(self._roles)

    def grants(self, roles: Iterable[str], permission: str) -> bool:
        if permission in self._everyone:
            return True
        for role in roles:
            for granted in self._roles.get(role, ()):
                if granted == permission or (granted.endswith(".*") and permission.startswith(granted[:-1])):
                    return True
        return False


def check_segregation(principal: Principal) -> None:
    if OPERATOR_ROLE in principal.roles:
        business = sorted(r for r in principal.roles if not r.startswith(_OPERATOR_SAFE_PREFIXES))
        if business:
            raise PermissionDenied(
                "platform operators may not hold business roles "
                f"(this token also carries {', '.join(business)})",
                reason="SEGREGATION_OF_DUTIES",
            )


def check_permission(principal: Principal, rule: AccessRule, catalogue: RoleCatalogue) -> None:
    check_segregation(principal)
    if not catalogue.grants(principal.roles, rule.permission):
        raise PermissionDenied(
            f"your roles do not include the permission {rule.permission}",
            reason="MISSING_PERMISSION",
            metadata={"permission": rule.permission},
        )


@dataclass(frozen=True)
class Scope:
    """The organisations whose rows one call may touch; empty means none (fail closed)."""

    organisations: frozenset[str]
    acting_for: str | None = None

    @classmethod
    def of(cls, *codes: str, acting_for: str | None = None) -> Scope:
        return cls(frozenset(codes), acting_for)

    def __contains__(self, code: object) -> bool:
        return code in self.organisations


NOTHING = Scope(frozenset())


# The one function a service may use acting for no organisation: the directory's grants.
GRANTS_FUNCTION = "directory.grants"


class AccessPolicy:
    """Decides, per call, which organisations a principal may touch for a rule."""

    def __init__(self, grants: GrantSource) -> None:
        self._grants = grants

    async def scope_in(
        self, principal: Principal, rule: AccessRule, organisation: str, today: dt.date
    ) -> Scope:
        """The scope for acting inside one organisation: itself, or NOTHING."""
        if principal.organisation == organisation:
            return Scope.of(organisation)
        if not principal.organisation:
            # A service acting for no organisation reads who may act where (it must, to
            # decide any call), and nothing else: whatever roles its token carries, it
            # reaches no organisation's own data. Acting for one, it goes only where that one may.
            grants_reader = principal.kind is PrincipalKind.SERVICE and rule.function == GRANTS_FUNCTION
            return Scope.of(organisation) if grants_reader else NOTHING
        for grant in await self._grants.grants_for(principal.organisation):
            if (
                grant.organisation == organisation
                and grant.function == rule.function
                and grant.active_on(today)
                and grant.allows(rule.kind)
            ):
                return Scope.of(organisation, acting_for=organisation)
        return NOTHING

    async def scope_everywhere(self, principal: Principal, rule: AccessRule, today: dt.date) -> Scope:
        """The scope for `organisations/-`: the caller's own and every one opened to it."""
        if not principal.organisation:
            return NOTHING
        codes = {principal.organisation}
        for grant in await self._grants.grants_for(principal.organisation):
            if grant.function == rule.function and grant.active_on(today) and grant.allows(rule.kind):
                codes.add(grant.organisation)
        return Scope(frozenset(codes))

    async def require_in(
        self, principal: Principal, rule: AccessRule, organisation: str, today: dt.date
    ) -> Scope:
        """Like `scope_in`, but explains a refusal: for creating under an organisation,
        whose existence is public, PERMISSION_DENIED says why rather than NOT_FOUND."""
        scope = await self.scope_in(principal, rule, organisation, today)
        if scope is NOTHING:
            raise PermissionDenied(
                f"organisation {principal.organisation} has no agreement that lets it "
                f"{rule.kind.value} {rule.function} in organisation {organisation} today",
                reason="NO_AGREEMENT",
                metadata={"organisation": organisation, "function": rule.function},
            )
        return scope
