"""``python -m infra.compose.healthcheck [URL]``: the image's HEALTHCHECK.

One image runs every service, so the check finds the port of the service this
container runs from its own settings variable (``LINK_PORT``...), and asks its
``/readyz``: under Docker, health gates ``depends_on``, which wants "ready to
serve", not merely "alive". Kubernetes ignores HEALTHCHECK and uses its own
probes (k8s/base). Exit 0 healthy, 1 not; only the standard library is loaded,
because this runs every few seconds in every container.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping, Sequence

__all__ = ["PORT_VARIABLES", "main", "target"]

# The env prefix of each service's settings, in the order they are looked for.
PORT_VARIABLES = ("GATEWAY_PORT", "LINK_PORT", "USER_PORT", "ANALYTICS_PORT", "WEBHOOKS_PORT")
_DEFAULT_PORT = "8000"  # the gateway's, as the image's default command runs it


def target(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """The URL to check: the argument if given, else this service's own /readyz."""
    if argv:
        return argv[0]
    port = next((environ[name] for name in PORT_VARIABLES if name in environ), _DEFAULT_PORT)
    return f"http://127.0.0.1:{port}/readyz"


def main(argv: Sequence[str] = tuple(sys.argv[1:])) -> int:
    url = target(argv, os.environ)
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 -- our own URL
            return 0 if answer.status < 400 else 1
    except OSError as exc:  # refused, timed out, or an HTTPError (a 5xx from /readyz)
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
