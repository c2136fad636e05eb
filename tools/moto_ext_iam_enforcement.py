"""IAM enforcement on demand, and a record of every decision, for the
least-privilege test.

moto 5.2.5 can authorize requests against the caller's IAM policies, but
only from start-up (`INITIAL_NO_AUTH_ACTION_COUNT`), and it says nothing
about what it checked. The least-privilege test creates its IAM users and
keys first, then switches enforcement on here, runs each function with a
user holding its template's actions, and reads back the decisions: every
call a function made must have been allowed, and the actions that never
appear were not checked by moto (calls answered by another extension, and
operations moto does not authorize, such as most REST-JSON GETs).

moto evaluates identity policies by action and (for S3, SQS, IAM and STS)
resource; it evaluates no conditions. Signatures are not verified: moto
rebuilds the signed request from the parsed form and re-encodes it, so a
correctly signed SNS or SQS body with JSON in it fails its comparison.
The access key must still belong to an IAM user (or an assumed role).

Test endpoints:
    POST /_steward/iam/enforce     {"enabled": true|false}; on: every later
                                   request is authenticated and authorized
    GET  /_steward/iam/decisions   [{"key": "<access key id>", "action":
                                   "<service:Action>", "resource": "...",
                                   "allowed": true|false}, ...] since start
"""

import json
import threading

from werkzeug.wrappers import Response

LOCK = threading.Lock()
DECISIONS = []


def install():
    from moto.iam.access_control import IAMRequestBase

    original = IAMRequestBase.check_action_permitted
    IAMRequestBase.check_signature = lambda self: None

    def recorded(self, resource):
        entry = {
            "key": getattr(getattr(self, "_access_key", None), "_access_key_id", None)
            or _key_from_headers(self._headers),
            "action": self._action,
            "resource": resource,
            "allowed": False,
        }
        try:
            original(self, resource)
            entry["allowed"] = True
        finally:
            with LOCK:
                DECISIONS.append(entry)

    IAMRequestBase.check_action_permitted = recorded


def _key_from_headers(headers):
    authorization = headers.get("Authorization", "")
    start = authorization.find("Credential=")
    if start < 0:
        return None
    return authorization[start + len("Credential="):].split("/", 1)[0]


def enforce(request):
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    body = json.loads(request.get_data() or b"{}")
    if body.get("enabled"):
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    else:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
    ActionAuthenticatorMixin.request_count = 0
    return Response("{}", content_type="application/json")


def decisions(_request):
    with LOCK:
        body = list(DECISIONS)
    return Response(json.dumps(body), content_type="application/json")


ROUTES = {
    "/_steward/iam/enforce": enforce,
    "/_steward/iam/decisions": decisions,
}
