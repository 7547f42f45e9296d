"""A stand-in for AWS Sign-In's token service (the refresh of `aws login` console sessions),
for vault's e2e tests.

It is a stand-in because nothing emulates AWS Sign-In: moto does not implement it, and the
service answers only for real IAM identities. It speaks the wire format aws-sdk-signin uses
(restJson1, as its generated serializers write and read it): POST /v1/token with the JSON
body {"clientId", "grantType", "refreshToken"} and a `DPoP` header, answered with
{"accessToken": {"accessKeyId", "secretAccessKey", "sessionToken"}, "tokenType",
"expiresIn", "refreshToken"}, or an error shape named in `x-amzn-ErrorType` with its
{"error", "message"} body. aws-config's login provider is the client vault uses.

It checks what the real service checks before it refreshes:
- the DPoP proof (RFC 9449): a JWT of type `dpop+jwt`, ES256, whose signature verifies
  against the public key in its header, and that key must be the one bound to the refresh
  token when the session was signed in;
- `htm` is POST, `htu` is this request's URL, `iat` within a minute of now, and `jti`
  never seen before (a replayed proof is refused);
- the refresh token is known, belongs to the client id sent, and was never used: every
  refresh answers a new one and the old one is refused from then on (rotation).

Credentials are real moto credentials: moto's STS AssumeRole of
arn:aws:iam::ACCOUNT:role/console-session (moto without auth takes any signature), so a
child or a role chain on top of them reaches moto like any other.

    python signin_stand_in.py --port N --moto http://127.0.0.1:M --state-file PATH

Test only:
  POST /_stand_in/sign_in {"arn", "expired": bool, "client_id"?}: what `aws login` does for
      the test: a P-256 key made here, a refresh token bound to it, credentials from moto,
      and the AWS CLI's cache file for them (field for field as the AWS CLI writes it),
      answered as {"file_name", "contents"}. The test writes it where the AWS CLI would.
  POST /_stand_in/control merges settings: `refuse_refresh` (a count of refreshes answered
      AccessDeniedException TOKEN_EXPIRED, the token revoked), `expires_in` (seconds).
  GET /_stand_in/state: {"counts": {operation: n}, "calls": [...]} (no secret in it; also
      written to --state-file after every request).
  GET /_stand_in/issued: every refresh token and DPoP key (its PEM body, line by line) handed
      out, for the tests' no-leak checks (never in the state file). The credentials are not
      there: `vault export` prints those by design.

Binds 127.0.0.1 only; logs method, path and status to stderr, never a token.
"""

import base64
import datetime
import hashlib
import json
import secrets
import sys
import threading
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from werkzeug.wrappers import Request, Response

# The moto call, the state file and the server (its request log: method, path, status,
# never a query or a token) are the SSO stand-in's, beside this file; imported without
# leaving a __pycache__ in the source tree.
sys.dont_write_bytecode = True
from sso_stand_in import moto_assume_role, serve, write_json  # noqa: E402

DEFAULT_CLIENT = "arn:aws:signin:::devtools/same-device"
IAT_WINDOW = 60
class Fail(Exception):
    def __init__(self, shape, error, message, status=400):
        super().__init__(shape)
        self.shape, self.error, self.message, self.status = shape, error, message, status


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def json_response(body, status=200, headers=None):
    return Response(json.dumps(body), status, headers=headers, content_type="application/json")


