"""Configuration fails at construction, with a message naming what is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from fastapi_isp_jwt.config import AuthSettings, options_from_env
from fastapi_isp_jwt.errors import ConfigurationError

ACME = "https://platform.dtc.istreamplanet.net/acme"


def settings(**options: Any) -> AuthSettings:
    base: dict[str, Any] = {
        "domain": "istreamplanet.auth0.com",
        "issuer": None,
        "audience": ACME,
        "jwks_url": None,
        "algorithms": ("RS256",),
        "leeway": 30.0,
        "jwks_ttl": 600.0,
        "jwks_cooldown": 30.0,
        "jwks_max_stale": 86400.0,
        "jwks_timeout": 5.0,
        "discovery": False,
        "organizations": None,
        "require_typ": False,
        "max_age": None,
        "required_claims": (),
        "allowed_client_ids": None,
        "max_token_bytes": 8192,
        "token_cache_size": 10_000,
    }
    base.update(options)
    return AuthSettings.create(**base)


def test_a_domain_becomes_the_https_issuer_with_a_trailing_slash() -> None:
    built = settings()
    assert built.issuers == ("https://istreamplanet.auth0.com/",)
    assert built.jwks_urls == {
        "https://istreamplanet.auth0.com/": "https://istreamplanet.auth0.com/.well-known/jwks.json"
    }


def test_an_explicit_issuer_is_kept_exactly() -> None:
    built = settings(domain=None, issuer="http://127.0.0.1:8765/")
    assert built.issuers == ("http://127.0.0.1:8765/",)
    assert (
        built.jwks_urls["http://127.0.0.1:8765/"] == "http://127.0.0.1:8765/.well-known/jwks.json"
    )


def test_several_issuers_are_each_trusted() -> None:
    built = settings(domain=["istreamplanet.auth0.com", "login.istreamplanet.com"])
    assert built.issuers == ("https://istreamplanet.auth0.com/", "https://login.istreamplanet.com/")


def test_discovery_leaves_the_jwks_url_to_be_discovered() -> None:
    assert settings(discovery=True).jwks_urls == {"https://istreamplanet.auth0.com/": None}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"domain": None}, "exactly one of domain= or issuer="),
        ({"issuer": "https://x/"}, "exactly one of domain= or issuer="),
        ({"domain": "https://istreamplanet.auth0.com"}, "bare host name"),
        ({"domain": "istreamplanet.auth0.com/path"}, "bare host name"),
        ({"domain": None, "issuer": "istreamplanet.auth0.com"}, "http"),
        ({"audience": ""}, "audience"),
        ({"audience": []}, "audience"),
        ({"algorithms": ("HS256",)}, "symmetric"),
        ({"algorithms": ("none",)}, "never accepted"),
        ({"algorithms": ("RS257",)}, "supported"),
        ({"algorithms": ()}, "at least one algorithm"),
        ({"leeway": -1}, "leeway"),
        ({"jwks_ttl": 0}, "jwks_ttl"),
        ({"jwks_timeout": float("nan")}, "jwks_timeout"),
        ({"max_token_bytes": 10}, "max_token_bytes"),
        ({"token_cache_size": -1}, "token_cache_size"),
        ({"jwks_url": "https://x/jwks", "discovery": True}, "not both"),
        ({"domain": ["a.example", "b.example"], "jwks_url": "https://x/jwks"}, "single issuer"),
    ],
)
def test_bad_configuration_fails_with_a_clear_message(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        settings(**options)


def test_configuration_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        settings(domain=None)


def test_environment_variables_become_options() -> None:
    options = options_from_env(
        {
            "ISP_JWT_DOMAIN": "istreamplanet.auth0.com",
            "ISP_JWT_AUDIENCE": f"{ACME}, https://platform.dtc.istreamplanet.net/globex",
            "ISP_JWT_LEEWAY": "10",
            "ISP_JWT_DISCOVERY": "true",
            "ISP_JWT_TOKEN_CACHE_SIZE": "0",
        }
    )
    assert options == {
        "domain": "istreamplanet.auth0.com",
        "audience": [ACME, "https://platform.dtc.istreamplanet.net/globex"],
        "leeway": 10.0,
        "discovery": True,
        "token_cache_size": 0,
    }


def test_an_unparseable_environment_variable_is_named() -> None:
    with pytest.raises(ConfigurationError, match="ISP_JWT_JWKS_TTL"):
        options_from_env({"ISP_JWT_JWKS_TTL": "ten minutes"})


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"algorithms": [["RS256"]]}, "algorithms"),
        ({"organizations": [["acme"]]}, "organizations"),
        ({"required_claims": [["org_id"]]}, "required_claims"),
        ({"allowed_client_ids": [1]}, "allowed_client_ids"),
        ({"audience": [ACME, 7]}, "audience"),
        ({"domain": {"istreamplanet.auth0.com": 1}}, "domain"),
        ({"jwks_url": 123}, "jwks_url"),
    ],
)
def test_options_of_the_wrong_type_fail_with_a_configuration_error(
    options: dict[str, Any], option: str
) -> None:
    with pytest.raises(ConfigurationError, match=option):
        settings(**options)
