"""AIP-158 pagination: page sizes and signed keyset page tokens."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libs.common.errors import InvalidArgument
from libs.common.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Pager, PageRequest

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=200)

SECRET = b"unit-test-secret"
PAGER = Pager(SECRET)
FP = Pager.fingerprint("organisations/E23000013", "sme = true")
KEY = ("E23000013", "acme-ltd")

keys = st.lists(st.one_of(st.text(), st.integers()), max_size=5).map(tuple)


def _field(err: pytest.ExceptionInfo[InvalidArgument]) -> str:
    [violation] = err.value.violations
    return violation.field


@pytest.mark.parametrize(
    ("asked", "given"),
    [
        (0, DEFAULT_PAGE_SIZE),
        (1, 1),
        (50, 50),
        (999, 999),
        (MAX_PAGE_SIZE, MAX_PAGE_SIZE),
        (MAX_PAGE_SIZE + 1, MAX_PAGE_SIZE),
        (10**9, MAX_PAGE_SIZE),
    ],
)
def test_page_size(asked: int, given: int) -> None:
    assert PAGER.request(asked, "", FP) == PageRequest(given, None, FP)


@pytest.mark.parametrize("size", [-1, -50, -(10**9)])
def test_negative_page_size(size: int) -> None:
    with pytest.raises(InvalidArgument) as err:
        PAGER.request(size, "", FP)
    assert _field(err) == "page_size"


def test_token_round_trip() -> None:
    token = PAGER.token_after(KEY, FP)
    assert PAGER.request(10, token, FP) == PageRequest(10, KEY, FP)


def test_the_next_token_is_of_the_last_row_of_a_page_read_with_one_more() -> None:
    page = PAGER.request(2, "", FP)
    rows = [("E23000013", "a"), ("E23000013", "b"), ("E23000013", "c")]
    token = PAGER.next_token(page, rows, lambda row: row)
    assert PAGER.request(2, token, FP) == PageRequest(2, ("E23000013", "b"), FP)
    assert PAGER.next_token(page, rows[:2], lambda row: row) == ""  # no row past the page: the last
    with pytest.raises(InvalidArgument):  # the token stays bound to its query
        PAGER.request(2, token, Pager.fingerprint("another query"))


def test_token_is_url_safe_and_unpadded() -> None:
    token = PAGER.token_after(KEY, FP)
    assert "=" not in token
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


@DETERMINISTIC
@given(keys, st.integers(min_value=0, max_value=2000))
def test_token_round_trip_property(key: tuple[str | int, ...], size: int) -> None:
    token = PAGER.token_after(key, FP)
    request = PAGER.request(size, token, FP)
    assert request.after == key
    assert request.size == min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def test_fingerprint_distinguishes_queries() -> None:
    assert Pager.fingerprint("organisations/E23000013", "") != Pager.fingerprint(
        "organisations/E23000014", ""
    )
    assert Pager.fingerprint("a", "b") == Pager.fingerprint("a", "b")
    assert Pager.fingerprint("a", "b") != Pager.fingerprint("ab")


def test_token_for_another_query_is_refused() -> None:
    token = PAGER.token_after(KEY, FP)
    other = Pager.fingerprint("organisations/E23000014", "sme = true")
    with pytest.raises(InvalidArgument) as err:
        PAGER.request(10, token, other)
    assert _field(err) == "page_token"
    assert "different query" in str(err.value)


def test_token_from_another_secret_is_refused() -> None:
    token = Pager(b"another-secret").token_after(KEY, FP)
    with pytest.raises(InvalidArgument) as err:
        PAGER.request(10, token, FP)
    assert _field(err) == "page_token"


def _flip(text: str, index: int) -> str:
    replacement = "B" if text[index] == "A" else "A"
    return text[:index] + replacement + text[index + 1 :]


@pytest.mark.parametrize("part", ["body", "signature"])
@pytest.mark.parametrize("where", ["start", "middle"])
def test_tampered_token_is_refused(part: str, where: str) -> None:
    body, signature = PAGER.token_after(KEY, FP).split(".")
    target = body if part == "body" else signature
    tampered = _flip(target, 0 if where == "start" else len(target) // 2)
    token = f"{tampered}.{signature}" if part == "body" else f"{body}.{tampered}"
    with pytest.raises(InvalidArgument) as err:
        PAGER.request(10, token, FP)
    assert _field(err) == "page_token"


def test_forged_body_with_old_signature_is_refused() -> None:
    _, signature = PAGER.token_after(KEY, FP).split(".")
    forged = (
        base64.urlsafe_b64encode(b'{"k":["E23000099","zzz"],"q":"' + FP.encode() + b'"}').decode().rstrip("=")
    )
    with pytest.raises(InvalidArgument):
        PAGER.request(10, f"{forged}.{signature}", FP)


@DETERMINISTIC
@given(st.data())
def test_any_single_character_change(data: st.DataObject) -> None:
    """Changing any one character of a token either is refused or, for the few spare
    bits at the end of the base64 body, decodes to the very same signed payload."""
    token = PAGER.token_after(KEY, FP)
    index = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    char = data.draw(st.sampled_from(alphabet).filter(lambda c: c != token[index]))
    changed = token[:index] + char + token[index + 1 :]
    body, signature = token.split(".")
    changed_body, dot, changed_signature = changed.partition(".")
    if dot and changed_signature == signature and _decoded(changed_body) == _decoded(body):
        assert PAGER.request(10, changed, FP).after == KEY
    else:
        with pytest.raises(InvalidArgument) as err:
            PAGER.request(10, changed, FP)
        assert _field(err) == "page_token"


def _decoded(body: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:
        return None


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        ".",
        "..",
        " ",
        "abc.def",
        "%%%.%%%",
        "eyJrIjpbXSwicSI6IiJ9",  # a body with no signature
        "eyJrIjpbXSwicSI6IiJ9.",
        "a.b.c",
        "A",
        "AAAAA.AAAA",
    ],
)
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        PAGER.request(10, token, FP)
    assert _field(err) == "page_token"


@DETERMINISTIC
@given(st.text(alphabet=st.characters(max_codepoint=127), min_size=1))
def test_ascii_garbage_is_refused(token: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        PAGER.request(10, token, FP)
    assert _field(err) == "page_token"


def test_non_ascii_body_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        PAGER.request(10, "é.abc", FP)


@pytest.mark.parametrize("token", ["abc.é", "abc.\u2603", "abcd.\x80"])
def test_non_ascii_signature_is_refused(token: str) -> None:
    with pytest.raises(InvalidArgument):
        PAGER.request(10, token, FP)
