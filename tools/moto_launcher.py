#!/usr/bin/env python3
"""steward's local AWS: a moto server on 127.0.0.1, with small extensions
for the operations moto 5.2.5 lacks. The Rust code under test is the code
that runs in AWS; only this emulator is extended.

Extensions (each documented where it is made):

1. AWS Config `PutEvaluations` outside TestMode: moto raises
   NotImplementedError. Here it validates the request the way Config does
   (at most 100 evaluations, the required fields, the compliance types) and
   records the evaluations.
2. AWS Config `GetComplianceDetailsByConfigRule`: not in moto. Served from the
   recorded evaluations (latest per resource), with ComplianceTypes filter,
   Limit and NextToken. A result token is tied to its rule through
   `POST /_steward/config/rule-token` (AWS ties them internally).
3. AWS Config `GetResourceConfigHistory` for resource types moto does not
   record: items seeded with `POST /_steward/config/items` are served first.
4. SNS `Publish` is recorded (after moto has delivered it) so the demo and
   the tests can show what an email subscriber reads: moto delivers no email.
5. EKS `TagResource`, `UntagResource` and `ListTagsForResource` on managed
   node group ARNs: moto only looks resources up among clusters.

Further extensions live in `tools/moto_ext_*.py`, one file per service gap,
loaded at start in name order. Each file documents what it adds and may
define `install()` (patch moto's backends), `ROUTES` (a dict of
`/_steward/...` test endpoints to functions `(request) -> Response`) and
`intercept(request)` (answer an AWS call moto has no route for: return a
`Response`, or `None` to pass the request to moto).

Test endpoints (never reached by steward itself):
    GET  /_steward/health
    POST /_steward/config/rule-token   {"rule": NAME, "token": TOKEN}
    POST /_steward/config/items        a configuration item (AWS Config JSON)
    GET  /_steward/config/evaluations  ?token=TOKEN (optional)
    GET  /_steward/sns/published       every publish: topic, subject, message, structure, attributes

The server stops by itself when its standard input closes (the harness that
started it is gone) or after --max-seconds.

Usage: moto_launcher.py [--port 0] [--max-seconds 3600]
Prints `steward-moto ready on http://127.0.0.1:PORT` once it accepts requests.
"""

import argparse
import json
import os
import sys
import threading
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from moto.sns import models as sns_models
from moto.config import models as config_models
from moto.config import responses as config_responses
from moto.config.exceptions import InvalidParameterValueException, InvalidResultTokenException
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

LOCK = threading.Lock()
EVALUATIONS = []  # dicts: account, region, token, rule, and the evaluation fields
TOKEN_RULES = {}  # result token -> rule name
ITEMS = {}  # (account, region, resourceType, resourceId) -> configuration item
PUBLISHED = []  # SNS publishes, in order
COMPLIANCE_TYPES = {"COMPLIANT", "NON_COMPLIANT", "NOT_APPLICABLE", "INSUFFICIENT_DATA"}


def _epoch(value):
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    raise InvalidParameterValueException("OrderingTimestamp is not a timestamp")


# 1. PutEvaluations outside TestMode.
_original_put_evaluations = config_models.ConfigBackend.put_evaluations


def put_evaluations(self, evaluations=None, result_token=None, test_mode=False):
    if test_mode:
        return _original_put_evaluations(self, evaluations, result_token, test_mode)
    if not evaluations:
        raise InvalidParameterValueException(
            "The Evaluations object in your request cannot be null."
            "Add the required parameters and try again."
        )
    if not result_token:
        raise InvalidResultTokenException()
    if len(evaluations) > 100:
        raise InvalidParameterValueException(
            "Member must have length less than or equal to 100 (Evaluations)"
        )
    records = []
    for evaluation in evaluations:
        for field in ("ComplianceResourceType", "ComplianceResourceId", "ComplianceType", "OrderingTimestamp"):
            if field not in evaluation:
                raise InvalidParameterValueException(f"Evaluation is missing {field}")
        if evaluation["ComplianceType"] not in COMPLIANCE_TYPES:
            raise InvalidParameterValueException(
                f"ComplianceType {evaluation['ComplianceType']} is not valid"
            )
        if len(evaluation.get("Annotation", "")) > 256:
            raise InvalidParameterValueException("Annotation is longer than 256 characters")
        records.append(
            {
                "account": self.account_id,
                "region": self.region_name,
                "token": result_token,
                "rule": TOKEN_RULES.get(result_token, result_token),
                "recorded": time.time(),
                "ResourceType": evaluation["ComplianceResourceType"],
                "ResourceId": evaluation["ComplianceResourceId"],
                "ComplianceType": evaluation["ComplianceType"],
                "Annotation": evaluation.get("Annotation", ""),
                "OrderingTimestamp": _epoch(evaluation["OrderingTimestamp"]),
            }
        )
    with LOCK:
        EVALUATIONS.extend(records)
    return {"FailedEvaluations": []}


