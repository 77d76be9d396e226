"""Audience policy: exact URIs and the organization template, whole segments only."""

from __future__ import annotations

import pytest

from fastapi_isp_jwt.audience import AudiencePolicy
from fastapi_isp_jwt.errors import ConfigurationError, InvalidTokenError

ACME = "https://platform.dtc.istreamplanet.net/acme"
TEMPLATE = "https://platform.dtc.istreamplanet.net/{organization}"


def test_an_exact_audience_string_is_accepted_with_its_organization() -> None:
    match = AudiencePolicy([ACME]).match(ACME)
    assert match.audiences == (ACME,)
    assert match.organization == "acme"


def test_an_audience_array_containing_the_audience_is_accepted() -> None:
    match = AudiencePolicy([ACME]).match(["https://istreamplanet.auth0.com/userinfo", ACME])
    assert match.audiences == (ACME,)


def test_an_audience_outside_the_platform_has_no_organization() -> None:
    assert AudiencePolicy(["https://api.example"]).match("https://api.example").organization is None


@pytest.mark.parametrize(
    "aud",
    [
        "https://platform.dtc.istreamplanet.net/acme2",
        "https://platform.dtc.istreamplanet.net/acm",
        "https://platform.dtc.istreamplanet.net/acme/",
        "HTTPS://platform.dtc.istreamplanet.net/acme",
        "my-client-id",
    ],
)
def test_a_foreign_audience_is_refused(aud: str) -> None:
    with pytest.raises(InvalidTokenError, match="audience"):
        AudiencePolicy([ACME]).match(aud)


@pytest.mark.parametrize("aud", [None, "", [], 7, True, {"a": ACME}, [ACME, 7], [None]])
def test_a_missing_empty_or_mistyped_audience_is_refused(aud: object) -> None:
    with pytest.raises(InvalidTokenError, match="audience"):
        AudiencePolicy([ACME]).match(aud)


def test_the_template_accepts_any_organization_and_names_it() -> None:
    match = AudiencePolicy([TEMPLATE]).match("https://platform.dtc.istreamplanet.net/globex")
    assert match.organization == "globex"


@pytest.mark.parametrize(
    "aud",
    [
        "https://platform.dtc.istreamplanet.net/",
        "https://platform.dtc.istreamplanet.net/acme/extra",
        "https://platform.dtc.istreamplanet.net/acme?x=1",
        "https://platform.dtc.istreamplanet.net/acme#frag",
        "https://platform.dtc.istreamplanet.net/..",
        "https://platform.dtc.istreamplanet.net/%2e%2e",
        "https://platform.dtc.istreamplanet.net.evil.example/acme",
        "https://evil.example/https://platform.dtc.istreamplanet.net/acme",
        "http://platform.dtc.istreamplanet.net/acme",
    ],
)
def test_the_template_matches_whole_segments_only(aud: str) -> None:
    with pytest.raises(InvalidTokenError, match="audience"):
        AudiencePolicy([TEMPLATE]).match(aud)


def test_the_organization_allow_list_limits_the_template() -> None:
    policy = AudiencePolicy([TEMPLATE], organizations=["acme"])
    assert policy.match(ACME).organization == "acme"
    with pytest.raises(InvalidTokenError, match="audience"):
        policy.match("https://platform.dtc.istreamplanet.net/globex")


def test_a_token_naming_two_accepted_organizations_is_refused() -> None:
    with pytest.raises(InvalidTokenError, match="more than one organization"):
        AudiencePolicy([TEMPLATE]).match([ACME, "https://platform.dtc.istreamplanet.net/globex"])


def test_a_template_with_a_suffix_matches_the_middle_segment() -> None:
    policy = AudiencePolicy(["https://api.example/{organization}/v1"])
    assert policy.match("https://api.example/acme/v1").organization == "acme"
    with pytest.raises(InvalidTokenError):
        policy.match("https://api.example/acme/x/v1")


@pytest.mark.parametrize(
    "audience",
    [
        "https://api.example/org-{organization}",
        "https://api.example/{organization}{organization}",
        "https://api.example/{tenant}",
        "https://api.example/{organization}x",
    ],
)
def test_a_template_that_is_not_a_whole_segment_fails_at_configuration(audience: str) -> None:
    with pytest.raises(ConfigurationError):
        AudiencePolicy([audience])


def test_an_allow_list_without_a_template_fails_at_configuration() -> None:
    with pytest.raises(ConfigurationError, match="template"):
        AudiencePolicy([ACME], organizations=["acme"])
