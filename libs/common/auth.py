"""Bearer JWTs: verification with pinned algorithms, and development tokens.

A token carries identity, home organisation and roles, and nothing more: `sub`, `org`,
`roles`, plus `iss`, `aud`, `exp`, `iat`. Services' own tokens carry `kind: service`.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterable
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from libs.common.config import Settings
from libs.common.context import Principal, PrincipalKind
from libs.common.errors import Unauthenticated
from libs.common.names import valid_organisation_code

# Verified tokens remembered per process (a few hundred bytes each).
_CACHE_SIZE = 10_000


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """The local development signing key, created (mode 0600) on first use."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key


class TokenIssuer:
    def __init__(self, key: Ed25519PrivateKey, issuer: str, audience: str) -> None:
        self._key = key
        self._issuer = issuer
        self._audience = audience

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenIssuer:
        key = load_or_create_signing_key(settings.signing_key_path())
        return cls(key, settings.auth.issuer, settings.auth.audience)

    def mint(
        self,
        subject: str,
        organisation: str,
        roles: Iterable[str],
        *,
        ttl: dt.timedelta = dt.timedelta(hours=1),
        kind: PrincipalKind = PrincipalKind.USER,
        now: dt.datetime | None = None,
    ) -> str:
        issued = now or dt.datetime.now(dt.UTC)
        claims: dict[str, object] = {
            "sub": subject,
            "org": organisation,
            "roles": sorted(set(roles)),
            "kind": kind.value,
            "iss": self._issuer,
            "aud": self._audience,
            "iat": int(issued.timestamp()),
            "exp": int((issued + ttl).timestamp()),
        }
        return jwt.encode(claims, self._key, algorithm="EdDSA")


class TokenVerifier:
    def __init__(
        self,
        public_keys: list[object],
        *,
        issuer: str,
        audience: str,
        algorithms: list[str],
        leeway_seconds: int = 30,
    ) -> None:
        if not public_keys:
            raise ValueError("no token verification keys are configured")
        if "none" in (a.lower() for a in algorithms):
            raise ValueError("the 'none' algorithm may never be accepted")
        if any(a.upper().startswith("HS") for a in algorithms):
            # Verification keys are public: an HMAC algorithm would let anyone who has
            # the public key sign tokens (algorithm confusion).
            raise ValueError("HMAC algorithms (HS256, ...) may not verify tokens; use EdDSA, ES256 or RS256")
        self._keys = public_keys
        self._issuer = issuer
        self._audience = audience
        self._algorithms = list(algorithms)
        self._leeway = leeway_seconds
        self._verified: dict[str, tuple[Principal, float]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        keys: list[object] = []
        for path in settings.auth.public_key_files:
            keys.append(serialization.load_pem_public_key(path.read_bytes()))
        if not keys:
            keys.append(load_or_create_signing_key(settings.signing_key_path()).public_key())
        return cls(
            keys,
            issuer=settings.auth.issuer,
            audience=settings.auth.audience,
            algorithms=settings.auth.algorithms,
            leeway_seconds=settings.auth.leeway_seconds,
        )

    def verify(self, token: str) -> Principal:
        """The token's principal. A token verified once is remembered until it expires: its
        signature cannot change, and verifying costs more than the rest of a small call."""
        cached = self._verified.get(token)
        if cached is not None:
            principal, expires = cached
            if time.time() < expires + self._leeway:
                return principal
            del self._verified[token]
        principal, expires = self._verify(token)
        if len(self._verified) >= _CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)))  # the oldest entry
        self._verified[token] = (principal, expires)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        claims: dict[str, object] | None = None
        last_error: Exception | None = None
        for key in self._keys:
            try:
                claims = jwt.decode(
                    token,
                    key,  # type: ignore[arg-type]
                    algorithms=self._algorithms,
                    audience=self._audience,
                    issuer=self._issuer,
                    leeway=self._leeway,
                    options={"require": ["exp", "iat", "iss", "aud", "sub"]},
                )
                break
            except (jwt.InvalidSignatureError, jwt.InvalidKeyError) as err:
                # Not this key (or a key of another type, kept during a rotation): try the next.
                last_error = err
            except jwt.ExpiredSignatureError as err:
                raise Unauthenticated("the token has expired", reason="TOKEN_EXPIRED") from err
            except jwt.PyJWTError as err:
                raise Unauthenticated(f"the token is not valid: {err}", reason="TOKEN_INVALID") from err
        if claims is None:
            raise Unauthenticated(
                "the token's signature does not match any trusted key", reason="TOKEN_INVALID"
            ) from last_error
        expires = claims["exp"]
        return _principal(claims), float(expires) if isinstance(expires, int | float) else 0.0


PRINCIPAL_ID_MAX = 200


def _principal(claims: dict[str, object]) -> Principal:
    kind_claim = claims.get("kind", "user")
    roles = claims.get("roles", [])
    organisation = claims.get("org", "")
    if kind_claim not in ("user", "service") or not isinstance(roles, list):
        raise Unauthenticated("the token's claims are malformed", reason="TOKEN_INVALID")
    kind = PrincipalKind(kind_claim)
    if kind is PrincipalKind.USER and not (
        isinstance(organisation, str) and valid_organisation_code(organisation)
    ):
        raise Unauthenticated("the token names no valid home organisation", reason="TOKEN_INVALID")
    principal = Principal(
        subject=str(claims["sub"]),
        organisation=str(organisation or ""),
        roles=frozenset(str(r) for r in roles),
        kind=kind,
    )
    # Every write records the principal (audit, idempotency, the record's creator) in a
    # column of 200 characters: refused here, not as a failed write on PostgreSQL.
    if not principal.subject.strip() or len(principal.id) > PRINCIPAL_ID_MAX:
        raise Unauthenticated(
            f"the token's subject is empty, or too long for a principal ({PRINCIPAL_ID_MAX} characters with "
            "the organisation)",
            reason="TOKEN_INVALID",
        )
    return principal