config_models.ConfigBackend.put_evaluations = put_evaluations


# 2. GetComplianceDetailsByConfigRule from the recorded evaluations.
def get_compliance_details_by_config_rule(self):
    rule = self._get_param("ConfigRuleName")
    wanted = set(self._get_param("ComplianceTypes") or []) or COMPLIANCE_TYPES
    limit = int(self._get_param("Limit") or 100)
    start = int(self._get_param("NextToken") or 0)
    account = self.current_account
    region = self.region
    latest = {}
    with LOCK:
        for e in EVALUATIONS:
            if e["rule"] == rule and e["account"] == account and e["region"] == region:
                key = (e["ResourceType"], e["ResourceId"])
                if key not in latest or e["OrderingTimestamp"] >= latest[key]["OrderingTimestamp"]:
                    latest[key] = e
    results = [
        {
            "EvaluationResultIdentifier": {
                "EvaluationResultQualifier": {
                    "ConfigRuleName": rule,
                    "ResourceType": e["ResourceType"],
                    "ResourceId": e["ResourceId"],
                },
                "OrderingTimestamp": e["OrderingTimestamp"],
            },
            "ComplianceType": e["ComplianceType"],
            "ResultRecordedTime": e["recorded"],
            "ConfigRuleInvokedTime": e["recorded"],
            "Annotation": e["Annotation"],
        }
        for e in sorted(latest.values(), key=lambda e: (e["ResourceType"], e["ResourceId"]))
        if e["ComplianceType"] in wanted
    ]
    page = results[start : start + limit]
    body = {"EvaluationResults": page}
    if start + limit < len(results):
        body["NextToken"] = str(start + limit)
    return json.dumps(body)


config_responses.ConfigResponse.get_compliance_details_by_config_rule = get_compliance_details_by_config_rule


# 3. GetResourceConfigHistory for seeded items.
_original_history = config_models.ConfigBackend.get_resource_config_history


def get_resource_config_history(self, resource_type, resource_id, backend_region):
    with LOCK:
        item = ITEMS.get((self.account_id, backend_region, resource_type, resource_id))
    if item is not None:
        return {"configurationItems": [item]}
    return _original_history(self, resource_type, resource_id, backend_region)


config_models.ConfigBackend.get_resource_config_history = get_resource_config_history


# 4. Record SNS publishes.
_original_publish = sns_models.SNSBackend.publish


def publish(self, message, arn, *args, **kwargs):
    message_id = _original_publish(self, message, arn, *args, **kwargs)
    with LOCK:
        PUBLISHED.append(
            {
                "topic": arn,
                "subject": kwargs.get("subject"),
                "message": message,
                "structure": kwargs.get("message_structure"),
                "attributes": {k: v.get("Value") for k, v in (kwargs.get("message_attributes") or {}).items()},
                "message_id": message_id,
            }
        )
    return message_id


sns_models.SNSBackend.publish = publish


# 5. EKS tags on managed node groups.
from moto.eks import models as eks_models  # noqa: E402

_eks_tag_resource = eks_models.EKSBackend.tag_resource
_eks_untag_resource = eks_models.EKSBackend.untag_resource
_eks_list_tags = eks_models.EKSBackend.list_tags_for_resource


def _eks_nodegroup_by_arn(backend, arn):
    for cluster in backend.clusters.values():
        for nodegroup in cluster.nodegroups.values():
            if nodegroup.arn == arn:
                return nodegroup
    return None


def eks_tag_resource(self, resource_arn, tags):
    nodegroup = _eks_nodegroup_by_arn(self, resource_arn)
    if nodegroup is None:
        return _eks_tag_resource(self, resource_arn, tags)
    if nodegroup.tags is None:
        nodegroup.tags = {}
    nodegroup.tags.update(tags)


def eks_untag_resource(self, resource_arn, tag_keys):
    nodegroup = _eks_nodegroup_by_arn(self, resource_arn)
    if nodegroup is None:
        return _eks_untag_resource(self, resource_arn, tag_keys)
    for key in tag_keys if isinstance(tag_keys, list) else [tag_keys]:
        (nodegroup.tags or {}).pop(key, None)


def eks_list_tags_for_resource(self, resource_arn):
    nodegroup = _eks_nodegroup_by_arn(self, resource_arn)
    if nodegroup is None:
        return _eks_list_tags(self, resource_arn)
    return nodegroup.tags or {}


