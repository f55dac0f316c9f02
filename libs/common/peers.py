"""How one service calls the others: where they are, and the credentials it presents.

A service calls another as itself (a service token carrying only its `service.{name}`
role) and on behalf of the organisation whose request started the work: the token names
that organisation, so the receiving service scopes the call to it and its agreements,
never to the whole suite.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence

import grpc

from libs.common.auth import TokenIssuer
from libs.common.context import PrincipalKind
from libs.common.errors import Unavailable
from libs.common.grants import CHANNEL_OPTIONS
from libs.common.tracing import client_interceptors

# A peer that restarts (a pod replaced) is reconnected to within about two seconds, not
# gRPC's default of up to two minutes of backoff.
PEER_CHANNEL_OPTIONS = [
    *CHANNEL_OPTIONS,
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]

_TOKEN_TTL = dt.timedelta(minutes=10)
_REMINT_AFTER_SECONDS = 300.0


def service_role(name: str) -> str:
    """The least-privilege role a service's own calls to the others carry: each receiving
    service grants `service.{caller}` only the permissions that caller needs."""
    return f"service.{name}"


class ServiceTokens:
    """Short-lived tokens a service presents to the others, one per organisation it acts
    for (the empty organisation: for no one, as the directory's grants reader does),
    re-minted before expiry."""

    def __init__(self, issuer: TokenIssuer, subject: str, roles: Sequence[str]) -> None:
        self._issuer = issuer
        self._subject = subject
        self._roles = tuple(roles)
        self._minted: dict[str, tuple[str, float]] = {}

    def __call__(self, on_behalf_of: str = "") -> str:
        token, expires = self._minted.get(on_behalf_of, ("", 0.0))
        if time.monotonic() > expires:
            token = self._issuer.mint(
                self._subject, on_behalf_of, self._roles, ttl=_TOKEN_TTL, kind=PrincipalKind.SERVICE
            )
            self._minted[on_behalf_of] = (token, time.monotonic() + _REMINT_AFTER_SECONDS)
        return token


class PeersUnavailable(RuntimeError):
    """This process was not wired to the other services (a service run on its own)."""


class Peers:
    """Channels to the other services and this service's credentials for them."""

    def __init__(self) -> None:
        self._resolve: Callable[[str], str] | None = None
        self._tokens: Callable[[str], str] | None = None
        self._channels: dict[str, grpc.aio.Channel] = {}

    def configure(self, resolve: Callable[[str], str], tokens: Callable[[str], str]) -> None:
        """`resolve` maps a service name to host:port; `tokens` an organisation to a token."""
        self._resolve = resolve
        self._tokens = tokens

    @property
    def configured(self) -> bool:
        return self._resolve is not None and self._tokens is not None

    def channel(self, service: str) -> grpc.aio.Channel:
        if self._resolve is None:
            raise PeersUnavailable(f"this process does not know where {service} is")
        target = self._resolve(service)
        channel = self._channels.get(target)
        if channel is None:
            channel = grpc.aio.insecure_channel(
                target, options=PEER_CHANNEL_OPTIONS, interceptors=client_interceptors()
            )
            self._channels[target] = channel
        return channel

    def metadata(self, on_behalf_of: str) -> tuple[tuple[str, str], ...]:
        if self._tokens is None:
            raise PeersUnavailable("this process has no credentials for the other services")
        return (("authorization", f"Bearer {self._tokens(on_behalf_of)}"),)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()


# What a peer's answer means for the caller's own call: a peer that is away is the caller's
# UNAVAILABLE (retry later), not an INTERNAL error.
_AWAY = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def peer_away(err: grpc.aio.AioRpcError, service: str) -> Unavailable | None:
    """The error to report when `service` did not answer; None when it did answer."""
    if err.code() in _AWAY:
        return Unavailable(
            f"the {service} service does not answer ({err.code().name}); retry later",
            metadata={"service": service},
        )
    return None
