"""`aws sso login` of the AWS CLI v2, against the SSO stand-in, for vault's e2e tests.

The venv's AWS CLI is v1, which has no `aws sso login`; this does what v2's does
(awscli/customizations/sso/utils.py `do_sso_login`, botocore's `SSOTokenFetcher` for the
device flow and `SSOTokenFetcherAuth` for PKCE) with boto3's sso-oidc client, approving as a
browser would, and leaves the same two files in the cache directory:

  <sha1(session name)>.json   the token: startUrl, region, accessToken, expiresAt, clientId,
                              clientSecret, registrationExpiresAt, refreshToken
  <sha1(json.dumps({"tool": "botocore", "startUrl", "region", "scopes", "session_name"},
        sort_keys=True))>.json
                              the registration: clientId, clientSecret, expiresAt, scopes,
                              and grantTypes for the PKCE flow only

    python aws_cli_sso_login.py --endpoint URL --cache-dir DIR --session NAME
        --start-url URL --region R [--scopes a,b] [--use-device-code] [--expired]

`--scopes` is `sso_registration_scopes` as configured (absent: not configured, `null` in the
registration's key). `--expired` writes an `expiresAt` an hour ago, as a token the CLI got
yesterday looks. Prints the client id (not a secret) on stdout, never a token.
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import secrets
import tempfile
import urllib.error
import urllib.parse
import urllib.request

import boto3
import botocore
from botocore.config import Config

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
REDIRECT = "http://127.0.0.1/oauth/callback"


def stamp(moment):
    # botocore's _serialize_utc_timestamp.
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def save(directory, key, value):
    # botocore's JSONFileCache: a temp file (0600, from mkstemp), then a rename.
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(value))
    os.replace(tmp, os.path.join(directory, key + ".json"))


def browser():
    # No proxy for the stand-in on loopback; redirects are not followed (the code is in one).
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    return urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())


def device_flow(oidc, args, scopes):
    register = {"clientName": f"botocore-client-{args.session}", "clientType": "public"}
    if scopes:
        register["scopes"] = scopes
    client = oidc.register_client(**register)
    registration = {"clientId": client["clientId"], "clientSecret": client["clientSecret"]}
    if scopes:
        registration["scopes"] = scopes
    device = oidc.start_device_authorization(
        clientId=client["clientId"], clientSecret=client["clientSecret"], startUrl=args.start_url
    )
    browser().open(device["verificationUriComplete"], timeout=30).read()
    token = oidc.create_token(
        grantType=DEVICE_GRANT,
        clientId=client["clientId"],
        clientSecret=client["clientSecret"],
        deviceCode=device["deviceCode"],
    )
    return client, registration, token


def pkce_flow(oidc, args, scopes):
    grant_types = ["authorization_code", "refresh_token"]
    scopes = scopes or ["sso:account:access"]
    client = oidc.register_client(
        clientName=f"botocore-client-{args.session}",
        clientType="public",
        grantTypes=grant_types,
        redirectUris=[REDIRECT],
        issuerUrl=args.start_url,
        scopes=scopes,
    )
    registration = {
        "clientId": client["clientId"],
        "clientSecret": client["clientSecret"],
        "scopes": scopes,
        "grantTypes": grant_types,
    }
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    redirect = "http://127.0.0.1:9/oauth/callback"
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": client["clientId"],
            "redirect_uri": redirect,
            "state": "s",
            "code_challenge_method": "S256",
            "scopes": " ".join(scopes),
            "code_challenge": challenge.decode().rstrip("="),
        }
    )
    try:
        browser().open(f"{args.endpoint}/authorize?{query}", timeout=30)
        raise SystemExit("the authorize page did not redirect")
    except urllib.error.HTTPError as answer:
        location = answer.headers["Location"]
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0]
    token = oidc.create_token(
        grantType="authorization_code",
        clientId=client["clientId"],
        clientSecret=client["clientSecret"],
        code=code,
        redirectUri=redirect,
        codeVerifier=verifier,
    )
    return client, registration, token


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--endpoint", "--cache-dir", "--session", "--start-url", "--region"):
        parser.add_argument(name, required=True)
    parser.add_argument("--scopes")
    parser.add_argument("--use-device-code", action="store_true")
    parser.add_argument("--expired", action="store_true")
    args = parser.parse_args()
    scopes = None
    if args.scopes is not None:
        scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    oidc = boto3.session.Session().client(
        "sso-oidc",
        endpoint_url=args.endpoint,
        config=Config(region_name=args.region, signature_version=botocore.UNSIGNED),
    )
    flow = device_flow if args.use_device_code else pkce_flow
    client, registration, token = flow(oidc, args, scopes)
    now = datetime.datetime.now(datetime.timezone.utc)
    registration_expires = datetime.datetime.fromtimestamp(
        client["clientSecretExpiresAt"], datetime.timezone.utc
    )
    registration["expiresAt"] = stamp(registration_expires)
    key_args = {
        "tool": "botocore",
        "startUrl": args.start_url,
        "region": args.region,
        "scopes": scopes,
        "session_name": args.session,
    }
    registration_key = hashlib.sha1(
        json.dumps(key_args, sort_keys=True).encode("utf-8")
    ).hexdigest()
    save(args.cache_dir, registration_key, registration)
    expires = now + datetime.timedelta(seconds=token["expiresIn"])
    if args.expired:
        expires = now - datetime.timedelta(hours=1)
    cached = {
        "startUrl": args.start_url,
        "region": args.region,
        "accessToken": token["accessToken"],
        "expiresAt": stamp(expires),
        "clientId": client["clientId"],
        "clientSecret": client["clientSecret"],
        "registrationExpiresAt": stamp(registration_expires),
    }
    if "refreshToken" in token:
        cached["refreshToken"] = token["refreshToken"]
    save(args.cache_dir, hashlib.sha1(args.session.encode("utf-8")).hexdigest(), cached)
    print(client["clientId"])


if __name__ == "__main__":
    main()
