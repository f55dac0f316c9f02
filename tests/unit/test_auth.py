"""Bearer JWTs: Ed25519 signatures, pinned algorithms, claims."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from libs.common.auth import TokenIssuer, TokenVerifier
from libs.common.context import Principal, PrincipalKind
from libs.common.errors import Unauthenticated

ISSUER = "backoffice-test"
AUDIENCE = "backoffice"
ORG = "E23000013"
KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key()
OTHER_KEY = Ed25519PrivateKey.generate()


def verifier(*keys: object) -> TokenVerifier:
    return TokenVerifier(list(keys or (PUBLIC,)), issuer=ISSUER, audience=AUDIENCE, algorithms=["EdDSA"])


def issuer(key: Ed25519PrivateKey = KEY, iss: str = ISSUER, aud: str = AUDIENCE) -> TokenIssuer:
    return TokenIssuer(key, iss, aud)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _claims(**overrides: object) -> dict[str, object]:
    now = int(dt.datetime.now(dt.UTC).timestamp())
    claims: dict[str, object] = {
        "sub": "alice",
        "org": ORG,
        "roles": ["procurement.buyer"],
        "kind": "user",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return claims


def _refused(token: str, reason: str = "TOKEN_INVALID", v: TokenVerifier | None = None) -> str:
    with pytest.raises(Unauthenticated) as err:
        (v or verifier()).verify(token)
    assert err.value.reason == reason
    assert err.value.code == "UNAUTHENTICATED"
    return err.value.message


def test_good_token() -> None:
    token = issuer().mint("alice", ORG, ["procurement.buyer", "hr.viewer", "hr.viewer"])
    assert verifier().verify(token) == Principal(
        subject="alice",
        organisation=ORG,
        roles=frozenset({"procurement.buyer", "hr.viewer"}),
        kind=PrincipalKind.USER,
    )


def test_service_token_needs_no_organisation() -> None:
    token = issuer().mint("procurement", "", [], kind=PrincipalKind.SERVICE)
    principal = verifier().verify(token)
    assert principal.kind is PrincipalKind.SERVICE
    assert principal.id == "service/procurement"


def test_second_trusted_key_is_tried() -> None:
    token = issuer(OTHER_KEY).mint("alice", ORG, [])
    assert verifier(PUBLIC, OTHER_KEY.public_key()).verify(token).subject == "alice"


def test_expired_token() -> None:
    token = issuer().mint(
        "alice",
        ORG,
        [],
        ttl=dt.timedelta(minutes=5),
        now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
    )
    _refused(token, "TOKEN_EXPIRED")


def test_expiry_leeway() -> None:
    # Expired 10 s ago: inside the 30 s leeway.
    token = issuer().mint(
        "alice",
        ORG,
        [],
        ttl=dt.timedelta(minutes=5),
        now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5, seconds=10),
    )
    assert verifier().verify(token).subject == "alice"


def test_wrong_audience() -> None:
    _refused(issuer(aud="someone-else").mint("alice", ORG, []))


def test_wrong_issuer() -> None:
    _refused(issuer(iss="evil-idp").mint("alice", ORG, []))


def test_token_signed_by_another_key() -> None:
    message = _refused(issuer(OTHER_KEY).mint("alice", ORG, []))
    assert "signature" in message


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud", "sub"])
def test_required_claims(claim: str) -> None:
    claims = _claims()
    del claims[claim]
    _refused(jwt.encode(claims, KEY, algorithm="EdDSA"))


def test_hs256_with_public_key_as_secret_is_refused() -> None:
    raw = PUBLIC.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    token = jwt.encode(_claims(), raw, algorithm="HS256")
    _refused(token)


def test_hs256_with_public_pem_as_secret_is_refused() -> None:
    # PyJWT itself refuses a PEM key as an HMAC secret, so the attack token is made by hand.
    pem = PUBLIC.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = (
        _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + _b64(json.dumps(_claims()).encode())
    )
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    _refused(f"{signing_input}.{_b64(signature)}")


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_unsigned_token_is_refused(alg: str) -> None:
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    _refused(f"{header}.{payload}.")


def test_signature_stripped_from_good_token_is_refused() -> None:
    header, payload, _ = issuer().mint("alice", ORG, []).split(".")
    _refused(f"{header}.{payload}.")


def test_payload_swapped_under_good_signature_is_refused() -> None:
    header, _, signature = issuer().mint("alice", ORG, []).split(".")
    payload = _b64(json.dumps(_claims(roles=["platform.operator"])).encode())
    _refused(f"{header}.{payload}.{signature}")


@pytest.mark.parametrize("org", ["", "E23", "E2300001", "Z23000013", "e23000013", "E23000013 "])
def test_user_token_with_invalid_organisation(org: str) -> None:
    message = _refused(issuer().mint("alice", org, []))
    assert "organisation" in message


def test_user_token_without_org_claim() -> None:
    claims = _claims()
    del claims["org"]
    _refused(jwt.encode(claims, KEY, algorithm="EdDSA"))


@pytest.mark.parametrize(
    "overrides",
    [{"kind": "admin"}, {"roles": "procurement.buyer"}, {"org": 23000013}],
)
def test_malformed_claims(overrides: dict[str, object]) -> None:
    _refused(jwt.encode(_claims(**overrides), KEY, algorithm="EdDSA"))


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "a.b"])
def test_garbage_token(token: str) -> None:
    _refused(token)


@pytest.mark.parametrize("algorithms", [["none"], ["EdDSA", "none"], ["NONE"], ["None"]])
def test_verifier_refuses_none_algorithm(algorithms: list[str]) -> None:
    with pytest.raises(ValueError, match="none"):
        TokenVerifier([PUBLIC], issuer=ISSUER, audience=AUDIENCE, algorithms=algorithms)


def test_verifier_needs_a_key() -> None:
    with pytest.raises(ValueError, match="keys"):
        TokenVerifier([], issuer=ISSUER, audience=AUDIENCE, algorithms=["EdDSA"])


def test_minted_claims() -> None:
    now = dt.datetime(2026, 3, 31, 12, 0, tzinfo=dt.UTC)
    token = issuer().mint("alice", ORG, ["b", "a", "b"], ttl=dt.timedelta(minutes=10), now=now)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims == {
        "sub": "alice",
        "org": ORG,
        "roles": ["a", "b"],
        "kind": "user",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + 600,
    }
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"


def test_hmac_algorithms_cannot_be_configured() -> None:
    key = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(ValueError, match="HMAC"):
        TokenVerifier([key], issuer="i", audience="a", algorithms=["EdDSA", "HS256"])


def test_a_subject_too_long_for_the_principal_columns_is_refused_not_a_failed_write() -> None:
    assert verifier().verify(issuer().mint("s" * 190, ORG, [])).id == f"{ORG}/{'s' * 190}"
    assert "too long" in _refused(issuer().mint("s" * 191, ORG, []))
    assert "empty" in _refused(issuer().mint(" ", ORG, []))


def test_a_key_of_another_type_kept_during_a_rotation_does_not_refuse_a_good_token() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    old = ec.generate_private_key(ec.SECP256R1())
    both = TokenVerifier(
        [old.public_key(), PUBLIC], issuer=ISSUER, audience=AUDIENCE, algorithms=["ES256", "EdDSA"]
    )
    assert both.verify(issuer().mint("alice", ORG, [])).subject == "alice"
    assert both.verify(jwt.encode(_claims(sub="bob"), old, algorithm="ES256")).subject == "bob"
    _refused(issuer(OTHER_KEY).mint("eve", ORG, []), v=both)
