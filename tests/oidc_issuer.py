"""A test OIDC issuer: its own RSA and EC keys, ``/.well-known/openid-configuration``, a JWKS,
and GitHub Actions' ``ACTIONS_ID_TOKEN_REQUEST_URL`` endpoint (``/token?audience=...`` with the
``Authorization: Bearer <request token>`` check). It counts every request it answers.

In a test: ``Issuer.start()`` (a thread). As a process (for uv end to end):
``python tests/oidc_issuer.py PORT REQUEST_TOKEN OVERRIDES_FILE`` prints its URL when it
listens; ``/token`` reads the JSON overrides file on every request (claims to change, and
``_offset``: seconds added to iat, nbf and exp), and ``/requests`` lists what it was asked.
"""

import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa


class Issuer:
    def __init__(self, server: ThreadingHTTPServer, request_token: str = "", overrides=""):
        self.server = server
        host, port = server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self.requests: list[str] = []
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec_key = ec.generate_private_key(ec.SECP256R1())
        #: Keys published in the JWKS, by kid (a rotation test adds one).
        self.published = {"rsa-1": self.rsa_key, "ec-1": self.ec_key}
        self.request_token = request_token
        #: A JSON file of claim overrides ``/token`` reads for each JWT it mints.
        self.overrides_path = overrides

    @classmethod
    def start(cls, port: int = 0, request_token: str = "", overrides: str = "") -> "Issuer":
        server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        issuer = cls(server, request_token, overrides)
        server.issuer = issuer
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return issuer

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def jwks(self) -> dict:
        keys = []
        for kid, key in self.published.items():
            jwk = json.loads(
                (
                    jwt.algorithms.RSAAlgorithm
                    if kid.startswith("rsa")
                    else jwt.algorithms.ECAlgorithm
                ).to_jwk(key.public_key())
            )
            jwk.update(kid=kid, use="sig", alg="RS256" if kid.startswith("rsa") else "ES256")
            keys.append(jwk)
        return {"keys": keys}

    def claims(self, audience: str, **overrides) -> dict:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
            "sub": "repo:acme/widget:ref:refs/heads/main",
            "repository": "acme/widget",
            "repository_owner": "acme",
            "workflow": "release",
            "workflow_ref": "acme/widget/.github/workflows/release.yml@refs/heads/main",
            "ref": "refs/heads/main",
            "run_id": "4242",
        }
        offset = overrides.pop("_offset", 0)
        for name in ("iat", "nbf", "exp"):
            claims[name] += offset
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: dict, algorithm: str = "RS256", kid: str | None = None, key=None) -> str:
        if key is None:
            key = self.rsa_key if algorithm == "RS256" else self.ec_key
        if kid is None:
            kid = "rsa-1" if algorithm == "RS256" else "ec-1"
        return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})

    def token(self, audience: str, algorithm: str = "RS256", **overrides) -> str:
        return self.sign(self.claims(audience, **overrides), algorithm)


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        issuer: Issuer = self.server.issuer
        parts = urlsplit(self.path)
        if parts.path == "/requests":
            return self._json(200, {"requests": issuer.requests})
        issuer.requests.append(parts.path)
        if parts.path == "/.well-known/openid-configuration":
            return self._json(200, {"issuer": issuer.url, "jwks_uri": issuer.url + "/jwks"})
        if parts.path == "/jwks":
            return self._json(200, issuer.jwks())
        if parts.path == "/token":
            if self.headers.get("Authorization") != f"Bearer {issuer.request_token}":
                return self._json(401, {"message": "bad request token"})
            audience = parse_qs(parts.query).get("audience", [""])[0]
            overrides = {}
            if issuer.overrides_path:
                with open(issuer.overrides_path) as file:
                    overrides = json.load(file)
            return self._json(200, {"value": issuer.token(audience, **overrides)})
        return self._json(404, {"message": "not found"})


if __name__ == "__main__":
    issuer = Issuer.start(int(sys.argv[1]), sys.argv[2], sys.argv[3])
    print(issuer.url, flush=True)
    threading.Event().wait()
