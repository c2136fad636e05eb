"""AWS Config compliance queries for the compliance notifier's digest.

moto 5.2.5 answers `DescribeComplianceByConfigRule` with HTTP 500 (not
implemented). This extension serves it from the compliance store the
launcher already keeps: the evaluations recorded by `PutEvaluations`
(launcher extension 1), which also answer `GetComplianceDetailsByConfigRule`
(launcher extension 2, reused as is). A rule's compliance is computed the way
Config does: the latest evaluation per resource; NON_COMPLIANT when any
resource is (with the count of those resources), else COMPLIANT when any
resource is, else INSUFFICIENT_DATA (also for rules moto knows from
`PutConfigRule` that have no evaluation). `ConfigRuleNames`,
`ComplianceTypes` and `NextToken` (pages of 25, as Config's) are honoured.

How the store is filled:
- by `PutEvaluations` with a result token tied to its rule
  (`POST /_steward/config/rule-token`), as a custom rule's Lambda reports;
- or directly, for rules whose evaluations steward does not report (AWS
  managed rules in tests and the demo):
      POST /_steward/config/compliance
      {"account": "123456789012", "region": "us-east-1", "rule": NAME,
       "resourceType": "AWS::S3::Bucket", "resourceId": ID,
       "complianceType": "NON_COMPLIANT", "annotation": "optional"}
  or a JSON list of such objects. A later result for the same rule and
  resource replaces the earlier one (the latest is served).
"""

import json
import sys
import time

from werkzeug.wrappers import Response

from moto.config import responses as config_responses

PAGE = 25


def _launcher():
    """The launcher's module (run as a script, so `__main__`), holding the store."""
    for name in ("__main__", "moto_launcher"):
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "EVALUATIONS"):
            return module
    raise RuntimeError("moto_ext_config_compliance needs tools/moto_launcher.py's compliance store")


def _latest(account, region):
    """rule -> {(type, id): evaluation}: the latest evaluation per resource."""
    launcher = _launcher()
    latest = {}
    with launcher.LOCK:
        for e in launcher.EVALUATIONS:
            if e["account"] != account or e["region"] != region:
                continue
            per_rule = latest.setdefault(e["rule"], {})
            key = (e["ResourceType"], e["ResourceId"])
            if key not in per_rule or e["OrderingTimestamp"] >= per_rule[key]["OrderingTimestamp"]:
                per_rule[key] = e
    return latest


def describe_compliance_by_config_rule(self):
    names = self._get_param("ConfigRuleNames") or []
    wanted = set(self._get_param("ComplianceTypes") or [])
    start = int(self._get_param("NextToken") or 0)
    account = self.current_account
    region = self.region
    latest = _latest(account, region)
    try:
        known = set(self.config_backend.config_rules.keys())
    except Exception:
        known = set()
    rules = sorted(set(latest) | known)
    if names:
        rules = [r for r in rules if r in names]
    results = []
    for rule in rules:
        types = [e["ComplianceType"] for e in latest.get(rule, {}).values()]
        failing = types.count("NON_COMPLIANT")
        if failing:
            compliance = {
                "ComplianceType": "NON_COMPLIANT",
                "ComplianceContributorCount": {"CappedCount": min(failing, 100), "CapExceeded": failing > 100},
            }
        elif "COMPLIANT" in types:
            compliance = {"ComplianceType": "COMPLIANT"}
        else:
            compliance = {"ComplianceType": "INSUFFICIENT_DATA"}
        if wanted and compliance["ComplianceType"] not in wanted:
            continue
        results.append({"ConfigRuleName": rule, "Compliance": compliance})
    body = {"ComplianceByConfigRules": results[start : start + PAGE]}
    if start + PAGE < len(results):
        body["NextToken"] = str(start + PAGE)
    return json.dumps(body)


def install():
    config_responses.ConfigResponse.describe_compliance_by_config_rule = describe_compliance_by_config_rule


def seed_compliance(request):
    """POST /_steward/config/compliance: one result or a list of them."""
    body = json.loads(request.get_data() or b"[]")
    results = body if isinstance(body, list) else [body]
    launcher = _launcher()
    records = []
    for r in results:
        if r.get("complianceType") not in launcher.COMPLIANCE_TYPES:
            return Response(f"complianceType must be one of {sorted(launcher.COMPLIANCE_TYPES)}", status=400)
        now = time.time()
        records.append(
            {
                "account": r.get("account", "123456789012"),
                "region": r.get("region", "us-east-1"),
                "token": "seeded",
                "rule": r["rule"],
                "recorded": now,
                "ResourceType": r["resourceType"],
                "ResourceId": r["resourceId"],
                "ComplianceType": r["complianceType"],
                "Annotation": r.get("annotation", ""),
                "OrderingTimestamp": now,
            }
        )
    with launcher.LOCK:
        launcher.EVALUATIONS.extend(records)
    return Response(json.dumps({"seeded": len(records)}), content_type="application/json")


ROUTES = {"/_steward/config/compliance": seed_compliance}
