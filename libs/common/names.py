"""Resource names (AIP-122) and organisation codes."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

from libs.common.errors import InvalidArgument

# GSS codes of the bodies the back office serves, plus the project-local `X` codes given to
# bodies that have none (British Transport Police, shared-service units, ...).
ORGANISATION_CODE = re.compile(r"^(?:E23|W15|E06|E07|E08|E09|W06|E31|E10|E11|E47|W07)\d{6}\Z|^X\d{8}\Z")
RESOURCE_ID = re.compile(r"^[a-z][a-z0-9-]{2,62}\Z")
ALL_ORGANISATIONS = "-"


def new_id(prefix: str) -> str:
    """Ids that sort by creation time (milliseconds, then randomness), so keyset pages
    list resources oldest first."""
    return f"{prefix}-{int(time.time() * 1000):012x}{secrets.token_hex(4)}"


def valid_organisation_code(code: str) -> bool:
    return bool(ORGANISATION_CODE.match(code))


@dataclass(frozen=True)
class OrganisationName:
    """`organisations/{code}`; `organisations/-` (all) only where a List allows it."""

    code: str

    def __str__(self) -> str:
        return f"organisations/{self.code}"

    @property
    def is_wildcard(self) -> bool:
        return self.code == ALL_ORGANISATIONS

    @classmethod
    def parse(
        cls, value: str, field_path: str = "parent", *, allow_wildcard: bool = False
    ) -> OrganisationName:
        parts = value.split("/")
        if len(parts) != 2 or parts[0] != "organisations":
            raise InvalidArgument.single(field_path, "must look like organisations/{code}")
        code = parts[1]
        if code == ALL_ORGANISATIONS and allow_wildcard:
            return cls(code)
        if not valid_organisation_code(code):
            raise InvalidArgument.single(
                field_path,
                f"{code!r} is not an organisation code (a GSS code such as E23000013, "
                "or a project-local X code)",
            )
        return cls(code)


@dataclass(frozen=True)
class ChildName:
    """`organisations/{code}/{collection}/{id}`: a resource owned by one organisation."""

    organisation: str
    collection: str
    id: str

    def __str__(self) -> str:
        return f"organisations/{self.organisation}/{self.collection}/{self.id}"

    @property
    def parent(self) -> OrganisationName:
        return OrganisationName(self.organisation)

    @classmethod
    def parse(cls, value: str, collection: str, field_path: str = "name") -> ChildName:
        if problem := cls.problem(value, collection):
            raise InvalidArgument.single(field_path, problem)
        parts = value.split("/")
        return cls(parts[1], collection, parts[3])

    @staticmethod
    def problem(value: str, collection: str, *, strict_id: bool = False) -> str | None:
        """What is wrong with `value` as such a name, or None. `strict_id`: the id must be
        one this project gives (RESOURCE_ID), as a reference to another service's resource
        is compared as written."""
        parts = value.split("/")
        shape = f"organisations/{{code}}/{collection}/{{id}}"
        if len(parts) != 4 or parts[0] != "organisations" or parts[2] != collection or not parts[3]:
            return f"must look like {shape}"
        if not valid_organisation_code(parts[1]):
            return f"{parts[1]!r} is not an organisation code"
        if strict_id and not RESOURCE_ID.match(parts[3]):
            return f"must look like {shape}, the id 3 to 63 lower-case letters, digits and hyphens"
        return None


def check_resource_id(value: str, field_path: str) -> None:
    if not RESOURCE_ID.match(value):
        raise InvalidArgument.single(
            field_path,
            "must be 3 to 63 lower-case letters, digits and hyphens, starting with a letter",
        )
