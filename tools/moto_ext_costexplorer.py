"""Cost Explorer and AWS Budgets gaps of moto 5.2.5, for the budget alerter.

moto answers `GetCostAndUsage` from results seeded through its own endpoint
(`POST /moto-api/static/ce/cost-and-usage-results`); the tests use that. It
has no `GetCostForecast` and no `GetAnomalies` (HTTP 500, not implemented).
This extension serves those two from a small seeded store, the way Cost
Explorer answers them, and counts every Cost Explorer request so a test can
check how many requests a message needs.

AWS calls answered here (JSON protocol, `X-Amz-Target`):
    AWSInsightsIndexService.GetCostForecast   the seeded total for any period,
        or moto's own "not implemented" 500 when the forecast is switched to
        fail (the "Cost Explorer failing" test), or when nothing is seeded
    AWSInsightsIndexService.GetAnomalies      the seeded anomalies of the
        requested MonitorArn whose start date is in the requested interval

Test endpoints:
    POST /_steward/ce/forecast     {"amount": "250.00", "unit": "USD"} or {"fail": true}
    POST /_steward/ce/anomalies    {"anomalies": [<Cost Explorer Anomaly JSON>, ...]}
    GET  /_steward/ce/requests     {"<Operation>": count, ...} of Cost Explorer requests
    POST /_steward/budgets/create  {"account_id": "...", "budget": {<Budget JSON>},
                                    "notifications": [{"Notification": {...}, "Subscribers": [...]}]}
        creates a budget in that account's own Budgets backend (as if the
        account had created it), so member-account budgets can be seeded
        without a session in that account.
"""

import json
import threading

from werkzeug.wrappers import Response

LOCK = threading.Lock()
STATE = {"forecast": None, "forecast_fails": False, "anomalies": [], "requests": {}}
TARGET_PREFIX = "AWSInsightsIndexService."


def _json(body, status=200):
    return Response(json.dumps(body), status=status, content_type="application/x-amz-json-1.1")


def _not_implemented():
    # The same answer moto gives for an operation it lacks.
    return Response("<html><body>Internal Server Error: not implemented</body></html>", status=500,
                    content_type="text/html")


def intercept(request):
    target = request.headers.get("X-Amz-Target", "")
    if not target.startswith(TARGET_PREFIX):
        return None
    operation = target[len(TARGET_PREFIX):]
    with LOCK:
        STATE["requests"][operation] = STATE["requests"].get(operation, 0) + 1
    if operation == "GetCostForecast":
        with LOCK:
            forecast, fails = STATE["forecast"], STATE["forecast_fails"]
        if fails or forecast is None:
            return _not_implemented()
        body = json.loads(request.get_data() or b"{}")
        period = body.get("TimePeriod", {})
        return _json({
            "Total": {"Amount": str(forecast["amount"]), "Unit": forecast.get("unit", "USD")},
            "ForecastResultsByTime": [{
                "TimePeriod": period,
                "MeanValue": str(forecast["amount"]),
            }],
        })
    if operation == "GetAnomalies":
        body = json.loads(request.get_data() or b"{}")
        monitor = body.get("MonitorArn")
        interval = body.get("DateInterval", {})
        start = interval.get("StartDate", "")[:10]
        end = (interval.get("EndDate") or "9999-12-31")[:10]
        with LOCK:
            found = [
                a for a in STATE["anomalies"]
                if (monitor is None or a.get("MonitorArn") == monitor)
                and start <= a.get("AnomalyStartDate", "")[:10] <= end
            ]
        return _json({"Anomalies": found})
    return None


def seed_forecast(request):
    body = json.loads(request.get_data() or b"{}")
    with LOCK:
        STATE["forecast_fails"] = bool(body.get("fail"))
        if "amount" in body:
            STATE["forecast"] = {"amount": body["amount"], "unit": body.get("unit", "USD")}
    return _json({})


def seed_anomalies(request):
    body = json.loads(request.get_data() or b"{}")
    with LOCK:
        STATE["anomalies"].extend(body.get("anomalies", []))
    return _json({})


def requests_made(request):
    with LOCK:
        return _json(dict(STATE["requests"]))


def create_budget(request):
    from moto.budgets.models import budgets_backends

    body = json.loads(request.get_data() or b"{}")
    account = body["account_id"]
    budgets_backends[account]["aws"].create_budget(
        account_id=account,
        budget=body["budget"],
        notifications=body.get("notifications", []),
    )
    return _json({})


ROUTES = {
    "/_steward/ce/forecast": seed_forecast,
    "/_steward/ce/anomalies": seed_anomalies,
    "/_steward/ce/requests": requests_made,
    "/_steward/budgets/create": create_budget,
}
