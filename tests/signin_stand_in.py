"""A stand-in for AWS Sign-In (the browser sign-in of `aws login` and the refresh of its
console sessions), for vault's e2e tests.

It is a stand-in because nothing emulates AWS Sign-In: moto lists it as unimplemented, and
the service answers only for real IAM identities. It speaks the wire format of the AWS CLI
v2's `aws login` (awscli/customizations/login) and of aws-sdk-signin (restJson1, as its
generated serializers write and read it), so both clients parse its answers, errors
included, as they would the real service's. aws-config's login provider is the refresh
client vault uses; `vault signin` is the sign-in client.

Sign-in, as the AWS CLI v2 does it (OAuth 2.0 authorization code with PKCE):
- GET /v1/authorize?response_type=code&client_id=CLIENT&state=STATE
  &code_challenge_method=SHA-256&scope=openid&redirect_uri=REDIRECT&code_challenge=CHALLENGE
  is what the browser opens. CLIENT is arn:aws:signin:::devtools/same-device, REDIRECT then
  http://127.0.0.1:PORT/oauth/callback (the client's loopback listener); or CLIENT is
  arn:aws:signin:::devtools/cross-device (`--remote`), REDIRECT then exactly this service's
  /v1/sessions/confirmation. CHALLENGE is base64url, unpadded, of SHA-256(verifier). Every
  parameter is checked; a bad one gets a plain-text 400 (a browser's page). The person
  signs in as control `sign_in_arn` at once (no page to click through) and the answer is a
  302 to REDIRECT?code=CODE&state=STATE, or ?error=access_denied&state=STATE when control
  `deny_sign_in` is set.
- GET /v1/sessions/confirmation?code=CODE&state=STATE is the page the person on another
  device sees: the verification code they type into the CLI, base64 (standard, padded) of
  `state=STATE&code=CODE`, in <pre id="verification-code">.
- POST /v1/token (CreateOAuth2Token) with the JSON body {"clientId", "grantType":
  "authorization_code", "code", "codeVerifier", "redirectUri"} and a `DPoP` header, answered
  with {"accessToken": {"accessKeyId", "secretAccessKey", "sessionToken"}, "tokenType",
  "expiresIn", "refreshToken", "idToken"}; the id token is a JWT whose `sub` is the signed-in
  ARN (the CLI names the session by it). Its signature is random bytes: no client checks it.

Refresh: POST /v1/token with {"clientId", "grantType": "refresh_token", "refreshToken"} and a
`DPoP` header, answered as above without the id token. Errors are a shape named in
`x-amzn-ErrorType` with its {"error", "message"} body.

It checks what the real service checks:
- the DPoP proof (RFC 9449): a JWT of type `dpop+jwt`, ES256, whose signature verifies
  against the public key in its header; `htm` is POST, `htu` this request's URL, `iat`
  within a minute of now, and `jti` never seen before (a replayed proof is refused);
- an authorization code is known, younger than 5 minutes and used once (AccessDenied
  AUTHCODE_EXPIRED, the error the CLI names; a code is spent by its first presentation,
  whatever follows); the clientId and redirectUri are those it was issued for; the
  codeVerifier is 43 to 128 unreserved characters whose challenge is the one given at
  authorize (PKCE);
- a refresh token is known, belongs to the client id sent, is bound to the proof's key (the
  key that signed in), and was never used: every refresh answers a new one and the old one
  is refused from then on (rotation).

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
      AccessDeniedException TOKEN_EXPIRED, the token revoked), `fail_refresh` (a count of
      refreshes answered 500 InternalServerException, the token left unspent), `expires_in`
      (seconds),
      `sign_in_arn` (who signs in at /v1/authorize; default
      arn:aws:iam::123456789012:user/alice), `deny_sign_in` (the person denies: /v1/authorize
      redirects with error=access_denied).
  GET /_stand_in/state: {"counts": {operation: n}, "calls": [...]} (no secret in it; also
      written to --state-file after every request). Operations: Authorize, Confirmation,
      CreateOAuth2Token, SignIn; a call records what was checked, and why it was refused.
  GET /_stand_in/issued: every refresh token, authorization code, code verifier and DPoP key
      (its PEM body, line by line) handed out or seen, for the tests' no-leak checks (never
      in the state file). The credentials are not there: `vault export` prints those by
      design.

Binds 127.0.0.1 only; logs method, path and status to stderr, never a query or a token.
"""

