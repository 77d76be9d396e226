"""The Principal handed to routes: typed, frozen, scopes from scope and permissions."""

from __future__ import annotations

import copy
import pickle
from datetime import datetime, timezone
from typing import Any

import pytest
from pydantic import Field, ValidationError

from fastapi_isp_jwt.errors import InvalidTokenError
from fastapi_isp_jwt.principal import Claims, Principal, build_principal, share_common_values

ACME = "https://platform.dtc.istreamplanet.net/acme"


def claims(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sub": "auth0|u", "iat": 1_800_000_000, "exp": 1_800_003_600}
    base.update(extra)
    return base


def build(payload: dict[str, Any], cls: type[Principal] = Principal) -> Principal:
    return build_principal(cls, payload, (ACME,), "acme")


def test_scopes_unite_the_scope_claim_and_permissions() -> None:
    principal = build(claims(scope="streams:read profile", permissions=["streams:write"]))
    assert principal.scopes == frozenset({"streams:read", "profile", "streams:write"})


def test_has_scopes_requires_every_scope_as_a_whole_token() -> None:
    principal = build(claims(scope="streams:writer streams:read"))
    assert principal.has_scopes("streams:read")
    assert principal.has_scopes()
    assert not principal.has_scopes("streams:write")
    assert not principal.has_scopes("streams:read", "streams:write")


def test_times_are_timezone_aware_datetimes() -> None:
    principal = build(claims())
    assert principal.expires_at == datetime(2027, 1, 15, 9, 0, tzinfo=timezone.utc)
    assert principal.issued_at == datetime(2027, 1, 15, 8, 0, tzinfo=timezone.utc)


def test_a_client_credentials_token_is_a_machine_with_its_client_id() -> None:
    principal = build(claims(sub="abc@clients", gty="client-credentials", azp="abc"))
    assert principal.is_machine
    assert principal.client_id == "abc"


def test_a_user_token_is_not_a_machine_and_client_id_falls_back_to_client_id_claim() -> None:
    principal = build(claims(client_id="spa"))
    assert not principal.is_machine
    assert principal.client_id == "spa"


def test_audience_and_organization_come_from_the_audience_match() -> None:
    principal = build(claims())
    assert principal.audience == (ACME,)
    assert principal.organization == "acme"


def test_the_principal_is_frozen() -> None:
    principal = build(claims())
    with pytest.raises(ValidationError):
        principal.subject = "someone else"


def test_claims_are_read_only() -> None:
    principal = build(claims(role="viewer"))
    assert principal.claims["role"] == "viewer"
    with pytest.raises(TypeError):
        principal.claims["role"] = "admin"  # type: ignore[index]


def test_the_principal_serializes_to_json() -> None:
    dumped = build(claims(role="viewer")).model_dump(mode="json")
    assert dumped["subject"] == "auth0|u"
    assert dumped["claims"]["role"] == "viewer"


class StreamingPrincipal(Principal):
    region: str = Field(validation_alias="https://istreamplanet.com/region")


def test_a_principal_subclass_reads_custom_claims() -> None:
    principal = build(claims(**{"https://istreamplanet.com/region": "eu"}), StreamingPrincipal)
    assert isinstance(principal, StreamingPrincipal)
    assert principal.region == "eu"


def test_custom_claims_that_do_not_validate_make_the_token_invalid() -> None:
    with pytest.raises(InvalidTokenError, match="principal"):
        build(claims(), StreamingPrincipal)


def test_a_claim_named_like_a_field_cannot_override_verified_values() -> None:
    principal = build(claims(scopes=["admin"], organization="globex", is_machine=True))
    assert principal.scopes == frozenset()
    assert principal.organization == "acme"
    assert principal.is_machine is False


def test_the_fast_construction_equals_full_validation() -> None:
    payload = claims(scope="a b", permissions=["c"], azp="spa", gty="client-credentials")
    fast = build(payload)
    validated = Principal.model_validate(fast.model_dump())
    assert fast == validated
    assert fast.model_dump() == validated.model_dump()
    assert fast.model_fields_set == validated.model_fields_set


def test_nested_claims_are_read_only_too() -> None:
    principal = build(claims(roles=["viewer"], meta={"tier": "gold", "tags": ["a"]}))
    assert principal.claims["roles"] == ("viewer",)
    assert principal.claims["meta"]["tags"] == ("a",)
    with pytest.raises(AttributeError):
        principal.claims["roles"].append("admin")
    with pytest.raises(TypeError):
        principal.claims["meta"]["tier"] = "platinum"


def test_claims_serialize_back_to_json_arrays_and_objects() -> None:
    principal = build(claims(roles=["viewer"], meta={"tags": ["a"]}))
    assert principal.model_dump()["claims"]["roles"] == ["viewer"]
    assert principal.model_dump()["claims"]["meta"] == {"tags": ["a"]}
    assert isinstance(principal.claims, Claims)
    assert principal.claims.to_dict()["meta"] == {"tags": ["a"]}


def test_a_principal_can_be_copied_with_changes() -> None:
    principal = build(claims())
    copied = principal.model_copy(update={"organization": "globex"})
    assert copied.organization == "globex"
    assert principal.organization == "acme"


def test_a_principal_survives_deepcopy_and_pickle() -> None:
    principal = build(claims(roles=["viewer"], scope="a b"))
    assert copy.deepcopy(principal) == principal
    assert pickle.loads(pickle.dumps(principal)) == principal  # noqa: S301 - our own bytes


def test_a_principal_dumps_only_what_was_set_like_any_model() -> None:
    principal = build(claims())
    assert principal.model_dump(exclude_unset=True) == principal.model_dump()
    assert remembered(principal).model_dump(exclude_unset=True) == principal.model_dump()


def test_the_fields_set_principals_share_cannot_be_changed_in_place() -> None:
    principal = build(claims())
    with pytest.raises(TypeError, match="read-only"):
        principal.model_fields_set.add("extra")
    assert "extra" not in build(claims(sub="auth0|other")).model_fields_set


def test_a_principal_is_hashable_like_any_frozen_model() -> None:
    payload = claims(roles=["viewer"])
    assert hash(build(dict(payload))) == hash(build(dict(payload)))


# -- a principal as the verified-token cache keeps it ---------------------------------------


def remembered(principal: Principal) -> Principal:
    twin, _ = share_common_values(principal)
    return twin


def test_a_remembered_principal_equals_the_one_it_stands_for() -> None:
    principal = build(claims(scope="a b", permissions=["c"], roles=["viewer"], meta={"x": [1]}))
    twin = remembered(principal)
    assert twin == principal
    assert twin.model_dump() == principal.model_dump()
    assert twin.model_dump_json() == principal.model_dump_json()
    assert hash(twin) == hash(principal)
    assert twin.model_fields_set == principal.model_fields_set


def test_remembered_principals_share_claim_names_and_common_values() -> None:
    first = remembered(build(claims(sub="auth0|a", iss="https://tenant.example/", azp="spa")))
    second = remembered(build(claims(sub="auth0|b", iss="https://tenant.example/", azp="spa")))
    assert first.claims["iss"] is second.claims["iss"]
    assert first.client_id is second.client_id
    assert next(iter(first.claims)) is next(iter(second.claims))
    assert first.claims["sub"] != second.claims["sub"]


def test_remembered_claims_read_like_any_claims() -> None:
    principal = build(claims(roles=["viewer"], meta={"tags": ["a"]}))
    twin = remembered(principal)
    assert list(twin.claims) == list(principal.claims)
    assert len(twin.claims) == len(principal.claims)
    assert "roles" in twin.claims
    assert "missing" not in twin.claims
    assert twin.claims.get("missing", "default") == "default"
    assert twin.claims["roles"] == ("viewer",)
    assert isinstance(twin.claims, Claims)
    assert isinstance(principal.claims, Claims)
    assert twin.claims.to_dict() == principal.claims.to_dict()
    assert repr(twin.claims) == repr(principal.claims)
    with pytest.raises(TypeError):
        twin.claims["meta"]["tags"] = ("b",)


def test_a_copy_with_changes_leaves_the_remembered_principal_alone() -> None:
    twin = remembered(build(claims()))
    other = remembered(build(claims(sub="auth0|other")))
    copied = twin.model_copy(update={"organization": "globex"})
    assert copied.organization == "globex"
    assert twin.organization == "acme"
    assert other.model_fields_set == set(Principal.model_fields)


def test_a_remembered_principal_survives_deepcopy_and_pickle() -> None:
    twin = remembered(build(claims(roles=["viewer"], scope="a b")))
    assert copy.deepcopy(twin) == twin
    assert pickle.loads(pickle.dumps(twin)) == twin  # noqa: S301 - our own bytes


def test_a_remembered_subclass_keeps_its_own_fields() -> None:
    principal = build(claims(**{"https://istreamplanet.com/region": "eu"}), StreamingPrincipal)
    twin = remembered(principal)
    assert isinstance(twin, StreamingPrincipal)
    assert twin.region == "eu"
    assert twin == principal


def test_a_remembered_principal_is_weighed_by_what_it_holds_alone() -> None:
    _, light = share_common_values(build(claims(iss="https://tenant.example/" + "x" * 4000)))
    _, heavy = share_common_values(build(claims(notes="x" * 4000)))
    assert heavy - light > 3_500  # the issuer is shared with other tokens; notes are not
