#!/usr/bin/env python3
"""Cloud Custodian's own verdict on off-hours tags, for steward's agreement test.

Reads JSON lines on stdin, each {"tag": VALUE, "at": RFC3339, "default_tz": ZONE},
and prints one JSON line per input: {"offhour": bool, "onhour": bool,
"error": null | "..."}. `offhour` and `onhour` are what c7n's `offhour` and
`onhour` filters (c7n.filters.offhours, default hours 19 and 7, Monday to
Friday) answer for an EC2 instance tagged `maid_offhours=VALUE` when the clock
reads `at`. `error` is set when c7n logged a parse problem or an exception for
the tag (it then answers false).

The filters read the wall clock through the module's `datetime` import; the
oracle replaces that import with one whose `now()` returns the given instant.
Run it with the interpreter of the virtualenv that has c7n installed.
"""

import datetime as _real_datetime
import json
import logging
import sys
import types

from c7n.filters import offhours


class _FrozenClock(_real_datetime.datetime):
    """A datetime class whose now() is a fixed instant."""

    instant = None

    @classmethod
    def now(cls, tz=None):
        if tz is None:
            return cls.instant.replace(tzinfo=None)
        return cls.instant.astimezone(tz)


offhours.datetime = types.SimpleNamespace(datetime=_FrozenClock)


class _Problems(logging.Handler):
    """Collects what c7n logs about a tag (warnings and exceptions)."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage().splitlines()[0])


def _filters(default_tz, cache={}):
    """One offhour and one onhour filter per default time zone (c7n caches
    parsed schedules, defaults included, per filter)."""
    if default_tz not in cache:
        off = offhours.OffHour({"type": "offhour", "default_tz": default_tz, "offhour": 19})
        on = offhours.OnHour({"type": "onhour", "default_tz": default_tz, "onhour": 7})
        off.validate()
        on.validate()
        cache[default_tz] = (off, on)
    return cache[default_tz]


def _parse_instant(text):
    instant = _real_datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if instant.tzinfo is None:
        raise ValueError(f"`{text}` has no UTC offset")
    return instant.astimezone(_real_datetime.timezone.utc)


def evaluate(case, problems):
    _FrozenClock.instant = _parse_instant(case["at"])
    off, on = _filters(case.get("default_tz", "utc"))
    resource = {"InstanceId": "i-0oracle", "Tags": [{"Key": "maid_offhours", "Value": case["tag"]}]}
    problems.messages.clear()
    off.parse_errors.clear()
    on.parse_errors.clear()
    offhour = bool(off(resource))
    onhour = bool(on(resource))
    errors = list(problems.messages)
    errors += [f"parse error: {value}" for _, value in off.parse_errors + on.parse_errors]
    return {"offhour": offhour, "onhour": onhour, "error": "; ".join(errors) or None}


def main():
    problems = _Problems()
    log = logging.getLogger("custodian.offhours")
    log.addHandler(problems)
    log.propagate = False
    log.setLevel(logging.WARNING)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            result = evaluate(json.loads(line), problems)
        except Exception as e:  # a bad input line, not a c7n verdict
            result = {"offhour": False, "onhour": False, "error": f"oracle: {e}"}
        sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
