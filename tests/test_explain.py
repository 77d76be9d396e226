"""explain.py: hints for refusals that are usually configuration mistakes, and inspect's table."""

from __future__ import annotations

from typing import Any

import pytest

from fastapi_isp_jwt.explain import Comparison, compare, hints
from fastapi_isp_jwt.reasons import Reason
from fastapi_isp_jwt.settings import Settings

TENANT = "istreamplanet.auth0.com"
ISSUER = f"https://{TENANT}/"
API = "https://platform.dtc.istreamplanet.net/acme"
HEADER = {"alg": "RS256", "typ": "JWT", "kid": "key-1"}
SETTINGS = Settings(domain=TENANT, audience=API)


def access_claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "auth0|alice",
        "aud": [API, f"{ISSUER}userinfo"],
        "azp": "client-1",
        "scope": "openid streams:read",
        "exp": 2_000_000_000,
        "iat": 1_999_990_000,
    }
    claims.update(changes)
    return claims


def only_hint(
    reason: Reason,
    claims: dict[str, Any],
    settings: Settings = SETTINGS,
    header: dict[str, Any] = HEADER,
    required_scopes: tuple[str, ...] = (),
) -> str:
    (hint,) = hints(settings, header, claims, reason, required_scopes=required_scopes)
    return hint


# -- issuer ---------------------------------------------------------------------------------


def test_an_issuer_differing_only_by_its_trailing_slash_is_named() -> None:
    # An Auth0 issuer without its slash fails at startup; a custom domain's cannot be told.
    settings = Settings(issuer="https://login.istreamplanet.com", audience=API)
    claims = access_claims(iss="https://login.istreamplanet.com/")
    hint = only_hint(Reason.ISSUER, claims, settings)
    assert "only by a trailing slash" in hint


def test_a_custom_domain_token_for_a_tenant_domain_configuration_is_named() -> None:
    hint = only_hint(Reason.ISSUER, access_claims(iss="https://login.istreamplanet.com/"))
    assert "custom domain or tenant domain" in hint


def test_a_tenant_domain_token_for_a_custom_domain_configuration_is_named() -> None:
    settings = Settings(domain="login.istreamplanet.com", audience=API)
    hint = only_hint(Reason.ISSUER, access_claims(), settings)
    assert "custom domain or tenant domain" in hint


def test_a_token_from_another_auth0_tenant_is_named() -> None:
    hint = only_hint(Reason.ISSUER, access_claims(iss="https://istreamplanet-dev.auth0.com/"))
    assert "another Auth0 tenant" in hint


def test_another_host_with_a_token_for_another_api_gets_no_hint() -> None:
    claims = access_claims(iss="https://attacker.example/", aud="https://attacker.example/api")
    assert hints(SETTINGS, HEADER, claims, Reason.ISSUER) == ()


def test_another_path_gets_no_hint() -> None:
    claims = access_claims(iss="https://login.istreamplanet.com/tenant/")
    assert hints(SETTINGS, HEADER, claims, Reason.ISSUER) == ()


def test_an_issuer_hint_quotes_the_configuration_not_the_token() -> None:
    claims = access_claims(iss="https://login.istreamplanet.com/")
    hint = only_hint(Reason.ISSUER, claims)
    assert ISSUER in hint
    assert "login.istreamplanet.com" not in hint


# -- audience -------------------------------------------------------------------------------


def test_a_token_for_userinfo_only_was_requested_without_audience() -> None:
    hint = only_hint(Reason.AUDIENCE, access_claims(aud=f"{ISSUER}userinfo"))
    assert "without the audience parameter" in hint
    assert API in hint


def test_an_audience_differing_only_by_a_trailing_slash_is_named() -> None:
    hint = only_hint(Reason.AUDIENCE, access_claims(aud=API + "/"))
    assert "only by a trailing slash" in hint


def test_a_token_for_another_organization_is_named() -> None:
    claims = access_claims(aud="https://platform.dtc.istreamplanet.net/globex")
    assert "another organization" in only_hint(Reason.AUDIENCE, claims)


def test_an_organization_outside_the_allow_list_is_named_with_the_list() -> None:
    settings = Settings(
        domain=TENANT,
        audience="https://platform.dtc.istreamplanet.net/{organization}",
        organizations=["acme"],
    )
    claims = access_claims(aud="https://platform.dtc.istreamplanet.net/globex")
    hint = only_hint(Reason.AUDIENCE, claims, settings)
    assert "another organization" in hint
    assert "organizations= is acme" in hint


def test_an_unrelated_audience_gets_no_hint() -> None:
    claims = access_claims(aud="https://api.other.example/v1/things")
    assert hints(SETTINGS, HEADER, claims, Reason.AUDIENCE) == ()


