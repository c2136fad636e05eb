"""Injected faults: make chosen AWS calls fail with a throttling error.

moto answers every call it implements; a test of "a throttled stop is
retried by a later run" needs a real SDK call to come back throttled, the
way AWS answers when an account's request rate is exceeded. This extension
keeps a small list of armed faults and answers matching requests itself,
before moto sees them.

Test endpoints (never reached by steward itself):
    POST   /_steward/faults   {"action": "StopInstances", "count": 10,
                               "match": "i-0abc", "code": "RequestLimitExceeded"}
           arms a fault: the next `count` requests whose query-protocol
           `Action` (form body or query string) or JSON `X-Amz-Target`
           operation is `action`, and whose body contains `match` (optional),
           fail with HTTP 503 and the error `code` (default
           `RequestLimitExceeded`, EC2's throttling code; the SDKs retry it,
           so arm more than the SDK's attempts to make a call fail).
           An optional "status" (e.g. 400 with code
           "IncorrectInstanceState") makes it a refusal of the request
           instead, which the SDKs do not retry.
    POST   /_steward/faults   {"clear": true} (or DELETE) disarms every fault.
    GET    /_steward/faults   the armed faults and how many requests each failed.

Only the query (EC2, RDS, Auto Scaling, SQS query) and JSON (X-Amz-Target)
protocols are matched; that covers the scheduler's stop and start calls.
"""

import json
import threading
from urllib.parse import parse_qs

from werkzeug.wrappers import Response

LOCK = threading.Lock()
FAULTS = []


def _operation(request):
    target = request.headers.get("X-Amz-Target", "")
    if target:
        return target.split(".")[-1]
    body = request.get_data(cache=True).decode("utf-8", "replace")
    form = parse_qs(body)
    action = form.get("Action") or request.args.getlist("Action")
    return action[0] if action else ""


def _throttled(code, query_protocol, status=None):
    message = "Request limit exceeded (injected by the test harness)."
    if query_protocol:
        body = (
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message>"
            "</Error></Errors><RequestID>steward-fault</RequestID></Response>"
        )
        return Response(body, status=status or 503, content_type="text/xml")
    return Response(
        json.dumps({"__type": code, "message": message}),
        status=status or 400,
        content_type="application/x-amz-json-1.1",
    )


def intercept(request):
    if not FAULTS:
        return None
    operation = _operation(request)
    if not operation:
        return None
    body = request.get_data(cache=True).decode("utf-8", "replace")
    with LOCK:
        for fault in FAULTS:
            if fault["action"] != operation or fault["remaining"] <= 0:
                continue
            if fault.get("match") and fault["match"] not in body:
                continue
            fault["remaining"] -= 1
            fault["failed"] += 1
            return _throttled(
                fault["code"], not request.headers.get("X-Amz-Target"), fault.get("status")
            )
    return None


def faults(request):
    if request.method == "POST":
        spec = json.loads(request.get_data() or b"{}")
        with LOCK:
            if spec.get("clear"):
                FAULTS.clear()
                return Response(json.dumps(FAULTS), content_type="application/json")
            FAULTS.append({
                "action": spec["action"],
                "remaining": int(spec.get("count", 1)),
                "match": spec.get("match", ""),
                "code": spec.get("code", "RequestLimitExceeded"),
                "status": spec.get("status"),
                "failed": 0,
            })
    elif request.method == "DELETE":
        with LOCK:
            FAULTS.clear()
    with LOCK:
        return Response(json.dumps(FAULTS), content_type="application/json")


ROUTES = {
    "/_steward/faults": faults,
}
