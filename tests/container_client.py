"""A bare client of `vault serve` for the container tests, run inside a test's network
namespace (where the rig's own HTTP client, which talks to 127.0.0.1 only, cannot go).

    fetch URL [TOKEN_FILE]   one GET; prints {"status": N, "body": "..."} as JSON
    hold URL N               opens N connections that never send a request, prints
                             "holding N" once they are all open, then waits to be killed

The real SDK clients (the AWS CLI, boto3, aws-sdk-rust) are what the tests check the
broker with; this only covers what they cannot do: a request without a token, or with a
chosen path, and a neighbour that holds connections open.
"""

import json
import resource
import socket
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit


def fetch(url, token_file=None):
    request = urllib.request.Request(url)
    if token_file:
        with open(token_file) as f:
            request.add_header("Authorization", f.read())
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            status, body = answer.status, answer.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    print(json.dumps({"status": status, "body": body.decode()}))


def hold(url, count):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, count + 64)), hard))
    parts = urlsplit(url)
    held = []
    for _ in range(count):
        s = socket.create_connection((parts.hostname, parts.port), timeout=10)
        held.append(s)
    print(f"holding {len(held)}", flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    if sys.argv[1] == "fetch":
        fetch(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    elif sys.argv[1] == "hold":
        hold(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
