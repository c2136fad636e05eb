"""GuardDuty findings: a small findings store, since moto 5.2.5 has no route
for the findings API (its detectors, filters and organization-admin calls
work and are left to moto).

AWS calls answered here (REST-JSON, per account and region of the caller's
credentials; every one checks that the detector exists in that account and
region, else 400 `BadRequestException` as GuardDuty answers):

    POST /detector/{id}/findings          ListFindings: findingCriteria.criterion
                                          with eq/neq/gt/gte/lt/lte and
                                          equals/notEquals/greaterThan/
                                          greaterThanOrEqual/lessThan/
                                          lessThanOrEqual on dotted fields
                                          (`severity`, `updatedAt` as epoch
                                          milliseconds, `service.archived` as
                                          "true"/"false", `accountId`, `type`,
                                          `id`, ...); maxResults (1-50) and
                                          nextToken paginate, ordered by id
    POST /detector/{id}/findings/get      GetFindings: at most 50 ids; unknown
                                          ids are left out of the answer (as in AWS)
    POST /detector/{id}/findings/archive  ArchiveFindings: service.archived = true
    POST /detector/{id}/findings/create   CreateSampleFindings: one sample finding
                                          per requested type, marked sample in
                                          service.additionalInfo.value

Test endpoints (never reached by steward itself):

    POST /_steward/guardduty/findings  {"account", "region", "finding"}: stores
        the finding (the GetFindings JSON shape, camelCase) in the account's
        detector of that region, as GuardDuty reported it (not a sample unless
        the finding itself says so); 404 when that account has no detector
        there. Storing a finding with a known id replaces it (an update).
    POST /_steward/guardduty/outage    {"on": true|false}: while on, every
        findings call answers 503 `InternalServerErrorException` (GuardDuty
        unreachable).
"""

import json
import re
import threading
import uuid
from datetime import datetime, timezone

from werkzeug.wrappers import Response

LOCK = threading.Lock()
FINDINGS = {}  # (account, region, detector_id) -> {finding_id: finding}
OUTAGE = {"on": False}

_PATH = re.compile(r"^/detector/(?P<detector>[^/]+)/findings(?P<op>/get|/archive|/create)?$")
_SCOPE = re.compile(r"Credential=(?P<key>[^/]+)/[^/]+/(?P<region>[^/]+)/(?P<service>[^/]+)/")


def _error(status, kind, message):
    return Response(
        json.dumps({"__type": kind, "message": message, "Message": message}),
        status=status,
        content_type="application/json",
        headers={"x-amzn-ErrorType": kind},
    )


def _json(body):
    return Response(json.dumps(body), content_type="application/json")


def _account_of(access_key):
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key)


def _detectors(account, region):
    from moto.guardduty.models import guardduty_backends

    return guardduty_backends[account][region].detectors


def _field(finding, path):
    value = finding
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _comparable(path, value):
    if value is None:
        return None
    if path in ("updatedAt", "createdAt") and isinstance(value, str):
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _matches(finding, criterion):
    for path, condition in (criterion or {}).items():
        raw = _field(finding, path)
        if path == "service.archived" and raw is None:
            raw = False
        value = _comparable(path, raw)
        for op, operand in condition.items():
            if op in ("eq", "equals"):
                if str(value) not in [str(o) for o in operand]:
                    return False
            elif op in ("neq", "notEquals"):
                if str(value) in [str(o) for o in operand]:
                    return False
            elif value is None:
                return False
            elif op in ("gt", "greaterThan") and not float(value) > float(operand):
                return False
            elif op in ("gte", "greaterThanOrEqual") and not float(value) >= float(operand):
                return False
            elif op in ("lt", "lessThan") and not float(value) < float(operand):
                return False
            elif op in ("lte", "lessThanOrEqual") and not float(value) <= float(operand):
                return False
    return True


def intercept(request):
    match = _PATH.match(request.path)
    scope = _SCOPE.search(request.headers.get("Authorization", ""))
    if not match or not scope or scope.group("service") != "guardduty" or request.method != "POST":
        return None
    if OUTAGE["on"]:
        return _error(503, "InternalServerErrorException", "GuardDuty is unavailable (steward test outage)")
    account = _account_of(scope.group("key"))
    region = scope.group("region")
    detector = match.group("detector")
    if detector not in _detectors(account, region):
        return _error(400, "BadRequestException", f"The request is rejected because the input detectorId is not owned by the current account.")
    body = json.loads(request.get_data() or b"{}")
    op = match.group("op")
    key = (account, region, detector)
    with LOCK:
        store = FINDINGS.setdefault(key, {})
        if op is None:
            limit = int(body.get("maxResults") or 50)
            if limit < 1 or limit > 50:
                return _error(400, "BadRequestException", "maxResults must be between 1 and 50")
            criterion = (body.get("findingCriteria") or {}).get("criterion") or {}
            ids = sorted(i for i, f in store.items() if _matches(f, criterion))
            start = int(body.get("nextToken") or 0)
            page = ids[start : start + limit]
            answer = {"findingIds": page}
            if start + limit < len(ids):
                answer["nextToken"] = str(start + limit)
            return _json(answer)
        if op == "/get":
            ids = body.get("findingIds") or []
            if len(ids) > 50:
                return _error(400, "BadRequestException", "at most 50 finding ids per GetFindings call")
            return _json({"findings": [store[i] for i in ids if i in store]})
        if op == "/archive":
            for i in body.get("findingIds") or []:
                if i in store:
                    store[i].setdefault("service", {})["archived"] = True
            return _json({})
        # /create: sample findings.
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        for kind in body.get("findingTypes") or ["Backdoor:EC2/C&CActivity.B!DNS"]:
            fid = uuid.uuid4().hex
            store[fid] = {
                "id": fid,
                "accountId": account,
                "region": region,
                "partition": "aws",
                "arn": f"arn:aws:guardduty:{region}:{account}:detector/{detector}/finding/{fid}",
                "type": kind,
                "severity": 8.0,
                "schemaVersion": "2.0",
                "createdAt": now,
                "updatedAt": now,
                "title": f"Sample finding {kind}",
                "description": "A sample finding",
                "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-99999999"}},
                "service": {
                    "serviceName": "guardduty",
                    "detectorId": detector,
                    "archived": False,
                    "count": 1,
                    "additionalInfo": {"value": "{\"sample\":true}", "type": "default"},
                },
            }
        return _json({})


def seed(request):
    body = json.loads(request.get_data() or b"{}")
    account, region, finding = body["account"], body["region"], body["finding"]
    detectors = list(_detectors(account, region))
    if not detectors:
        return _error(404, "NotFound", f"account {account} has no GuardDuty detector in {region}")
    detector = body.get("detectorId") or detectors[0]
    if detector not in detectors:
        return _error(404, "NotFound", f"detector {detector} is not in account {account}, {region}")
    with LOCK:
        FINDINGS.setdefault((account, region, detector), {})[finding["id"]] = finding
    return _json({"detectorId": detector})


def outage(request):
    body = json.loads(request.get_data() or b"{}")
    OUTAGE["on"] = bool(body.get("on"))
    return _json(OUTAGE)


ROUTES = {
    "/_steward/guardduty/findings": seed,
    "/_steward/guardduty/outage": outage,
}
