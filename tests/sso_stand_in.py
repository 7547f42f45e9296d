"""A stand-in for AWS SSO OIDC and the SSO portal (IAM Identity Center), for vault's e2e tests.

It is a stand-in because no emulator implements either service: moto lists both SSO OIDC and
SSO as unimplemented. It speaks the real restJson1 wire format of aws-sdk-ssooidc and
aws-sdk-sso (the same shapes as botocore's `sso-oidc` and `sso` models), so the SDKs parse its
answers, errors included, as they would the real service's.

One server answers both services: tests point AWS_ENDPOINT_URL_SSO_OIDC and
AWS_ENDPOINT_URL_SSO at the same base URL.

    python sso_stand_in.py --port N --moto http://127.0.0.1:M --state-file PATH

OIDC: POST /client/register, POST /device_authorization, POST /token, and what a browser
visits: GET /device?user_code=X (approves) and GET /authorize?... (PKCE, answers a 302 to the
loopback redirect URI). Portal: GET /federation/credentials, GET /assignment/accounts,
GET /assignment/roles, POST /logout, all with the `x-amz-sso_bearer_token` header. Role
credentials are real moto credentials, from moto's STS AssumeRole.

Test only: POST /_stand_in/control merges a JSON object into the control settings, and
GET /_stand_in/state answers the call counts and the calls in order; the same state is
written to --state-file after every request. GET /_stand_in/issued answers every token and
client secret handed out (for the tests' no-secret-leaks checks; never in the state file). Control keys (a null value restores the default):
  accounts               [{"accountId","accountName","emailAddress","roles":[...]}]
                         (default: 111111111111 "Lab" with ReadOnly and Admin)
  page_size              portal page size, capped by max_result (default 2)
  registration_ttl       seconds to clientSecretExpiresAt (default 90 days); enforced
  access_token_ttl       expiresIn of access tokens (default 3600); enforced by the portal
  no_refresh_token       issue no refresh tokens
  device_code_ttl        expiresIn of device codes (default 600)
  device_interval        interval of device authorizations (default 1)
  deny_device            the next /device visits deny instead of approving
  deny_authorize         /authorize redirects with error=access_denied (the person denied)
  allowed_scopes         scopes /authorize accepts (default: any); others: error=invalid_scope
  slow_down_once         the next device-code poll gets SlowDownException (re-arms when set)
  refresh_invalid_grant  a count: refuse that many refreshes, revoking the refresh token
  refuse_clients         client ids answered InvalidClientException on CreateToken (every
                         grant, refresh included) and StartDeviceAuthorization, as for a
                         revoked registration (the ids are in the RegisterClient calls;
                         "*" refuses every client, new ones included)
  portal_unauthorized    a count: that many portal calls get 401, invalidating the token
  role_credentials_ttl   cap on role credentials' expiration, seconds from now

As the service does: refresh tokens rotate (every refresh answers a new one, and the old one
is refused with invalid_grant from then on), and a client registered with grantTypes may use
only those (UnauthorizedClientException); one registered without may use the device code and
refresh grants, as the AWS CLI's device-flow clients do.

Binds 127.0.0.1 only. Logs method, path (never the query) and status to stderr: no token,
code, secret or user code is ever logged or put in the state.
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import secrets
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# The counts a test may ask for; all present (at zero) from the start.
OPERATIONS = [
    "RegisterClient",
    "StartDeviceAuthorization",
    "CreateToken",
    "CreateToken.refresh_token",
    "CreateToken.authorization_code",
    "CreateToken.device_code",
    "Authorize",
    "DeviceVisit",
    "GetRoleCredentials",
    "ListAccounts",
    "ListAccountRoles",
    "Logout",
]
GRANT_COUNT = {
    DEVICE_GRANT: "CreateToken.device_code",
    "authorization_code": "CreateToken.authorization_code",
    "refresh_token": "CreateToken.refresh_token",
}
# HTTP status of each error shape, as in the service models.
STATUS = {
    "InvalidClientException": 401,
    "UnauthorizedException": 401,
    "ForbiddenException": 403,
    "ResourceNotFoundException": 404,
    "InternalServerException": 500,
}
DEFAULT_ACCOUNTS = [
    {
        "accountId": "111111111111",
        "accountName": "Lab",
        "emailAddress": "lab@example.com",
        "roles": ["ReadOnly", "Admin"],
    }
]
ROLE_SESSION_NAME = "sso-user"
# moto without auth accepts any signature, but routes by the credential scope's service.
FAKE_STS_AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20250101/us-east-1/sts/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


class Fail(Exception):
    """An error answer: the modelled error `code` (e.g. `InvalidGrantException`)."""

    def __init__(self, code, description, status=None):
        super().__init__(code)
        self.code = code
        self.description = description
        self.status = status or STATUS.get(code, 400)


def snake(code):
    """`AuthorizationPendingException` -> `authorization_pending`, OAuth's error names."""
    name = code[: -len("Exception")] if code.endswith("Exception") else code
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def json_response(body, status=200, headers=None):
    return Response(
        json.dumps(body), status=status, headers=headers, content_type="application/json"
    )