class StandIn:
    def __init__(self, moto, state_file):
        self.moto = moto.rstrip("/")
        self.state_file = state_file
        self.lock = threading.Lock()
        self.control = {}
        self.counts = {"CreateOAuth2Token": 0, "SignIn": 0}
        self.calls = []
        self.refresh = {}  # token -> {client, jwk (x, y), arn, account, valid}
        self.jtis = set()
        self.issued = []  # every secret handed out
        self.write_state()

    def write_state(self):
        write_json(self.state_file, {"counts": dict(self.counts), "calls": list(self.calls)})

    def __call__(self, environ, start_response):
        request = Request(environ)
        call = {}
        try:
            response = self.dispatch(request, call)
        except Fail as fail:
            call["error"] = f"{fail.shape}/{fail.error}"
            call["reason"] = fail.message
            response = json_response(
                {"error": fail.error, "message": fail.message},
                fail.status,
                {"x-amzn-ErrorType": fail.shape},
            )
        except Exception as e:  # a bug here must still answer, and say what on stderr
            print(f"stand-in error: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            response = json_response(
                {"error": "server_error", "message": "stand-in error"},
                500,
                {"x-amzn-ErrorType": "InternalServerException"},
            )
        with self.lock:
            if call.get("operation"):
                call["status"] = response.status_code
                self.calls.append(call)
            self.write_state()
        return response(environ, start_response)

    def dispatch(self, request, call):
        method, path = request.method, request.path
        if (method, path) == ("POST", "/_stand_in/control"):
            with self.lock:
                self.control.update(json.loads(request.get_data() or b"{}"))
            return json_response({})
        if (method, path) == ("GET", "/_stand_in/state"):
            with self.lock:
                return json_response({"counts": dict(self.counts), "calls": list(self.calls)})
        if (method, path) == ("GET", "/_stand_in/issued"):
            with self.lock:
                return json_response({"secrets": list(self.issued)})
        if (method, path) == ("POST", "/_stand_in/sign_in"):
            call["operation"] = "SignIn"
            with self.lock:
                self.counts["SignIn"] += 1
            return self.sign_in(json.loads(request.get_data() or b"{}"))
        if (method, path) == ("POST", "/v1/token"):
            call["operation"] = "CreateOAuth2Token"
            with self.lock:
                self.counts["CreateOAuth2Token"] += 1
            return self.create_token(request, call)
        return Response("not found\n", 404, content_type="text/plain")

    # --- what `aws login` leaves behind

    def sign_in(self, body):
        arn = body["arn"]
        client = body.get("client_id") or DEFAULT_CLIENT
        account = arn.split(":")[4]
        key = ec.generate_private_key(ec.SECP256R1())
        numbers = key.public_key().public_numbers()
        jwk = (b64url(numbers.x.to_bytes(32, "big")), b64url(numbers.y.to_bytes(32, "big")))
        # SEC1 ("BEGIN EC PRIVATE KEY"), as the AWS CLI writes `dpopKey`.
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()
        refresh = "rt-" + secrets.token_urlsafe(32)
        creds = self.credentials(account)
        ttl = int(self.control.get("expires_in") or 900)
        expires = time.time() + (-60 if body.get("expired") else ttl)
        with self.lock:
            self.refresh[refresh] = {
                "client": client,
                "jwk": jwk,
                "arn": arn,
                "account": account,
                "valid": True,
            }
            # The key's body, line by line: a leak of any part of it shows.
            self.issued += [refresh] + [l for l in pem.splitlines() if "-----" not in l]
        cache = {
            "accessToken": {
                "accessKeyId": creds["accessKeyId"],
                "secretAccessKey": creds["secretAccessKey"],
                "sessionToken": creds["sessionToken"],
                "accountId": account,
                "expiresAt": iso(expires),
            },
            "tokenType": "aws_sigv4",
            "clientId": client,
            "refreshToken": refresh,
            "idToken": "stand-in-id-token",
            "dpopKey": pem,
        }
        # The AWS CLI names the file by the SHA-256 of the trimmed login_session.
        name = hashlib.sha256(arn.strip().encode()).hexdigest() + ".json"
        return json_response({"file_name": name, "contents": json.dumps(cache, indent=4)})

    # --- the service

    def create_token(self, request, call):
        try:
            body = json.loads(request.get_data() or b"{}")
        except ValueError:
            raise Fail("ValidationException", "INVALID_REQUEST", "body is not JSON")
        call["grantType"] = body.get("grantType")
        call["clientId"] = body.get("clientId")
        if body.get("grantType") != "refresh_token":
            raise Fail("ValidationException", "INVALID_REQUEST", "only refresh_token here")
        jwk = self.check_dpop(request, call)
        token = body.get("refreshToken") or ""
        with self.lock:
            record = self.refresh.get(token)
            if record is None or not record["valid"]:
                raise Fail(
                    "AccessDeniedException", "TOKEN_EXPIRED", "Refresh token is not valid", 401
                )
            if record["client"] != body.get("clientId"):
                raise Fail("ValidationException", "INVALID_REQUEST", "client does not match")
            if record["jwk"] != jwk:
                raise Fail("AccessDeniedException", "INVALID_REQUEST", "DPoP key not bound", 401)
            # Rotation: this token is spent whatever follows.
            record["valid"] = False
            left = int(self.control.get("refuse_refresh") or 0)
            if left > 0:
                self.control["refuse_refresh"] = left - 1
                raise Fail(
                    "AccessDeniedException", "TOKEN_EXPIRED", "Session has expired", 401
                )
            new = "rt-" + secrets.token_urlsafe(32)
            self.refresh[new] = dict(record, valid=True)
        creds = self.credentials(record["account"])
        with self.lock:
            self.issued.append(new)
        call["refreshed"] = True
        return json_response(
            {
                "accessToken": {
                    "accessKeyId": creds["accessKeyId"],
                    "secretAccessKey": creds["secretAccessKey"],
                    "sessionToken": creds["sessionToken"],
                },
                "tokenType": "aws_sigv4",
                "expiresIn": int(self.control.get("expires_in") or 900),
                "refreshToken": new,
            }
        )

    def check_dpop(self, request, call):
        """The DPoP proof's checks (RFC 9449 §4.3); answers the proof's public key."""
        proof = request.headers.get("DPoP", "")
        bad = lambda why: Fail("AccessDeniedException", "INVALID_REQUEST", f"DPoP: {why}", 401)
        parts = proof.split(".")
        if len(parts) != 3:
            raise bad("no proof")
        try:
            header = json.loads(b64url_decode(parts[0]))
            payload = json.loads(b64url_decode(parts[1]))
            signature = b64url_decode(parts[2])
        except ValueError:
            raise bad("not a JWT")
        jwk = header.get("jwk") or {}
        if header.get("typ") != "dpop+jwt" or header.get("alg") != "ES256":
            raise bad("typ or alg")
        if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
            raise bad("jwk")
        try:
            public = ec.EllipticCurvePublicNumbers(
                int.from_bytes(b64url_decode(jwk["x"]), "big"),
                int.from_bytes(b64url_decode(jwk["y"]), "big"),
                ec.SECP256R1(),
            ).public_key()
            if len(signature) != 64:
                raise bad("signature length")
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            public.verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, KeyError, ValueError):
            raise bad("signature does not verify")
        if payload.get("htm") != "POST":
            raise bad("htm")
        if payload.get("htu") != request.base_url:
            call["htu"] = payload.get("htu")
            raise bad("htu is not this URL")
        iat = payload.get("iat")
        if not isinstance(iat, int) or abs(time.time() - iat) > IAT_WINDOW:
            raise bad("iat not fresh")
        jti = payload.get("jti")
        with self.lock:
            if not jti or jti in self.jtis:
                raise bad("jti replayed")
            self.jtis.add(jti)
        call["dpop"] = "verified"
        return (jwk["x"], jwk["y"])

    def credentials(self, account):
        """Real credentials from moto's STS (AssumeRole of a stand-in role)."""
        role = f"arn:aws:iam::{account}:role/console-session"
        creds = moto_assume_role(self.moto, role, "console")
        if creds is None:
            raise Fail("InternalServerException", "server_error", "no credentials", 500)
        return creds


def iso(epoch):
    moment = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


if __name__ == "__main__":
    serve(StandIn, __doc__.splitlines()[0])
