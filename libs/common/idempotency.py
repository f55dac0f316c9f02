"""AIP-155 request ids: a retry returns the first response, in the same transaction as
the change it made, so a crash between the two cannot happen."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from typing import Any

from google.protobuf.message import Message
from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.orm import Session

from libs.common.errors import AlreadyExists, InvalidArgument
from libs.common.kernel_tables import KernelTables

MAX_REQUEST_ID_LENGTH = 100


def request_hash(method: str, request: Message) -> str:
    copy = type(request)()
    copy.CopyFrom(request)
    if "request_id" in copy.DESCRIPTOR.fields_by_name:
        copy.ClearField("request_id")
    digest = hashlib.sha256(method.encode())
    digest.update(copy.SerializeToString(deterministic=True))
    return digest.hexdigest()


def check_request_id(request_id: str) -> None:
    if len(request_id) > MAX_REQUEST_ID_LENGTH or not request_id.isprintable():
        raise InvalidArgument.single(
            "request_id", f"must be at most {MAX_REQUEST_ID_LENGTH} printable characters (a UUID)"
        )


@functools.cache
def _lookup(table: Table) -> Any:
    return select(table.c.method, table.c.principal, table.c.request_hash, table.c.response).where(
        table.c.organisation_code == bindparam("org"), table.c.request_id == bindparam("request_id")
    )


class IdempotencyStore:
    def __init__(self, session: Session, tables: KernelTables) -> None:
        self._session = session
        self._table = tables.idempotency_keys

    def replay(
        self, organisation: str, request_id: str, method: str, fingerprint: str, principal: str
    ) -> bytes | None:
        """The stored response of an earlier request with this id, if any."""
        row = self._session.execute(
            _lookup(self._table), {"org": organisation, "request_id": request_id}
        ).first()
        if row is None:
            return None
        # Only its own caller gets a response back: another principal of the organisation
        # may not be allowed to see what it says, nor to have made that change.
        if row.principal != principal:
            raise AlreadyExists(
                f"request_id {request_id} was already used by another caller; "
                "use a new request_id for a new request",
                reason="REQUEST_ID_REUSED",
                metadata={"request_id": request_id},
            )
        if row.method != method or row.request_hash != fingerprint:
            raise AlreadyExists(
                f"request_id {request_id} was already used for a different request; "
                "use a new request_id for a new request",
                reason="REQUEST_ID_REUSED",
                metadata={"request_id": request_id},
            )
        response: bytes = row.response
        return response

    def remember(
        self,
        *,
        organisation: str,
        request_id: str,
        method: str,
        principal: str,
        fingerprint: str,
        response: bytes,
    ) -> None:
        self._session.execute(
            _insert(self._table),
            {
                "organisation_code": organisation,
                "request_id": request_id,
                "method": method,
                "principal": principal,
                "request_hash": fingerprint,
                "response": response,
                "created_at": dt.datetime.now(dt.UTC),
            },
        )


@functools.cache
def _insert(table: Table) -> Any:
    return insert(table)
