"""Schemathesis hooks for the API fuzz test (tests/tests/api_fuzz_end_to_end.rs).

- `no_planted_secret_in_response`, a check: no response, headers or body, holds any
  of the secrets the test planted (provider keys, webhook and signing secrets, the
  caller's API key).
- A guard on every request sent: a connect request may name only a connector whose
  provider the test runs a fake of on loopback. Any other connector would make
  Patchbay validate the generated credentials against the real provider, or at a
  URL taken from the generated form, so such a request is sent for an unknown
  connector id instead (it still exercises the refusal).

The test passes what these need in the environment:
PATCHBAY_FUZZ_CANARIES (one secret a line), PATCHBAY_FUZZ_CONNECTORS (every
registered connector id, comma-separated) and PATCHBAY_FUZZ_FAKED (the ids that may
be connected, comma-separated).
"""

import os

import schemathesis

CANARIES = [
    line.strip()
    for line in os.environ.get("PATCHBAY_FUZZ_CANARIES", "").splitlines()
    if line.strip()
]
REGISTERED = {
    name.strip()
    for name in os.environ.get("PATCHBAY_FUZZ_CONNECTORS", "").split(",")
    if name.strip()
}
FAKED = {
    name.strip()
    for name in os.environ.get("PATCHBAY_FUZZ_FAKED", "").split(",")
    if name.strip()
}

if not CANARIES or not REGISTERED or not FAKED:
    raise RuntimeError(
        "set PATCHBAY_FUZZ_CANARIES, PATCHBAY_FUZZ_CONNECTORS and PATCHBAY_FUZZ_FAKED"
    )


@schemathesis.check
def no_planted_secret_in_response(ctx, response, case):
    """Fail when a response shows a secret planted before the run."""
    texts = [response.content or b""]
    for name, values in response.headers.items():
        texts.extend(f"{name}: {value}".encode() for value in values)
    for canary in CANARIES:
        needle = canary.encode()
        if any(needle in text for text in texts):
            raise AssertionError(
                f"{case.operation.label} answered with a planted secret "
                f"({canary[:6]}…, {len(canary)} characters)"
            )


@schemathesis.hook
def before_call(context, case, kwargs):
    """Send connect requests for providers without a local fake to no connector."""
    operation = case.operation
    if operation.method.upper() != "POST" or operation.path != "/api/connections":
        return
    body = case.body
    if not isinstance(body, dict):
        return
    connector = body.get("connector")
    if isinstance(connector, str) and connector in REGISTERED and connector not in FAKED:
        body["connector"] = f"unfaked-{connector}"
