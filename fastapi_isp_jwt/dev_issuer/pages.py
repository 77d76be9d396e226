"""The dev issuer's two HTML pages: the login form and the error page. Plain, no scripts."""

from __future__ import annotations

from html import escape

__all__ = ["PAGE_HEADERS", "error_page", "login_page"]

# No scripts, no framing, nothing cached: the page holds a login form.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

_STYLE = """
body { font-family: system-ui, sans-serif; background: #f4f5f7; margin: 0; }
main { max-width: 22rem; margin: 4rem auto; background: #fff; padding: 2rem;
       border-radius: 8px; box-shadow: 0 1px 4px rgba(0,0,0,.15); }
.notice { background: #fff4d6; border: 1px solid #e0c060; padding: .5rem; font-size: .85rem; }
.error { color: #a00000; }
label { display: block; margin-top: 1rem; font-weight: 600; }
input { width: 100%; box-sizing: border-box; padding: .5rem; margin-top: .25rem; }
button { margin-top: 1.5rem; width: 100%; padding: .6rem; font-size: 1rem; }
code { word-break: break-all; }
"""


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · fastapi-isp-jwt dev issuer</title>"
        f"<style>{_STYLE}</style></head>\n<body><main>\n"
        '<p class="notice">fastapi-isp-jwt dev issuer: for local development only.</p>\n'
        f"{body}\n</main></body></html>\n"
    )


def login_page(
    *, action: str, client_id: str, audience: str, username: str = "", error: str | None = None
) -> str:
    """The login form; ``action`` is where it posts (the same request's URL)."""
    message = f'<p class="error" role="alert">{escape(error)}</p>\n' if error else ""
    return _page(
        "Log in",
        "<h1>Log in</h1>\n"
        f"<p>to <strong>{escape(client_id)}</strong> for <code>{escape(audience)}</code></p>\n"
        f"{message}"
        f'<form method="post" action="{escape(action)}">\n'
        '<label for="username">Username</label>\n'
        '<input id="username" name="username" type="text" autocomplete="username" '
        f'required autofocus value="{escape(username)}">\n'
        '<label for="password">Password</label>\n'
        '<input id="password" name="password" type="password" '
        'autocomplete="current-password" required>\n'
        '<button type="submit">Log in</button>\n'
        "</form>",
    )


def error_page(error: str, description: str) -> str:
    """Shown instead of redirecting when the client or its redirect URI cannot be trusted."""
    return _page(
        "Error",
        f"<h1>Cannot log in</h1>\n<p><code>{escape(error)}</code>: {escape(description)}</p>",
    )
