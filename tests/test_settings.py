"""Settings: one options model, validated in one place, with errors naming the option set."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from fastapi_isp_jwt import JWTAuth, Settings
from fastapi_isp_jwt.errors import ConfigurationError
from fastapi_isp_jwt.settings import option_fields, options_from_env

ACME = "https://platform.dtc.istreamplanet.net/acme"


def settings(**options: Any) -> Settings:
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
    return Settings(**base)


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


NUMBER_OPTIONS = [
    "leeway",
    "jwks_ttl",
    "jwks_cooldown",
    "jwks_max_stale",
    "jwks_timeout",
    "max_age",
    "dpop_iat_window",
]


@pytest.mark.parametrize("option", NUMBER_OPTIONS)
def test_a_number_option_too_large_for_a_float_fails_with_a_configuration_error(
    option: str,
) -> None:
    with pytest.raises(ConfigurationError, match=option):
        settings(**{option: 10**400})


@pytest.mark.parametrize("option", NUMBER_OPTIONS)
def test_a_number_option_with_too_many_digits_to_print_fails_with_a_configuration_error(
    option: str,
) -> None:
    # Python refuses to turn an integer of over 4300 digits into text: the message cannot quote it.
    with pytest.raises(ConfigurationError, match=f"^{option} must be a finite number"):
        settings(**{option: 10**5000})


def test_a_jwks_timeout_longer_than_any_wait_the_platform_can_make_fails_at_startup() -> None:
    # Threads and sockets wait at most threading.TIMEOUT_MAX (about 292 years): a longer
    # timeout would fail every key download made from a synchronous verification.
    with pytest.raises(ConfigurationError, match="jwks_timeout"):
        settings(jwks_timeout=1e10)


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


def test_every_verifier_option_of_jwtauth_is_a_settings_field_with_the_same_default() -> None:
    parameters = inspect.signature(JWTAuth.__init__).parameters
    for option in option_fields():
        assert parameters[option.name].default == option.default, option.name


def test_jwtauth_accepts_prebuilt_settings() -> None:
    shared = settings(leeway=5)
    auth = JWTAuth(settings=shared, realm="streams")
    assert auth.settings is shared
    assert auth.verifier.settings is shared


def test_settings_and_verifier_keywords_together_name_the_keywords() -> None:
    with pytest.raises(ConfigurationError, match="not both: leeway"):
        JWTAuth(settings=settings(), leeway=5)


def test_replace_validates_the_copy_again() -> None:
    assert settings().replace(leeway=5).leeway == 5.0
    with pytest.raises(ConfigurationError, match="leeway"):
        settings().replace(leeway=-5)


def test_settings_are_frozen() -> None:
    built = settings()
    with pytest.raises(AttributeError):
        built.leeway = 1.0  # type: ignore[misc]


def test_an_http_issuer_off_this_machine_names_the_issuer_not_jwks_url() -> None:
    with pytest.raises(ConfigurationError, match=r"^issuer 'http://example.com/' must use https"):
        settings(domain=None, issuer="http://example.com/")


def test_an_http_issuer_off_this_machine_is_fine_with_an_https_jwks_url() -> None:
    built = settings(domain=None, issuer="http://example.com/", jwks_url="https://keys.example/")
    assert built.jwks_urls == {"http://example.com/": "https://keys.example/"}


def test_an_http_jwks_url_off_this_machine_names_jwks_url() -> None:
    with pytest.raises(
        ConfigurationError, match=r"^jwks_url 'http://keys.example/' must use https"
    ):
        settings(jwks_url="http://keys.example/")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "[::1]"])
def test_plain_http_is_accepted_on_every_loopback_host(host: str) -> None:
    issuer = f"http://{host}:8765/"
    assert settings(domain=None, issuer=issuer).issuers == (issuer,)


def test_a_domain_with_a_trailing_slash_is_the_same_domain() -> None:
    assert settings(domain="istreamplanet.auth0.com/").issuers == (
        "https://istreamplanet.auth0.com/",
    )


def test_an_audience_that_is_not_a_uri_suggests_the_platform_audience() -> None:
    with pytest.raises(ConfigurationError, match=r"https://platform.dtc.istreamplanet.net/acme"):
        settings(audience="acme")


def test_a_platform_audience_with_a_trailing_slash_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="no trailing slash"):
        settings(audience=ACME + "/")


def test_an_unknown_environment_variable_is_refused_with_the_nearest_name() -> None:
    with pytest.raises(ConfigurationError, match=r"ISP_JWT_LEEWEY .*did you mean ISP_JWT_LEEWAY"):
        options_from_env({"ISP_JWT_LEEWEY": "10"})


def test_a_bad_environment_value_names_the_expected_form_but_not_the_value() -> None:
    with pytest.raises(ConfigurationError, match="ISP_JWT_LEEWAY must be a number") as caught:
        options_from_env({"ISP_JWT_LEEWAY": "abc"})
    assert "abc" not in str(caught.value)


def test_an_auth0_issuer_without_its_trailing_slash_fails_at_startup() -> None:
    with pytest.raises(ConfigurationError, match="ends with a slash"):
        settings(domain=None, issuer="https://istreamplanet.auth0.com")


def test_an_auth0_issuer_with_its_trailing_slash_is_kept() -> None:
    built = settings(domain=None, issuer="https://istreamplanet.us.auth0.com/")
    assert built.issuers == ("https://istreamplanet.us.auth0.com/",)
