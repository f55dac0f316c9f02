"""AIP-158 pagination with keyset page tokens.

A token carries the sort key of the last row returned (so the next page is a keyset seek,
never an OFFSET scan) and a fingerprint of the query that made it; it is signed, so a
token edited by hand, or used with another parent or filter, is INVALID_ARGUMENT.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from libs.common.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

JsonKey = tuple[str | int, ...]
T = TypeVar("T")


class ListRequest(Protocol):
    """What every List request carries (AIP-132, AIP-158)."""

    parent: str
    page_size: int
    page_token: str


@dataclass(frozen=True)
class PageRequest:
    size: int
    after: JsonKey | None
    # Of the query the page belongs to: the next page's token carries it.
    fingerprint: str = ""


class Pager:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @staticmethod
    def fingerprint(*parts: object) -> str:
        return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:16]

    def _sign(self, payload: bytes) -> str:
        digest = hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def request(self, page_size: int, page_token: str, fingerprint: str) -> PageRequest:
        if page_size < 0:
            raise InvalidArgument.single("page_size", "must not be negative")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        if not page_token:
            return PageRequest(size, None, fingerprint)
        try:
            body, signature = page_token.split(".", 1)
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            if not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
                raise ValueError("bad signature")
            data: dict[str, Any] = json.loads(payload)
        except (ValueError, binascii.Error, UnicodeError) as err:
            raise InvalidArgument.single("page_token", "is not a page token this service issued") from err
        if data.get("q") != fingerprint:
            raise InvalidArgument.single(
                "page_token",
                "was issued for a different query; repeat the parent and filter of the call that returned it",
            )
        return PageRequest(size, tuple(data["k"]), fingerprint)

    def token_after(self, key: JsonKey, fingerprint: str) -> str:
        payload = json.dumps({"k": list(key), "q": fingerprint}, separators=(",", ":")).encode()
        body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{body}.{self._sign(payload)}"

    def next_token(self, page: PageRequest, found: Sequence[T], key: Callable[[T], JsonKey]) -> str:
        """The token of the page after `page`, whose rows were read with one more than it
        holds (`page.size + 1`) to learn whether there is one; "" on the last page."""
        if len(found) <= page.size:
            return ""
        return self.token_after(key(found[page.size - 1]), page.fingerprint)
