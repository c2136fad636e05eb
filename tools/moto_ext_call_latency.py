"""Injected latency, and a count of every AWS call moto is asked.

Latency: the organization-scale benchmark (`steward-scale`) needs the
network time of real AWS, where each call takes tens of milliseconds, so
that the scheduler's bounded concurrency is what makes a sweep over many
accounts and regions fast. moto answers in about a millisecond; this
extension sleeps before every AWS request (never before the launcher's own
`/_steward/` and `/moto-api/` endpoints) in the request's own server thread,
so concurrent calls wait concurrently, as they do against AWS.

Count: every AWS request, per `service.Operation` (the service from the
SigV4 credential scope; the operation from `X-Amz-Target`, the Query
protocol's `Action`, or `METHOD /path` for REST services), so the benchmark
can report the calls of one invocation against the minimum it needs.

The file name sorts first among the extensions, so it sees (and delays)
every call, also those another extension answers itself. It answers
nothing: `intercept` returns None after the wait.

Test endpoints (never reached by steward itself):
    POST   /_steward/latency   {"latency_ms": 50}  every later AWS call waits 50 ms
    POST   /_steward/latency   {"latency_ms": 0}   (or DELETE) no added latency
    GET    /_steward/latency   {"latency_ms": N}
    GET    /_steward/calls/count          {"total": N, "by_operation": {"ec2.StopInstances": n, ...}}
    POST   /_steward/calls/count/clear    resets the count
"""

import json
import re
import threading
import time
from urllib.parse import parse_qs

from werkzeug.wrappers import Response

LOCK = threading.Lock()
STATE = {"latency_ms": 0}
COUNT = {}

_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/(?P<service>[^/]+)/")


def _operation(request):
    target = request.headers.get("X-Amz-Target", "")
    if target:
        return target.split(".")[-1]
    content_type = request.headers.get("Content-Type", "")
    if "x-www-form-urlencoded" in content_type:
        body = request.get_data(cache=True).decode("utf-8", "replace")
        action = parse_qs(body).get("Action")
        if action:
            return action[0]
    action = request.args.get("Action")
    if action:
        return action
    return f"{request.method} {request.path}"


def intercept(request):
    if request.path.startswith("/_steward/") or request.path.startswith("/moto-api/"):
        return None
    scope = _SCOPE.search(request.headers.get("Authorization", ""))
    service = scope.group("service") if scope else "unsigned"
    key = f"{service}.{_operation(request)}"
    with LOCK:
        COUNT[key] = COUNT.get(key, 0) + 1
        latency = STATE["latency_ms"]
    if latency > 0:
        time.sleep(latency / 1000.0)
    return None


def latency(request):
    if request.method == "POST":
        spec = json.loads(request.get_data() or b"{}")
        with LOCK:
            STATE["latency_ms"] = max(0, int(spec.get("latency_ms", 0)))
    elif request.method == "DELETE":
        with LOCK:
            STATE["latency_ms"] = 0
    with LOCK:
        return Response(json.dumps(STATE), content_type="application/json")


def count(request):
    with LOCK:
        body = {"total": sum(COUNT.values()), "by_operation": dict(sorted(COUNT.items()))}
    return Response(json.dumps(body), content_type="application/json")


def clear(request):
    with LOCK:
        COUNT.clear()
    return Response("{}", content_type="application/json")


ROUTES = {
    "/_steward/latency": latency,
    "/_steward/calls/count": count,
    "/_steward/calls/count/clear": clear,
}