def error_response(fail, portal=False):
    # OIDC error shapes carry `error`/`error_description`, the portal's carry `message`;
    # both SDKs take the code from x-amzn-ErrorType.
    if portal:
        body = {"message": fail.description}
    else:
        body = {"error": snake(fail.code), "error_description": fail.description}
    return json_response(body, fail.status, {"x-amzn-ErrorType": fail.code})


def now():
    return time.time()


class StandIn:
    """All state, behind one lock: the server is threaded."""

    def __init__(self, moto, state_file):
        self.moto = moto.rstrip("/")
        self.state_file = state_file
        self.lock = threading.Lock()
        self.control = {}
        self.slow_down_used = False
        self.counts = {op: 0 for op in OPERATIONS}
        self.calls = []
        self.clients = {}  # clientId -> {secret, expires, ...}
        self.devices = {}  # deviceCode -> {client, user_code, expires, status}
        self.user_codes = {}  # userCode -> deviceCode
        self.codes = {}  # authorization code -> {client, redirect_uri, challenge, scopes}
        self.access = {}  # accessToken -> {client, session, expires, valid}
        self.refresh = {}  # refreshToken -> {client, session, valid}
        self.write_state()

    # --- bookkeeping

    def setting(self, name, default=None):
        value = self.control.get(name)
        return default if value is None else value

    def take(self, name):
        """Uses one of a count setting (`refresh_invalid_grant`, `portal_unauthorized`)."""
        left = int(self.control.get(name) or 0)
        if left <= 0:
            return False
        self.control[name] = left - 1
        return True

    def count(self, op):
        self.counts[op] = self.counts.get(op, 0) + 1

    def state(self):
        return {"counts": dict(self.counts), "calls": list(self.calls)}

    def write_state(self):
        write_json(self.state_file, self.state())

    # --- the WSGI app

    def __call__(self, environ, start_response):
        request = Request(environ)
        call = {}
        try:
            response = self.dispatch(request, call)
        except Exception as e:  # a bug here must still answer, and say what on stderr
            print(f"stand-in error: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            response = error_response(Fail("InternalServerException", "stand-in error"))
        with self.lock:
            if call.get("operation"):
                call["status"] = response.status_code
                error = response.headers.get("x-amzn-ErrorType")
                if error:
                    call["error"] = error
                self.calls.append(call)
            self.write_state()
        return response(environ, start_response)

    def dispatch(self, request, call):
        method, path = request.method, request.path
        routes = {
            ("POST", "/client/register"): ("RegisterClient", self.register_client),
            ("POST", "/device_authorization"): (
                "StartDeviceAuthorization",
                self.start_device_authorization,
            ),
            ("POST", "/token"): ("CreateToken", self.create_token),
            ("GET", "/device"): ("DeviceVisit", self.device_visit),
            ("GET", "/authorize"): ("Authorize", self.authorize),
            ("GET", "/federation/credentials"): ("GetRoleCredentials", self.role_credentials),
            ("GET", "/assignment/accounts"): ("ListAccounts", self.list_accounts),
            ("GET", "/assignment/roles"): ("ListAccountRoles", self.list_account_roles),
            ("POST", "/logout"): ("Logout", self.logout),
        }
        if (method, path) == ("POST", "/_stand_in/control"):
            settings = json.loads(request.get_data() or b"{}")
            with self.lock:
                self.control.update(settings)
                if "slow_down_once" in settings:
                    self.slow_down_used = False
            return json_response({})
        if (method, path) == ("GET", "/_stand_in/state"):
            with self.lock:
                return json_response(self.state())
        if (method, path) == ("GET", "/_stand_in/issued"):
            # Every secret handed out, so a test can check that none shows up where it must
            # not (never in the state file).
            with self.lock:
                return json_response(
                    {
                        "access_tokens": list(self.access),
                        "refresh_tokens": list(self.refresh),
                        "client_secrets": [c["secret"] for c in self.clients.values()],
                    }
                )
        if (method, path) not in routes:
            return Response("not found\n", 404, content_type="text/plain")
        operation, handler = routes[(method, path)]
        call["operation"] = operation
        with self.lock:
            self.count(operation)
        portal = path.startswith(("/federation/", "/assignment/", "/logout"))
        try:
            return handler(request, call)
        except Fail as fail:
            if path in ("/device", "/authorize"):
                # A browser's pages: a plain-text 400, whatever the error.
                return Response(f"{fail.description}\n", 400, content_type="text/plain")
            return error_response(fail, portal=portal)

    # --- OIDC

    @staticmethod
    def body(request):
        try:
            body = json.loads(request.get_data() or b"{}")
        except ValueError:
            raise Fail("InvalidRequestException", "body is not JSON")
        if not isinstance(body, dict):
            raise Fail("InvalidRequestException", "body is not a JSON object")
        return body

    def client(self, client_id, client_secret, grant):
        """The registered client, if the id and secret match, it has not expired or been
        refused, and it was registered for `grant`."""
        client = self.clients.get(client_id)
        if client is None or not secrets.compare_digest(client["secret"], client_secret or ""):
            raise Fail("InvalidClientException", "Invalid client")
        if client["expires"] <= now():
            raise Fail("InvalidClientException", "Client registration has expired")
        refused = self.setting("refuse_clients", [])
        if "*" in refused or client_id in refused:
            raise Fail("InvalidClientException", "Client registration is no longer valid")
        allowed = client["grant_types"] or [DEVICE_GRANT, "refresh_token"]
        if grant in GRANT_COUNT and grant not in allowed:
            raise Fail(
                "UnauthorizedClientException", "Client is not authorized for this grant type"
            )
        return client

    def register_client(self, request, call):
        body = self.body(request)
        for name in ("clientName", "scopes", "grantTypes", "redirectUris", "issuerUrl"):
            if name in body:
                call[name] = body[name]
        if not body.get("clientName") or not body.get("clientType"):
            raise Fail("InvalidRequestException", "clientName and clientType are required")
        if body["clientType"] != "public":
            raise Fail("InvalidClientMetadataException", "clientType must be public")
        issued = int(now())
        with self.lock:
            ttl = int(self.setting("registration_ttl", 90 * 24 * 3600))
            client_id = "client-" + secrets.token_urlsafe(16)
            secret = "secret-" + secrets.token_urlsafe(32)
            self.clients[client_id] = {
                "secret": secret,
                "expires": issued + ttl,
                "name": body["clientName"],
                "grant_types": body.get("grantTypes") or [],
                "scopes": body.get("scopes") or [],
            }
        # Not a secret (it is in the authorize URL); tests name it in refuse_clients.
        call["clientId"] = client_id
        return json_response(
            {
                "clientId": client_id,
                "clientSecret": secret,
                "clientIdIssuedAt": issued,
                "clientSecretExpiresAt": issued + ttl,
            }
        )

    def start_device_authorization(self, request, call):
        body = self.body(request)
        if "startUrl" in body:
            call["startUrl"] = body["startUrl"]
        base = request.host_url.rstrip("/")
        call["clientId"] = body.get("clientId")
        with self.lock:
            self.client(body.get("clientId"), body.get("clientSecret"), DEVICE_GRANT)
            if not body.get("startUrl"):
                raise Fail("InvalidRequestException", "startUrl is required")
            ttl = int(self.setting("device_code_ttl", 600))
            interval = int(self.setting("device_interval", 1))
            device_code = "device-" + secrets.token_urlsafe(24)
            letters = "BCDFGHJKLMNPQRSTVWXZ"
            user_code = "-".join(
                "".join(secrets.choice(letters) for _ in range(4)) for _ in range(2)
            )
            self.devices[device_code] = {
                "client": body["clientId"],
                "user_code": user_code,
                "expires": now() + ttl,
                "status": "pending",
            }
            self.user_codes[user_code] = device_code
        return json_response(
            {
                "deviceCode": device_code,
                "userCode": user_code,
                "verificationUri": f"{base}/device",
                "verificationUriComplete": f"{base}/device?"
                + urllib.parse.urlencode({"user_code": user_code}),
                "expiresIn": ttl,
                "interval": interval,
            }
        )

    def device_visit(self, request, call):
        user_code = request.args.get("user_code", "")
        with self.lock:
            device_code = self.user_codes.get(user_code)
            device = self.devices.get(device_code)
            if device is None:
                raise Fail("InvalidRequestException", "unknown user code")
            if device["expires"] <= now():
                raise Fail("ExpiredTokenException", "this code has expired")
            denied = bool(self.setting("deny_device", False))
            if device["status"] == "pending":
                device["status"] = "denied" if denied else "approved"
            status = device["status"]
        page = (
            "<!doctype html><title>SSO stand-in</title>"
            f"<p>Request {'denied' if status == 'denied' else 'approved'}. "
            "You can close this window.</p>\n"
        )
        return Response(page, 200, content_type="text/html; charset=utf-8")

    def authorize(self, request, call):
        args = request.args
        for name, key in (("scopes", "scopes"), ("redirect_uri", "redirectUri")):
            if name in args:
                call[key] = args[name]
        if args.get("response_type") != "code":
            raise Fail("InvalidRequestException", "response_type must be code")
        if args.get("code_challenge_method") != "S256":
            raise Fail("InvalidRequestException", "code_challenge_method must be S256")
        redirect_uri = args.get("redirect_uri", "")
        if not redirect_uri or not args.get("code_challenge") or "state" not in args:
            raise Fail(
                "InvalidRequestException", "redirect_uri, state and code_challenge are required"
            )
        separator = "&" if "?" in redirect_uri else "?"
        allowed = self.setting("allowed_scopes")
        asked = args.get("scopes", "").split()
        refused = [scope for scope in asked if allowed is not None and scope not in allowed]
        if refused:
            query = urllib.parse.urlencode(
                {
                    "error": "invalid_scope",
                    "error_description": "Invalid scope: " + " ".join(refused),
                    "state": args["state"],
                },
                quote_via=urllib.parse.quote,
            )
            return Response("", 302, headers={"Location": f"{redirect_uri}{separator}{query}"})
        if self.setting("deny_authorize", False):
            query = urllib.parse.urlencode(
                {
                    "error": "access_denied",
                    "error_description": "The user denied the request",
                    "state": args["state"],
                },
                quote_via=urllib.parse.quote,
            )
            return Response("", 302, headers={"Location": f"{redirect_uri}{separator}{query}"})
        with self.lock:
            client = self.clients.get(args.get("client_id", ""))
            if client is None or client["expires"] <= now():
                raise Fail("InvalidClientException", "unknown client_id")
            code = "code-" + secrets.token_urlsafe(24)
            self.codes[code] = {
                "client": args["client_id"],
                "redirect_uri": redirect_uri,
                "challenge": args["code_challenge"],
                "scopes": args.get("scopes", ""),
            }
        # %20, not `+`: a callback decoding strictly (not as a form) still gets the state back.
        query = urllib.parse.urlencode(
            {"code": code, "state": args["state"]}, quote_via=urllib.parse.quote
        )
        return Response("", 302, headers={"Location": f"{redirect_uri}{separator}{query}"})

    def create_token(self, request, call):
        body = self.body(request)
        grant = body.get("grantType", "")
        call["grantType"] = grant
        call["clientId"] = body.get("clientId")
        with self.lock:
            self.count(GRANT_COUNT.get(grant, f"CreateToken.{grant}"))
            client = self.client(body.get("clientId"), body.get("clientSecret"), grant)
            if grant == DEVICE_GRANT:
                session = self.device_grant(body)
            elif grant == "authorization_code":
                session = self.code_grant(body)
            elif grant == "refresh_token":
                session = self.refresh_grant(body)
            else:
                raise Fail("UnsupportedGrantTypeException", "unsupported grant type")
            return json_response(self.issue(body["clientId"], client, session))

    def device_grant(self, body):
        device = self.devices.get(body.get("deviceCode") or "")
        if device is None or device["client"] != body["clientId"]:
            raise Fail("InvalidGrantException", "Invalid device code provided")
        if device["expires"] <= now():
            raise Fail("ExpiredTokenException", "Device code has expired")
        if self.setting("slow_down_once", False) and not self.slow_down_used:
            self.slow_down_used = True
            raise Fail("SlowDownException", "Client is polling too quickly")
        if device["status"] == "denied":
            raise Fail("AccessDeniedException", "Authorization was denied")
        if device["status"] == "pending":
            raise Fail("AuthorizationPendingException", "Authorization is still pending")
        if device["status"] == "used":
            raise Fail("InvalidGrantException", "Device code has already been used")
        device["status"] = "used"
        return secrets.token_hex(8)

    def code_grant(self, body):
        grant = self.codes.pop(body.get("code") or "", None)  # single use
        if grant is None or grant["client"] != body["clientId"]:
            raise Fail("InvalidGrantException", "Invalid authorization code")
        if grant["redirect_uri"] != body.get("redirectUri"):
            raise Fail("InvalidGrantException", "redirectUri does not match")
        verifier = (body.get("codeVerifier") or "").encode()
        digest = hashlib.sha256(verifier).digest()
        challenge = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        if not verifier or not secrets.compare_digest(challenge, grant["challenge"]):
            raise Fail("InvalidGrantException", "codeVerifier does not match code_challenge")
        return secrets.token_hex(8)

    def refresh_grant(self, body):
        token = self.refresh.get(body.get("refreshToken") or "")
        if token is None or not token["valid"] or token["client"] != body["clientId"]:
            raise Fail("InvalidGrantException", "Invalid refresh token provided")
        if self.take("refresh_invalid_grant"):
            token["valid"] = False
            raise Fail("InvalidGrantException", "Invalid refresh token provided")
        if not self.setting("no_refresh_token", False):
            # Rotation: the answer carries a new refresh token, so this one is done.
            token["valid"] = False
        return token["session"]

    def issue(self, client_id, client, session):
        """A new access token (and refresh token) in `session`: logout ends the session."""
        ttl = int(self.setting("access_token_ttl", 3600))
        access = "aoa-" + secrets.token_urlsafe(32)
        self.access[access] = {
            "client": client_id,
            "session": session,
            "expires": now() + ttl,
            "valid": True,
        }
        answer = {"accessToken": access, "tokenType": "Bearer", "expiresIn": ttl}
        if not self.setting("no_refresh_token", False):
            refresh = "aor-" + secrets.token_urlsafe(32)
            self.refresh[refresh] = {"client": client_id, "session": session, "valid": True}
            answer["refreshToken"] = refresh
        return answer

    # --- portal

    def bearer(self, request):
        """The access token's record; under the lock."""
        token = request.environ.get("stand_in.bearer") or ""
        record = self.access.get(token)
        if self.take("portal_unauthorized"):
            if record is not None:
                record["valid"] = False
            record = None
        if record is None or not record["valid"] or record["expires"] <= now():
            raise Fail("UnauthorizedException", "Session token not found or invalid")
        return record

    def accounts(self):
        return self.setting("accounts", DEFAULT_ACCOUNTS)

    def page(self, request, kind, items):
        """One page of `items` and the next token, if any."""
        size = int(self.setting("page_size", 2))
        if request.args.get("max_result"):
            try:
                size = min(size, int(request.args["max_result"]))
            except ValueError:
                raise Fail("InvalidRequestException", "max_result is not a number")
        size = max(size, 1)
        token = request.args.get("next_token")
        start = 0
        if token:
            prefix = f"{kind}-"
            if not token.startswith(prefix) or not token[len(prefix):].isdigit():
                raise Fail("InvalidRequestException", "Invalid next token")
            start = int(token[len(prefix):])
        chunk = items[start : start + size]
        following = start + size
        return chunk, (f"{kind}-{following}" if following < len(items) else None)

    def list_accounts(self, request, call):
        with self.lock:
            self.bearer(request)
            listed = [
                {k: a[k] for k in ("accountId", "accountName", "emailAddress") if k in a}
                for a in self.accounts()
            ]
            chunk, token = self.page(request, "accounts", listed)
        answer = {"accountList": chunk}
        if token:
            answer["nextToken"] = token
        return json_response(answer)

    def list_account_roles(self, request, call):
        account_id = request.args.get("account_id", "")
        call["accountId"] = account_id
        with self.lock:
            self.bearer(request)
            roles = [
                {"roleName": role, "accountId": account_id}
                for a in self.accounts()
                if a.get("accountId") == account_id
                for role in a.get("roles", [])
            ]
            chunk, token = self.page(request, f"roles.{account_id}", roles)
        answer = {"roleList": chunk}
        if token:
            answer["nextToken"] = token
        return json_response(answer)

    def role_credentials(self, request, call):
        account_id = request.args.get("account_id", "")
        role_name = request.args.get("role_name", "")
        call["accountId"] = account_id
        call["roleName"] = role_name
        with self.lock:
            self.bearer(request)
            assigned = any(
                a.get("accountId") == account_id and role_name in a.get("roles", [])
                for a in self.accounts()
            )
            ttl = self.setting("role_credentials_ttl")
        if not account_id or not role_name:
            raise Fail("InvalidRequestException", "account_id and role_name are required")
        if not assigned:
            # What the real portal answers (unmodelled in aws-sdk-sso).
            raise Fail("ForbiddenException", "No access")
        creds = self.assume_role(f"arn:aws:iam::{account_id}:role/{role_name}")
        expiration = creds["expiration"]
        if ttl is not None:
            expiration = min(expiration, int((now() + int(ttl)) * 1000))
        creds["expiration"] = expiration
        return json_response({"roleCredentials": creds})

    def assume_role(self, role_arn):
        """Real credentials for `role_arn` from moto's STS; expiration in epoch ms."""
        creds = moto_assume_role(self.moto, role_arn, ROLE_SESSION_NAME)
        if creds is None:
            raise Fail("InternalServerException", "could not get role credentials")
        return creds

    def logout(self, request, call):
        with self.lock:
            record = self.bearer(request)
            session = record["session"]
            for table in (self.access, self.refresh):
                for token in table.values():
                    if token["session"] == session:
                        token["valid"] = False
        return Response(b"", 200)


def write_json(path, value):
    """`value` as JSON into `path`: a temp file then a rename, so a reader never sees half a
    file. Shared with the Sign-In stand-in."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".stand-in-state-", dir=directory)
    with os.fdopen(fd, "w") as f:
        json.dump(value, f)
    os.replace(tmp, path)


def moto_assume_role(moto, role_arn, session_name):
    """Real credentials for `role_arn` from moto's STS at `moto` (the base URL):
    {"accessKeyId", "secretAccessKey", "sessionToken", "expiration" (epoch ms)}, or None
    (said on stderr, without a secret) when moto gives none. Shared with the Sign-In
    stand-in."""
    form = urllib.parse.urlencode(
        {
            "Action": "AssumeRole",
            "Version": "2011-06-15",
            "RoleArn": role_arn,
            "RoleSessionName": session_name,
            "DurationSeconds": "3600",
        }
    ).encode()
    req = urllib.request.Request(
        moto + "/",
        data=form,
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "Authorization": FAKE_STS_AUTH,
        },
    )
    # No proxy for moto on loopback, whatever the environment says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as answer:
            xml = answer.read()
    except (urllib.error.URLError, OSError) as e:
        print(f"moto AssumeRole failed: {type(e).__name__}", file=sys.stderr, flush=True)
        return None
    fields = {}
    for element in ET.fromstring(xml).iter():
        fields[element.tag.rsplit("}", 1)[-1]] = (element.text or "").strip()
    try:
        return {
            "accessKeyId": fields["AccessKeyId"],
            "secretAccessKey": fields["SecretAccessKey"],
            "sessionToken": fields["SessionToken"],
            "expiration": iso_to_ms(fields["Expiration"]),
        }
    except (KeyError, ValueError):
        print("moto AssumeRole answer unreadable", file=sys.stderr, flush=True)
        return None


def iso_to_ms(text):
    """moto's `2025-01-01T00:00:00Z` (fraction optional) as epoch milliseconds."""
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return int(moment.timestamp() * 1000)


class Handler(WSGIRequestHandler):
    """Keeps the bearer header werkzeug drops, and logs without query strings."""

    def make_environ(self):
        environ = super().make_environ()
        # werkzeug skips headers with `_` in the name (against spoofing CGI variables), but
        # the portal's token comes in `x-amz-sso_bearer_token`.
        environ["stand_in.bearer"] = self.headers.get("x-amz-sso_bearer_token", "")
        return environ

    def log_request(self, code="-", size="-"):
        path = urllib.parse.urlsplit(self.path).path
        status = getattr(code, "value", code)
        print(f"{self.command} {path} {status}", file=sys.stderr, flush=True)


def serve(make_app, description):
    """Runs a stand-in's WSGI app (`make_app(moto, state_file)`) on 127.0.0.1 and the port
    its command line names, until stopped. Shared with the Sign-In stand-in."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--moto", required=True, help="moto_server's base URL (STS)")
    parser.add_argument("--state-file", required=True)
    args = parser.parse_args()
    app = make_app(args.moto, args.state_file)
    server = make_server("127.0.0.1", args.port, app, threaded=True, request_handler=Handler)
    print(f"ready {server.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(StandIn, __doc__.splitlines()[0])
