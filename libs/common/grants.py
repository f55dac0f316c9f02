"""Grants from the directory service over gRPC, cached for a few seconds per holder.

A service authenticates to the directory as itself (a short-lived service token), never
with its caller's token. Dates are evaluated on every call, so an agreement that ends at
midnight stops granting at midnight whatever the cache holds.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence

import grpc

from backoffice.directory.v1 import agreement_pb2, directory_service_pb2, directory_service_pb2_grpc
from libs.common.access import Grant, GrantKind
from libs.common.tracing import client_interceptors

# Per-call balancing over every address the target resolves to (a headless Service's pods).
CHANNEL_OPTIONS = [("grpc.lb_policy_name", "round_robin")]

_KINDS = {
    agreement_pb2.AGREEMENT_KIND_SERVICE_PROVISION: GrantKind.SERVICE_PROVISION,
    agreement_pb2.AGREEMENT_KIND_DATA_SHARING: GrantKind.DATA_SHARING,
}


def _date(value: object) -> dt.date | None:
    year, month, day = value.year, value.month, value.day  # type: ignore[attr-defined]
    return dt.date(year, month, day) if year else None


def grant_from_proto(g: agreement_pb2.Grant) -> Grant:
    start = _date(g.start_date)
    assert start is not None
    return Grant(
        organisation=g.organisation.removeprefix("organisations/"),
        function=g.function,
        kind=_KINDS[g.kind],
        start_date=start,
        end_date=_date(g.end_date) if g.HasField("end_date") else None,
        agreement=g.agreement,
    )


class DirectoryGrantSource:
    def __init__(
        self,
        target: str,
        token: Callable[[], str],
        *,
        ttl_seconds: float = 5.0,
        timeout_seconds: float = 5.0,
    ) -> None:
        self._target = target
        self._token = token
        self._ttl = ttl_seconds
        self._timeout = timeout_seconds
        self._channel: grpc.aio.Channel | None = None
        self._cache: dict[str, tuple[float, Sequence[Grant]]] = {}

    def _stub(self) -> directory_service_pb2_grpc.DirectoryServiceAsyncStub:
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(
                self._target, options=CHANNEL_OPTIONS, interceptors=client_interceptors()
            )
        # On an aio channel the generated stub is typed (in its .pyi) as the async stub.
        return directory_service_pb2_grpc.DirectoryServiceStub(self._channel)

    async def grants_for(self, holder: str) -> Sequence[Grant]:
        cached = self._cache.get(holder)
        if cached and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        try:
            response = await self._stub().ListGrants(
                directory_service_pb2.ListGrantsRequest(organisation=f"organisations/{holder}"),
                metadata=(("authorization", f"Bearer {self._token()}"),),
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as err:
            # The directory down decides no call: the caller gets UNAVAILABLE, to retry, and
            # not INTERNAL. (Imported here: peers takes its channel options from this module.)
            from libs.common.peers import peer_away

            if away := peer_away(err, "directory"):
                raise away from err
            if err.code() != grpc.StatusCode.NOT_FOUND:
                raise
            response = directory_service_pb2.ListGrantsResponse()  # not in the directory: holds nothing
        grants = [grant_from_proto(g) for g in response.grants]
        self._cache[holder] = (time.monotonic(), grants)
        return grants

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
