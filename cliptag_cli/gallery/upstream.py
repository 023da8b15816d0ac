"""The cliptag API, called from the local process: every request SigV4-signed (service
``execute-api``) with the user's credentials, so the browser never holds them and the API keeps
IAM auth. Only the API's read routes are passed on, and one write: a person's decision on a
tag (``decide``, also the command line's)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode

import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

# The API's GET routes (functions/handlers/api.py); one path segment per tag, category or key.
ROUTES = re.compile(
    r"^/(?:tags|search|images|(?:tags|categories)/[^/]+/images|images/[^/]+/(?:tags|similar|duplicates))$"
)
# Its writes (functions/handlers/api_decisions.py): confirm (PUT) or reject (DELETE) a tag.
DECISION = re.compile(r"^/images/[^/]+/tags/[^/]+$")


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"


def error(status: int, message: str) -> Answer:
    return Answer(status, json.dumps({"error": message}).encode("utf-8"))


def canonical(path: str, query: str, routes: re.Pattern[str] = ROUTES) -> str | None:
    """``path?query`` in one encoding (each segment and value percent-encoded once, RFC 3986), so
    the signature covers what API Gateway will see; None for a path outside the API's routes.

    Browsers leave ``'()*!`` unencoded and write a space as ``+`` in queries; SigV4 wants neither.
    """
    segments = [unquote(s) for s in path.split("/")[1:]]
    if any(s in ("", ".", "..") for s in segments):
        return None
    clean = "/" + "/".join(quote(s, safe="-_.~") for s in segments)
    if not routes.match(clean):
        return None
    params = sorted(parse_qsl(query, keep_blank_values=True))
    return clean + (f"?{urlencode(params, quote_via=quote, safe='-_.~')}" if params else "")


class SignedApi:
    """GET requests to the API at ``base_url`` (a deployed stack's ApiUrl, or the local API)."""

    def __init__(self, base_url: str, region: str, credentials: Credentials, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.region = region
        self._credentials = credentials
        # Keep-alive: one TLS handshake per connection, not per request (~100 ms each to AWS).
        self._pool = urllib3.PoolManager(maxsize=8, retries=False, timeout=urllib3.Timeout(total=timeout_s))

    def get(self, path: str, query: str = "") -> Answer:
        return self._send("GET", path, query, ROUTES)

    def decide(self, path: str, confirm: bool) -> Answer:
        """Confirm (PUT) or reject (DELETE) the tag of ``/images/{key}/tags/{tag}``."""
        return self._send("PUT" if confirm else "DELETE", path, "", DECISION)

    def _send(self, method: str, path: str, query: str, routes: re.Pattern[str]) -> Answer:
        target = canonical(path, query, routes)
        if target is None:
            return error(404, f"not an API route: {method} {path}")
        url = self.base_url + target
        request = AWSRequest(method=method, url=url, headers={"Accept": "application/json"})
        # Frozen per request: refreshable credentials (SSO, assumed roles) renew in between.
        SigV4Auth(self._credentials.get_frozen_credentials(), "execute-api", self.region).add_auth(request)
        try:
            resp = self._pool.request(method, url, headers=dict(request.headers.items()), redirect=False)
        except urllib3.exceptions.HTTPError as exc:
            return error(502, f"the API did not answer: {exc}")
        content_type = resp.headers.get("Content-Type", "application/json")
        if not content_type.startswith("application/json"):  # e.g. a gateway's HTML error page
            return error(502, f"the API answered {resp.status} with {content_type}")
        return Answer(resp.status, resp.data, content_type)