import base64
import datetime
import hashlib
import json
import re
import secrets
import sys
import threading
import time
import urllib.parse

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
CROSS_DEVICE_CLIENT = "arn:aws:signin:::devtools/cross-device"
DEFAULT_ARN = "arn:aws:iam::123456789012:user/alice"
IAT_WINDOW = 60
CODE_TTL = 300  # seconds an authorization code may wait for its exchange
# The same-device client's loopback listener, on whatever port it got.
LOOPBACK_REDIRECT = re.compile(r"http://127\.0\.0\.1:([0-9]{1,5})/oauth/callback")
# base64url of a SHA-256, unpadded: 43 characters (the CLI cuts the one `=` off).
CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
# RFC 7636 §4.1: 43 to 128 unreserved characters.
VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")


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
        self.counts = {"Authorize": 0, "Confirmation": 0, "CreateOAuth2Token": 0, "SignIn": 0}
        self.calls = []
        self.refresh = {}  # token -> {client, jwk (x, y), arn, account, valid}
        self.codes = {}  # authorization code -> {client, redirect, challenge, arn, used, time}
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
        if (method, path) == ("GET", "/v1/authorize"):
            call["operation"] = "Authorize"
            with self.lock:
                self.counts["Authorize"] += 1
            return page(self.authorize, request, call)
        if (method, path) == ("GET", "/v1/sessions/confirmation"):
            call["operation"] = "Confirmation"
            with self.lock:
                self.counts["Confirmation"] += 1
            return page(self.confirmation, request, call)
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
        if body.get("grantType") == "authorization_code":
            return self.code_grant(request, body, call)
        if body.get("grantType") != "refresh_token":
            raise Fail("ValidationException", "INVALID_REQUEST", "unsupported grantType")
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
            # The service's own trouble, before the token is looked at: nothing is spent.
            failing = int(self.control.get("fail_refresh") or 0)
            if failing > 0:
                self.control["fail_refresh"] = failing - 1
                raise Fail("InternalServerException", "server_error", "stand-in trouble", 500)
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
        return self.token_answer(creds, new)

    def code_grant(self, request, body, call):
        """The authorization code's exchange: the end of a browser sign-in."""
        jwk = self.check_dpop(request, call)
        code = body.get("code") or ""
        verifier = body.get("codeVerifier") or ""
        with self.lock:
            # The verifier is the client's secret, known here only now; the code is in
            # `issued` since authorize. (Not a short or malformed one: it would match
            # anywhere.)
            if VERIFIER.fullmatch(verifier) and verifier not in self.issued:
                self.issued.append(verifier)
            grant = self.codes.get(code)
            if grant is None or grant["used"] or time.time() - grant["time"] > CODE_TTL:
                raise Fail(
                    "AccessDeniedException",
                    "AUTHCODE_EXPIRED",
                    "Authorization code is not valid or has expired",
                    401,
                )
            # Spent by its first presentation, whatever follows: a failed exchange must
            # sign in again, and a stolen code is good for one try at most.
            grant["used"] = True
        if grant["client"] != body.get("clientId"):
            raise Fail("ValidationException", "INVALID_REQUEST", "clientId does not match")
        if grant["redirect"] != body.get("redirectUri"):
            raise Fail("ValidationException", "INVALID_REQUEST", "redirectUri does not match")
        if not VERIFIER.fullmatch(verifier) or not secrets.compare_digest(
            challenge_of(verifier), grant["challenge"]
        ):
            raise Fail(
                "AccessDeniedException",
                "invalid_grant",
                "PKCE: codeVerifier does not match code_challenge",
                401,
            )
        call["pkce"] = "verified"
        arn = grant["arn"]
        account = arn.split(":")[4]
        creds = self.credentials(account)
        refresh = "rt-" + secrets.token_urlsafe(32)
        with self.lock:
            self.refresh[refresh] = {
                "client": grant["client"],
                "jwk": jwk,
                "arn": arn,
                "account": account,
                "valid": True,
            }
            self.issued.append(refresh)
        issued_at = int(time.time())
        id_token = ".".join(
            [
                b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "stand-in"}).encode()),
                b64url(
                    json.dumps(
                        {
                            "sub": arn,
                            "iss": request.host_url.rstrip("/"),
                            "aud": grant["client"],
                            "iat": issued_at,
                            "exp": issued_at + 900,
                        }
                    ).encode()
                ),
                b64url(secrets.token_bytes(32)),
            ]
        )
        return self.token_answer(creds, refresh, id_token)

    def token_answer(self, creds, refresh, id_token=None):
        """CreateOAuth2Token's answer: the credentials, for `expires_in` seconds."""
        body = {
            "accessToken": {
                "accessKeyId": creds["accessKeyId"],
                "secretAccessKey": creds["secretAccessKey"],
                "sessionToken": creds["sessionToken"],
            },
            "tokenType": "aws_sigv4",
            "expiresIn": int(self.control.get("expires_in") or 900),
            "refreshToken": refresh,
        }
        if id_token is not None:
            body["idToken"] = id_token
        return json_response(body)

    # --- what the person's browser sees

    def authorize(self, request, call):
        """The sign-in page: the person signs in (as `sign_in_arn`) at once."""
        args = request.args
        bad = lambda why: Fail("InvalidRequest", "invalid_request", why)
        client = args.get("client_id", "")
        redirect = args.get("redirect_uri", "")
        # Not secret, and what a test checks: which flow the client chose.
        call["clientId"] = client
        call["redirectUri"] = redirect
        if args.get("response_type") != "code":
            raise bad("response_type must be code")
        if client == DEFAULT_CLIENT:
            port = LOOPBACK_REDIRECT.fullmatch(redirect)
            if port is None or not 0 < int(port.group(1)) < 65536:
                raise bad("redirect_uri must be http://127.0.0.1:PORT/oauth/callback")
        elif client == CROSS_DEVICE_CLIENT:
            # The cross-device page is this service's own: nothing else may get the code.
            if redirect != request.host_url + "v1/sessions/confirmation":
                raise bad("redirect_uri must be this service's /v1/sessions/confirmation")
        else:
            raise bad("unknown client_id")
        if args.get("code_challenge_method") != "SHA-256":
            raise bad("code_challenge_method must be SHA-256")
        if args.get("scope") != "openid":
            raise bad("scope must be openid")
        state = args.get("state", "")
        if not state:
            raise bad("state is required")
        challenge = args.get("code_challenge", "")
        if not CHALLENGE.fullmatch(challenge):
            raise bad("code_challenge must be 43 base64url characters")
        with self.lock:
            denied = bool(self.control.get("deny_sign_in"))
            arn = self.control.get("sign_in_arn") or DEFAULT_ARN
            if denied:
                query = {"error": "access_denied", "state": state}
            else:
                code = "ac-" + secrets.token_urlsafe(32)
                self.codes[code] = {
                    "client": client,
                    "redirect": redirect,
                    "challenge": challenge,
                    "arn": arn,
                    "used": False,
                    "time": time.time(),
                }
                self.issued.append(code)
                query = {"code": code, "state": state}
        call["denied"] = denied
        # %20, not `+`: a callback decoding strictly (not as a form) still gets the state back.
        location = redirect + "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
        return Response("", 302, headers={"Location": location})

    def confirmation(self, request, call):
        """The cross-device page: the verification code to type into the CLI, which
        decodes it with b64decode and parse_qsl."""
        code = request.args.get("code", "")
        state = request.args.get("state", "")
        if request.args.get("error"):
            call["denied"] = True
            return Response(
                "<!doctype html><title>Sign-In stand-in</title><p>Sign-in denied.</p>\n",
                200,
                content_type="text/html; charset=utf-8",
            )
        with self.lock:
            known = code in self.codes
        if not known or not state:
            raise Fail("InvalidRequest", "invalid_request", "unknown code, or no state")
        # A query string, as the CLI parses it (parse_qsl), encoded as it decodes it.
        verification = base64.b64encode(
            urllib.parse.urlencode({"state": state, "code": code}).encode()
        ).decode()
        return Response(
            "<!doctype html><title>Sign-In stand-in</title>"
            "<p>Enter this code where you ran the sign-in:</p>"
            f'<pre id="verification-code">{verification}</pre>\n',
            200,
            content_type="text/html; charset=utf-8",
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


def page(handler, request, call):
    """A browser's page: a refusal is a plain-text 400 (its reason in the call), not an
    API error."""
    try:
        return handler(request, call)
    except Fail as fail:
        call["error"] = f"{fail.shape}/{fail.error}"
        call["reason"] = fail.message
        return Response(f"{fail.message}\n", 400, content_type="text/plain")


def challenge_of(verifier):
    """PKCE's S256 (the CLI's `SHA-256`): base64url, unpadded, of SHA-256(verifier)."""
    return b64url(hashlib.sha256(verifier.encode()).digest())


def iso(epoch):
    moment = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


if __name__ == "__main__":
    serve(StandIn, __doc__.splitlines()[0])