# -- an ID token ----------------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["nonce", "at_hash", "c_hash"])
def test_a_token_with_id_token_claims_is_named_an_id_token(claim: str) -> None:
    claims = access_claims(**{claim: "x"})
    assert "ID token" in only_hint(Reason.AUDIENCE, claims)


def test_a_token_whose_audience_is_its_client_is_named_an_id_token() -> None:
    claims = access_claims(aud="client-1", azp="client-1")
    assert "ID token" in only_hint(Reason.AUDIENCE, claims)


def test_a_token_whose_audience_is_not_a_uri_is_named_an_id_token() -> None:
    claims = access_claims(aud="Xyz123clientid")
    assert "ID token" in only_hint(Reason.AUDIENCE, claims)


def test_an_id_token_refused_for_its_type_is_named_too() -> None:
    claims = access_claims(aud="client-1", nonce="n")
    assert "ID token" in only_hint(Reason.NOT_ACCESS_TOKEN, claims)


# -- algorithm ------------------------------------------------------------------------------


def test_a_token_signed_with_a_shared_secret_points_at_the_api_settings() -> None:
    hint = only_hint(Reason.ALGORITHM, access_claims(), header={**HEADER, "alg": "HS256"})
    assert "RS256" in hint


def test_a_supported_but_unconfigured_algorithm_names_the_configured_list() -> None:
    hint = only_hint(Reason.ALGORITHM, access_claims(), header={**HEADER, "alg": "ES256"})
    assert "algorithms= is RS256" in hint


# -- scopes ---------------------------------------------------------------------------------


def test_permissions_without_any_scope_claim_point_at_rbac() -> None:
    claims = access_claims(permissions=["streams:read"])
    del claims["scope"]
    hint = only_hint(Reason.SCOPE, claims, required_scopes=("streams:write",))
    assert "RBAC permissions but no scope" in hint


def test_a_permission_spelled_differently_from_the_required_scope_is_named() -> None:
    claims = access_claims(permissions=["Streams.Write"])
    hint = only_hint(Reason.SCOPE, claims, required_scopes=("streams:write",))
    assert "differently" in hint


def test_a_scope_refusal_without_permissions_gets_no_hint() -> None:
    claims = access_claims()
    assert hints(SETTINGS, HEADER, claims, Reason.SCOPE, required_scopes=("x:y",)) == ()


# -- reasons that are not configuration -------------------------------------------------------


@pytest.mark.parametrize("reason", [Reason.EXPIRED, Reason.SIGNATURE, Reason.UNKNOWN_KEY])
def test_a_routine_refusal_of_an_access_token_gets_no_hint(reason: Reason) -> None:
    assert hints(SETTINGS, HEADER, access_claims(), reason) == ()


def test_claims_of_any_shape_never_break_the_hints() -> None:
    odd = {"iss": 7, "aud": {"a": 1}, "permissions": "x", "scope": None}
    for reason in Reason:
        assert isinstance(hints(SETTINGS, {"alg": None}, odd, reason), tuple)


# -- compare ---------------------------------------------------------------------------------


def rows(**changes: Any) -> dict[str, Comparison]:
    return {row.check: row for row in compare(SETTINGS, HEADER, access_claims(**changes))}


def test_compare_covers_issuer_audience_algorithm_and_key_id() -> None:
    assert list(rows()) == ["issuer", "audience", "algorithm", "key id"]


def test_compare_shows_the_token_value_beside_the_configured_one() -> None:
    row = rows(iss="https://login.istreamplanet.com/")["issuer"]
    assert row == Comparison("issuer", "https://login.istreamplanet.com/", ISSUER, False)


def test_compare_marks_matching_checks() -> None:
    found = rows()
    assert (found["issuer"].matches, found["audience"].matches, found["algorithm"].matches) == (
        True,
        True,
        True,
    )


def test_compare_shows_a_list_audience_as_json() -> None:
    row = rows(aud=["https://a.example/x", "https://b.example/y"])["audience"]
    assert (row.token_value, row.matches) == (
        '["https://a.example/x", "https://b.example/y"]',
        False,
    )


def test_compare_says_when_a_claim_is_absent() -> None:
    claims = access_claims()
    del claims["iss"]
    (issuer_row, *_) = compare(SETTINGS, HEADER, claims)
    assert (issuer_row.token_value, issuer_row.matches) == ("(absent)", False)


def test_compare_cannot_judge_the_key_id_without_the_keys() -> None:
    row = rows()["key id"]
    assert (row.configured_value, row.matches) == (f"{ISSUER}.well-known/jwks.json", None)


def test_compare_judges_the_key_id_against_the_keys_known() -> None:
    (*_, row) = compare(SETTINGS, HEADER, access_claims(), known_kids={"key-2", "key-3"})
    assert row == Comparison("key id", "key-1", "key-2, key-3", False)


def test_compare_cuts_a_huge_value_short() -> None:
    row = rows(iss="x" * 10_000)["issuer"]
    assert len(row.token_value) < 300
