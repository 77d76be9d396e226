"""Claim rules on a verified payload: times with leeway, shapes, and policy options."""

from __future__ import annotations

from typing import Any

import pytest

from fastapi_isp_jwt.claims import ClaimRules, check_claims
from fastapi_isp_jwt.errors import InvalidTokenError

NOW = 1_800_000_000.0
RULES = ClaimRules(leeway=30)


def payload(**claims: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sub": "auth0|u", "iat": NOW - 10, "exp": NOW + 600}
    base.update(claims)
    return {k: v for k, v in base.items() if v is not ...}


def test_a_current_token_passes_and_is_valid_until_expiry_plus_leeway() -> None:
    assert check_claims(payload(), RULES, NOW) == NOW + 600 + 30


def test_a_token_without_exp_is_refused() -> None:
    with pytest.raises(InvalidTokenError, match="no expiry"):
        check_claims(payload(exp=...), RULES, NOW)


@pytest.mark.parametrize("value", [True, False, "1900000000", None, [1], {"t": 1}])
def test_an_exp_that_is_not_a_json_number_is_refused(value: object) -> None:
    with pytest.raises(InvalidTokenError, match="exp claim is not a number"):
        check_claims(payload(exp=value), RULES, NOW)


def test_an_expired_token_within_the_leeway_is_accepted() -> None:
    check_claims(payload(exp=NOW - 29), RULES, NOW)


def test_a_token_expired_beyond_the_leeway_is_refused() -> None:
    with pytest.raises(InvalidTokenError, match="expired"):
        check_claims(payload(exp=NOW - 30), RULES, NOW)


def test_a_token_not_valid_yet_beyond_the_leeway_is_refused() -> None:
    with pytest.raises(InvalidTokenError, match="not valid yet"):
        check_claims(payload(nbf=NOW + 31), RULES, NOW)


def test_a_token_not_valid_yet_within_the_leeway_is_accepted() -> None:
    check_claims(payload(nbf=NOW + 29), RULES, NOW)


def test_a_token_issued_in_the_future_is_refused() -> None:
    with pytest.raises(InvalidTokenError, match="issued in the future"):
        check_claims(payload(iat=NOW + 31), RULES, NOW)


@pytest.mark.parametrize("name", ["nbf", "iat"])
@pytest.mark.parametrize("value", [True, "0", None, float("inf")])
def test_nbf_and_iat_must_be_numbers(name: str, value: object) -> None:
    with pytest.raises(InvalidTokenError, match=f"{name} claim is not a number"):
        check_claims(payload(**{name: value}), RULES, NOW)


def test_max_age_refuses_tokens_issued_too_long_ago() -> None:
    rules = ClaimRules(leeway=0, max_age=300)
    check_claims(payload(iat=NOW - 299), rules, NOW)
    with pytest.raises(InvalidTokenError, match="too old"):
        check_claims(payload(iat=NOW - 301), rules, NOW)


def test_max_age_requires_iat() -> None:
    with pytest.raises(InvalidTokenError, match="no issue time"):
        check_claims(payload(iat=...), ClaimRules(leeway=0, max_age=300), NOW)


def test_max_age_shortens_the_validity_deadline() -> None:
    assert check_claims(payload(iat=NOW - 100), ClaimRules(leeway=0, max_age=300), NOW) == NOW + 200


@pytest.mark.parametrize("sub", [..., None, 1, ["a"]])
def test_a_token_without_a_string_subject_is_refused(sub: object) -> None:
    with pytest.raises(InvalidTokenError, match="subject"):
        check_claims(payload(sub=sub), RULES, NOW)


@pytest.mark.parametrize("name", ["scope", "azp", "client_id", "gty"])
def test_string_claims_of_another_type_are_refused(name: str) -> None:
    with pytest.raises(InvalidTokenError, match=f"{name} claim is malformed"):
        check_claims(payload(**{name: ["x"]}), RULES, NOW)


@pytest.mark.parametrize("permissions", ["read", ["read", 1], {"read": True}])
def test_permissions_must_be_an_array_of_strings(permissions: object) -> None:
    with pytest.raises(InvalidTokenError, match="permissions"):
        check_claims(payload(permissions=permissions), RULES, NOW)


def test_required_claims_must_be_present() -> None:
    rules = ClaimRules(leeway=0, required_claims=frozenset({"org_id"}))
    check_claims(payload(org_id="o"), rules, NOW)
    with pytest.raises(InvalidTokenError, match="required claim"):
        check_claims(payload(), rules, NOW)


def test_the_client_allow_list_reads_azp_then_client_id() -> None:
    rules = ClaimRules(leeway=0, allowed_client_ids=frozenset({"good"}))
    check_claims(payload(azp="good"), rules, NOW)
    check_claims(payload(client_id="good"), rules, NOW)
    with pytest.raises(InvalidTokenError, match="client"):
        check_claims(payload(azp="bad"), rules, NOW)
    with pytest.raises(InvalidTokenError, match="client"):
        check_claims(payload(), rules, NOW)
