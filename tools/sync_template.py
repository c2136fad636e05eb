"""Rewrite the generated parts of infra/template.yaml.

Two blocks of the hub template are derived from other files, so they are
written by this script (`make sync-template`) rather than by hand:

* the policy parameter's value: infra/policy.example.toml with its comments
  and blank lines removed (the commented file is the documentation; the
  parameter holds the settings, well inside the Advanced tier's 8 KB);
* one Errors and one Throttles alarm per function, for the functions named
  on the command line (the Makefile passes its FUNCTIONS list).

A test (tests/tests/templates.rs) fails when either block is out of date.
"""

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"
EXAMPLE = ROOT / "infra" / "policy.example.toml"

POLICY_BEGIN = "      # BEGIN steward policy (make sync-template)"
POLICY_END = "      # END steward policy (make sync-template)"
ALARMS_BEGIN = "# BEGIN function alarms (make sync-template)"
ALARMS_END = "# END function alarms (make sync-template)"


def compact_policy(text: str) -> str:
    """The example's settings: full-line comments and blank lines dropped."""
    lines = [
        line.rstrip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    compact = "\n".join(lines) + "\n"
    if tomllib.loads(compact) != tomllib.loads(text):
        sys.exit("stripping comments changed the policy; check infra/policy.example.toml")
    return compact


def logical_id(function: str) -> str:
    special = {"guardduty": "GuardDuty"}
    return "".join(special.get(p, p.capitalize()) for p in function.split("-"))


def alarms(functions: list[str]) -> str:
    out = []
    for function in functions:
        for metric, what in (
            ("Errors", "failed (an error or a timeout); read its log group"),
            ("Throttles", "was throttled by Lambda's concurrency limit; events wait or are lost"),
        ):
            out.append(
                f"""  {logical_id(function)}{metric}Alarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmName: !Sub "${{NamePrefix}}-{function}-{metric.lower()}"
      AlarmDescription: steward's {function} {what}.
      Namespace: AWS/Lambda
      MetricName: {metric}
      Dimensions:
        - Name: FunctionName
          Value: {function}
      Statistic: Sum
      Period: 300
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
      AlarmActions: [!Ref SecurityTopic]
"""
            )
    return "".join(out)


def replace_between(text: str, begin: str, end: str, body: str) -> str:
    pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        sys.exit(f"marker {begin!r} ... {end!r} not found in {TEMPLATE}")
    return pattern.sub(lambda _: f"{begin}\n{body}{end}", text, count=1)


def main() -> None:
    functions = sys.argv[1:]
    if not functions:
        sys.exit("usage: sync_template.py FUNCTION...")
    policy = compact_policy(EXAMPLE.read_text())
    value = "      Value: |\n" + "".join(f"        {line}\n" for line in policy.splitlines())
    text = TEMPLATE.read_text()
    text = replace_between(text, POLICY_BEGIN, POLICY_END, value)
    text = replace_between(text, ALARMS_BEGIN, ALARMS_END, alarms(functions))
    TEMPLATE.write_text(text)
    print(f"{TEMPLATE.relative_to(ROOT)}: policy ({len(policy)} bytes) and {2 * len(functions)} alarms written")


if __name__ == "__main__":
    main()
