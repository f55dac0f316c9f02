"""Who is calling and for whom: set by the auth interceptor, read by servicers and logs."""

from __future__ import annotations

import contextvars
import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from libs.common.access import AccessRule


class PrincipalKind(enum.Enum):
    USER = "user"
    SERVICE = "service"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: its home organisation and roles, nothing more.

    A token never says which other organisations its holder may act for: that comes from
    the directory's agreements on each call.
    """

    subject: str
    organisation: str
    roles: frozenset[str]
    kind: PrincipalKind = PrincipalKind.USER

    @property
    def id(self) -> str:
        if self.kind is PrincipalKind.SERVICE:
            return f"service/{self.subject}"
        return f"{self.organisation}/{self.subject}"


@dataclass
class Call:
    """One RPC in flight. `acting_for` is set when the principal acts inside another
    organisation through an agreement, so that the audit log and the log line say so."""

    method: str
    request_id: str
    principal: Principal | None = None
    rule: AccessRule | None = None
    acting_for: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


_current: contextvars.ContextVar[Call | None] = contextvars.ContextVar("call", default=None)


def current_call() -> Call:
    call = _current.get()
    if call is None:
        raise RuntimeError("no call in progress: the auth interceptor did not run")
    return call


def current_call_or_none() -> Call | None:
    return _current.get()


def set_call(call: Call | None) -> contextvars.Token[Call | None]:
    return _current.set(call)


def reset_call(token: contextvars.Token[Call | None]) -> None:
    _current.reset(token)
