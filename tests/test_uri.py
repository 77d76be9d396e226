"""RFC 3986 normalization of http(s) URLs, as DPoP compares ``htu`` with the request URL."""

from __future__ import annotations

import pytest

from fastapi_isp_jwt.uri import normalized_http_url


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        ("HTTPS://API.Example.COM/Streams", "https://api.example.com/Streams"),
        ("https://api.example.com:443/a", "https://api.example.com/a"),
        ("http://api.example.com:80/a", "http://api.example.com/a"),
        ("http://api.example.com:0080/a", "http://api.example.com/a"),
        ("http://api.example.com:" + "0" * 5000 + "80/a", "http://api.example.com/a"),
        ("http://api.example.com:/a", "http://api.example.com/a"),
        ("https://api.example.com:8443/a", "https://api.example.com:8443/a"),
        ("https://api.example.com:80/a", "https://api.example.com:80/a"),
        ("https://api.example.com", "https://api.example.com/"),
        ("https://api.example.com/a?b=c#d", "https://api.example.com/a"),
        ("https://api.example.com?b", "https://api.example.com/"),
        ("https://api.example.com/%7Euser/%61", "https://api.example.com/~user/a"),
        ("https://api.example.com/a%2fb%3F", "https://api.example.com/a%2Fb%3F"),
        ("https://api.example.com/a/./b/../c", "https://api.example.com/a/c"),
        ("https://api.example.com/a/%2E%2E/c", "https://api.example.com/c"),
        ("https://api.example.com/..", "https://api.example.com/"),
        ("https://api.example.com/a/..", "https://api.example.com/"),
        ("https://api.example.com/a/.", "https://api.example.com/a/"),
        ("https://api.example.com/a//b/", "https://api.example.com/a//b/"),
        ("https://API.example.com%2e/", "https://api.example.com./"),
        ("https://[::1]:443/a", "https://[::1]/a"),
        ("https://[FE80::1]:8443/", "https://[fe80::1]:8443/"),
    ],
)
def test_equivalent_spellings_normalize_to_one(url: str, normalized: str) -> None:
    assert normalized_http_url(url) == normalized


@pytest.mark.parametrize(
    "url",
    [
        "",
        "/streams",
        "api.example.com/streams",
        "//api.example.com/streams",
        "ftp://api.example.com/",
        "https:api.example.com",
        "https:///streams",
        "https://user@api.example.com/",
        "https://user:pass@api.example.com/",
        "https://api.example.com:65536/",
        "https://api.example.com:x/",
        "https://api.example.com/a b",
        "https://api.example.com/ü",
        "https://api.example.com/%zz",
        "https://api.example.com/%4",
        "https://[::1/",
    ],
)
def test_what_is_no_absolute_http_url_has_no_normal_form(url: str) -> None:
    assert normalized_http_url(url) is None


def test_a_port_of_thousands_of_digits_has_no_normal_form() -> None:
    assert normalized_http_url("https://api.example.com:" + "1" * 5000 + "/") is None
