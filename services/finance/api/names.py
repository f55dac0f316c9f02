"""Resource names of finance: ledgers and the resources kept in a ledger."""

from __future__ import annotations

from dataclasses import dataclass

from libs.common.errors import InvalidArgument
from libs.common.names import RESOURCE_ID, valid_organisation_code


@dataclass(frozen=True)
class LedgerName:
    """`organisations/{code}/ledgers/{ledger}`; `ledgers/-` (every ledger) where allowed."""

    organisation: str
    ledger: str

    def __str__(self) -> str:
        return f"organisations/{self.organisation}/ledgers/{self.ledger}"

    @classmethod
    def parse(cls, value: str, field_path: str, *, allow_all: bool = False) -> LedgerName:
        parts = value.split("/")
        if len(parts) != 4 or parts[0] != "organisations" or parts[2] != "ledgers":
            raise InvalidArgument.single(field_path, "must look like organisations/{code}/ledgers/{ledger}")
        if not valid_organisation_code(parts[1]):
            raise InvalidArgument.single(field_path, f"{parts[1]!r} is not an organisation code")
        if not (RESOURCE_ID.match(parts[3]) or (allow_all and parts[3] == "-")):
            raise InvalidArgument.single(field_path, f"{parts[3]!r} is not a ledger id")
        return cls(parts[1], parts[3])


@dataclass(frozen=True)
class LedgerChildName:
    """`organisations/{code}/ledgers/{ledger}/{collection}/{id}`."""

    organisation: str
    ledger: str
    collection: str
    id: str

    def __str__(self) -> str:
        return f"organisations/{self.organisation}/ledgers/{self.ledger}/{self.collection}/{self.id}"

    @classmethod
    def parse(cls, value: str, collection: str, field_path: str = "name") -> LedgerChildName:
        parts = value.split("/")
        shape = f"organisations/{{code}}/ledgers/{{ledger}}/{collection}/{{id}}"
        if len(parts) != 6 or parts[0] != "organisations" or parts[2] != "ledgers" or parts[4] != collection:
            raise InvalidArgument.single(field_path, f"must look like {shape}")
        if not valid_organisation_code(parts[1]):
            raise InvalidArgument.single(field_path, f"{parts[1]!r} is not an organisation code")
        if not parts[3] or not parts[5]:
            raise InvalidArgument.single(field_path, f"must look like {shape}")
        return cls(parts[1], parts[3], collection, parts[5])
