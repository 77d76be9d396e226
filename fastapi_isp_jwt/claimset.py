"""`Claims`: a token's claims, read-only all the way down, and the compact form kept for reuse.

A verified principal's claims are a `Claims` mapping over the parsed payload. The
verified-token cache keeps a laid-out copy instead (`laid_out`): the values in a tuple,
indexed by claim names that every token of the same shape shares, with the values most
tokens of a service repeat (issuer, audience, client, scope...) pointing at one copy.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["Claims", "adopted", "common_text", "laid_out", "weight_of"]


def _frozen(value: Any) -> Any:
    kind = type(value)
    if kind is list or kind is tuple:
        return tuple(_frozen(item) for item in value)
    if kind is dict:
        return Claims(value)
    return value


def _thawed(value: Any) -> Any:
    if isinstance(value, Claims):
        return {key: _thawed(item) for key, item in value.items()}
    if type(value) is tuple:
        return [_thawed(item) for item in value]
    return value


class Claims(Mapping[str, Any]):
    """A token's claims, read-only all the way down: arrays become tuples, objects Claims.

    A verified principal may be answered from the cache to many requests, so nothing a
    route does to its claims can reach another request. Hashable, copyable and picklable;
    it serializes back to plain JSON objects and arrays.
    """

    __slots__ = ("_data",)

    def __init__(self, claims: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = {key: _frozen(value) for key, value in (claims or {}).items()}

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        kind = type(value)
        if kind is list or kind is dict:
            # Frozen on first read: most requests never look at nested claims.
            value = self._data[key] = _frozen(value)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self.items()))

    def __repr__(self) -> str:
        return f"Claims({dict(self.items())!r})"

    def __reduce__(self) -> tuple[type[Claims], tuple[dict[str, Any]]]:
        return (Claims, (dict(self.items()),))

    def __copy__(self) -> Claims:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Claims:
        return self

    def to_dict(self) -> dict[str, Any]:
        """The claims as plain JSON-like data (objects as dicts, arrays as lists)."""
        return _thawed(self)  # type: ignore[no-any-return]


class _LaidOutClaims(Claims):
    """Claims as the verified-token cache keeps them: values in a tuple, laid out by an
    index of names that every token of the same shape shares. Frozen all the way down."""

    __slots__ = ("_index",)

    def __init__(self, index: dict[str, int], values: tuple[Any, ...]) -> None:
        self._index = index
        self._data = values  # type: ignore[assignment]

    def __getitem__(self, key: str) -> Any:
        return self._data[self._index[key]]  # type: ignore[index]

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


# Claims whose values most tokens of a service repeat word for word.
_COMMON_CLAIMS = frozenset(
    {"iss", "aud", "azp", "client_id", "scope", "permissions", "gty", "org_id", "org_name"}
)
# Bounded like the scope memo: a service's tokens repeat a few hundred names and values.
_COMMON_TEXT_SIZE = 4096
_common_texts: dict[str, str] = {}


def common_text(text: str) -> str:
    """The one copy of ``text`` that remembered claims and principals point at."""
    known = _common_texts.get(text)
    if known is None:
        if len(_common_texts) >= _COMMON_TEXT_SIZE:
            _common_texts.clear()
        _common_texts[text] = known = text
    return known


def _common(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        return common_text(value)
    if kind is tuple:
        return tuple(common_text(item) if type(item) is str else item for item in value)
    return value


# Shapes of claims (their names, in order) seen lately, each with its index of names.
_LAYOUTS_SIZE = 256
_layouts: dict[tuple[str, ...], dict[str, int]] = {}


def weight_of(value: Any) -> int:
    """Bytes ``value`` holds as Python objects."""
    size = sys.getsizeof(value)
    if isinstance(value, Claims):
        # A nested object: the wrapper is small, the dict behind it is not.
        return size + weight_of(dict(value.items()))
    if isinstance(value, dict):
        return size + sum(weight_of(k) + weight_of(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return size + sum(weight_of(item) for item in value)
    return size


def adopted(payload: dict[str, Any]) -> Claims:
    """Claims over a freshly parsed payload that nothing else holds; values freeze when read."""
    claims = Claims.__new__(Claims)
    claims._data = payload
    return claims


def laid_out(claims: Claims) -> tuple[Claims, int]:
    """Equal claims that share their names and common values; the bytes they hold alone.

    Raises RecursionError for claims nested deeper than Python recurses.
    """
    names = tuple(claims)
    values = tuple(
        _common(claims[name]) if name in _COMMON_CLAIMS else claims[name] for name in names
    )
    index = _layouts.get(names)
    if index is None:
        if len(_layouts) >= _LAYOUTS_SIZE:
            _layouts.clear()
        index = _layouts[names] = {common_text(name): at for at, name in enumerate(names)}
    alone = sum(
        weight_of(value)
        for name, value in zip(names, values, strict=True)
        if name not in _COMMON_CLAIMS
    )
    compact = _LaidOutClaims(index, values)
    return compact, alone + sys.getsizeof(compact) + sys.getsizeof(values)
