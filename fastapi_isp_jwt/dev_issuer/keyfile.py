"""The dev issuer's signing key, kept in a local file so that restarts and ``mint`` agree.

The file is JSON (``kid``, ``alg`` and the PKCS#8 PEM private key), readable by its owner
only. It protects nothing but local development tokens, and must never be reused for
anything else.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

from fastapi_isp_jwt.errors import ConfigurationError, KeySetError
from fastapi_isp_jwt.keys import load_jwk
from fastapi_isp_jwt.minting import SigningKey

__all__ = ["default_key_file", "load_key", "load_or_create_key"]

_APP_DIR = "fastapi-isp-jwt"
_FILE_NAME = "dev-issuer-key.json"


def default_key_file() -> Path:
    """``<user cache dir>/fastapi-isp-jwt/dev-issuer-key.json``, per platform convention."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / _APP_DIR / _FILE_NAME


def load_key(path: Path) -> SigningKey:
    """Read the key saved at ``path``.

    A damaged file is a `ConfigurationError`, and so is a key that services would refuse
    (an RSA key under 2048 bits, say): every token signed with it would be refused.
    """
    try:
        document = json.loads(path.read_bytes())
        key = SigningKey.from_pem(
            document["private_key"].encode(), kid=document["kid"], alg=document["alg"]
        )
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigurationError(f"cannot read the key file {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise ConfigurationError(
            f"the key file {path} is damaged; delete it and a new key will be made"
        ) from None
    try:
        # The very check a service's key cache makes of the JWK the dev issuer publishes.
        load_jwk(key.public_jwk())
    except KeySetError as exc:
        raise ConfigurationError(
            f"key_file {path}: services refuse tokens signed with its key ({exc}); "
            "delete the file and a new key will be made"
        ) from None
    return key


def load_or_create_key(path: Path, algorithm: str = "RS256") -> SigningKey:
    """The key saved at ``path``, made and saved first if there is none yet.

    Two processes starting at once agree on one key: the file is linked into place only
    if it does not exist yet, and the loser reads the winner's key.
    """
    try:
        return load_key(path)
    except FileNotFoundError:
        pass
    key = SigningKey.generate(algorithm)
    document = {"kid": key.kid, "alg": key.alg, "private_key": key.to_pem().decode()}
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(document, out)
        try:
            os.link(draft, path)
        except FileExistsError:
            return load_key(path)
        except OSError:
            os.replace(draft, path)  # a file system without hard links: the last writer wins
        finally:
            draft.unlink(missing_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"cannot write the key file {path}: {exc.strerror}") from None
    return key