eks_models.EKSBackend.tag_resource = eks_tag_resource
eks_models.EKSBackend.untag_resource = eks_untag_resource
eks_models.EKSBackend.list_tags_for_resource = eks_list_tags_for_resource


def seed_item(item):
    """Stores an item in the shape GetResourceConfigHistory returns."""
    capture = item.get("configurationItemCaptureTime")
    stored = {
        "version": item.get("configurationItemVersion", "1.3"),
        "accountId": item["awsAccountId"],
        "configurationItemCaptureTime": _epoch(capture) if capture else time.time(),
        "configurationItemStatus": item.get("configurationItemStatus", "OK"),
        "configurationStateId": str(item.get("configurationStateId", int(time.time() * 1000))),
        "arn": item.get("ARN", ""),
        "resourceType": item["resourceType"],
        "resourceId": item["resourceId"],
        "awsRegion": item["awsRegion"],
        "tags": item.get("tags") or {},
        "configuration": json.dumps(item.get("configuration") or {}),
    }
    if item.get("resourceName"):
        stored["resourceName"] = item["resourceName"]
    with LOCK:
        ITEMS[(stored["accountId"], stored["awsRegion"], stored["resourceType"], stored["resourceId"])] = stored


def load_extensions():
    """Imports every `moto_ext_*.py` beside this file, in name order, and installs it."""
    import glob
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    extensions = []
    for path in sorted(glob.glob(os.path.join(here, "moto_ext_*.py"))):
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if hasattr(module, "install"):
            module.install()
        extensions.append(module)
    return extensions


def steward_endpoints(moto_app, extensions=()):
    """WSGI middleware: /_steward/* for the tests, extension intercepts, everything else to moto."""
    routes = {}
    intercepts = []
    for module in extensions:
        routes.update(getattr(module, "ROUTES", {}))
        if hasattr(module, "intercept"):
            intercepts.append(module.intercept)

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/_steward/"):
            if intercepts:
                request = Request(environ)
                # Reading the body caches it, so moto can still read it when no extension answers.
                request.get_data(cache=True)
                environ["wsgi.input"] = __import__("io").BytesIO(request.get_data())
                for intercept in intercepts:
                    answer = intercept(request)
                    if answer is not None:
                        return answer(environ, start_response)
            return moto_app(environ, start_response)
        request = Request(environ)
        if path in routes:
            response = routes[path](request)
        elif path == "/_steward/health":
            response = Response("ok")
        elif path == "/_steward/config/rule-token" and request.method == "POST":
            body = json.loads(request.get_data() or b"{}")
            with LOCK:
                TOKEN_RULES[body["token"]] = body["rule"]
                for e in EVALUATIONS:
                    if e["token"] == body["token"]:
                        e["rule"] = body["rule"]
            response = Response("{}", content_type="application/json")
        elif path == "/_steward/config/items" and request.method == "POST":
            seed_item(json.loads(request.get_data()))
            response = Response("{}", content_type="application/json")
        elif path == "/_steward/config/evaluations":
            token = parse_qs(environ.get("QUERY_STRING", "")).get("token", [None])[0]
            with LOCK:
                found = [e for e in EVALUATIONS if token is None or e["token"] == token]
            response = Response(json.dumps(found), content_type="application/json")
        elif path == "/_steward/sns/published":
            with LOCK:
                response = Response(json.dumps(PUBLISHED), content_type="application/json")
        else:
            response = Response("unknown steward endpoint", status=404)
        return response(environ, start_response)

    return app


def stop_when_parent_leaves(max_seconds):
    def watch_stdin():
        try:
            while sys.stdin.read(4096):
                pass
        except Exception:
            pass
        os._exit(0)

    def deadline():
        time.sleep(max_seconds)
        print(f"steward-moto: stopping after {max_seconds}s", file=sys.stderr, flush=True)
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    threading.Thread(target=deadline, daemon=True).start()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--max-seconds", type=int, default=3600, help="stop after this long")
    parser.add_argument("--no-stdin-watch", action="store_true", help="do not stop when stdin closes")
    args = parser.parse_args()
    if not args.no_stdin_watch:
        stop_when_parent_leaves(args.max_seconds)
    else:
        threading.Thread(target=lambda: (time.sleep(args.max_seconds), os._exit(0)), daemon=True).start()
    app = steward_endpoints(DomainDispatcherApplication(create_backend_app), load_extensions())
    server = make_server("127.0.0.1", args.port, app, threaded=True, request_handler=MotoRequestHandler)
    print(f"steward-moto ready on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
