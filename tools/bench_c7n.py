#!/usr/bin/env python3
"""Runs Cloud Custodian once against the local AWS emulator for the
off-hours scheduler benchmark, and reports what it cost.

Cloud Custodian runs in this process (so its CPU time and peak memory are
this process's), with every botocore request counted before it is sent.

Usage: bench_c7n.py --endpoint URL --policy FILE --output DIR [--region R]
Prints one JSON line: {"aws_calls", "ec2_calls", "calls_by_service",
"wall_seconds", "cpu_seconds", "peak_rss_kib", "matched"}.
"""

import argparse
import json
import os
import resource
import sys
import threading
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--policy", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args()
    os.environ.update(
        AWS_ENDPOINT_URL=args.endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=args.region,
    )
    os.environ.pop("AWS_PROFILE", None)

    import botocore.endpoint

    lock = threading.Lock()
    calls = {"n": 0, "by_service": {}}
    original = botocore.endpoint.Endpoint._send

    def counting_send(self, request):
        service = getattr(self, "_endpoint_prefix", "unknown")
        with lock:
            calls["n"] += 1
            calls["by_service"][service] = calls["by_service"].get(service, 0) + 1
        return original(self, request)

    botocore.endpoint.Endpoint._send = counting_send

    from c7n.cli import main as custodian

    sys.argv = ["custodian", "run", "--cache-period", "0", "-s", args.output,
                "--region", args.region, args.policy]
    started = time.monotonic()
    try:
        custodian()
    except SystemExit as e:
        if e.code not in (0, None):
            raise
    wall = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    matched = 0
    for root, _dirs, files in os.walk(args.output):
        if "resources.json" in files:
            with open(os.path.join(root, "resources.json")) as f:
                matched += len(json.load(f))
    print(json.dumps({
        "aws_calls": calls["n"],
        "ec2_calls": calls["by_service"].get("ec2", 0),
        "calls_by_service": calls["by_service"],
        "wall_seconds": wall,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_kib": usage.ru_maxrss,
        "matched": matched,
    }), flush=True)


if __name__ == "__main__":
    main()
