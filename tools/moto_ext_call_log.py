"""A call log of the Query-protocol AWS calls moto serves, so a test can
assert the ORDER of calls (moto keeps state, not history).

It answers nothing itself: `intercept` records the call and returns None, so
moto handles every request as before. Recorded are the calls of the
Query-protocol services whose order steward's tests check (EC2, Auto
Scaling, Elastic Load Balancing), each as {"service", "action", "account",
"region", "params"} where params are the request's form fields (at most 20,
values cut at 200 characters). The log keeps the last 5000 calls.

Test endpoints (never reached by steward itself):

    GET  /_steward/calls          the log, oldest first (JSON list)
    POST /_steward/calls/clear    empties it
"""

import json
import re
import threading

from werkzeug.wrappers import Response

LOCK = threading.Lock()
CALLS = []
MAX_CALLS = 5000
SERVICES = {"ec2", "autoscaling", "elasticloadbalancing"}

_SCOPE = re.compile(r"Credential=(?P<key>[^/]+)/[^/]+/(?P<region>[^/]+)/(?P<service>[^/]+)/")


def _account_of(access_key):
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key)


def intercept(request):
    scope = _SCOPE.search(request.headers.get("Authorization", ""))
    if not scope or scope.group("service") not in SERVICES:
        return None
    form = request.form
    action = form.get("Action")
    if not action:
        return None
    params = {}
    for key in list(form.keys())[:20]:
        if key not in ("Action", "Version"):
            params[key] = form.get(key, "")[:200]
    entry = {
        "service": scope.group("service"),
        "action": action,
        "account": _account_of(scope.group("key")),
        "region": scope.group("region"),
        "params": params,
    }
    with LOCK:
        CALLS.append(entry)
        del CALLS[:-MAX_CALLS]
    return None


def calls(request):
    with LOCK:
        body = json.dumps(CALLS)
    return Response(body, content_type="application/json")


def clear(request):
    with LOCK:
        CALLS.clear()
    return Response("{}", content_type="application/json")


ROUTES = {
    "/_steward/calls": calls,
    "/_steward/calls/clear": clear,
}
