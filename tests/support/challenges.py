"""The challenge of a 401 without credentials, as a service with the default options sends it.

Both schemes are accepted by default (``dpop="allowed"``), so both are offered: Bearer with
its realm, DPoP with the algorithms its proofs may use (every one the library verifies).
"""

from fastapi_isp_jwt import ALGORITHMS

BARE_CHALLENGE = f'Bearer realm="api", DPoP algs="{" ".join(sorted(ALGORITHMS))}"'
