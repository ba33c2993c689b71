#!/usr/bin/env python3
"""Writes botocore.jsonl: requests signed by botocore's own SigV4Auth, with
paths, queries, header values and sessions that the captured KMS requests do
not exercise. Run with botocore installed (made with botocore 1.43.11):

    python3 gen_botocore.py > botocore.jsonl

Each line has the fields of captured.jsonl plus "method", "query" and "now"
(the signing time as X-Amz-Date) and "note" (what the case exercises).
"""
import datetime
import hashlib
import json
from unittest import mock

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
WHEN = datetime.datetime(2026, 12, 2, 2, 35, 24, tzinfo=datetime.timezone.utc)

CASES = [
    dict(note="header values with runs of spaces and tabs; an extra signed header",
         method="POST", path="/", query="", region="eu-west-1",
         headers=[("Content-Type", "application/x-amz-json-1.1"),
                  ("X-Amz-Target", "TrentService.ListAliases"),
                  ("X-Custom", "  a   b \t c  "),
                  ("X-Empty", "")],
         body='{"Limit": 10}'),
    dict(note="path with an escaped space, a colon and dot segments; sorted query",
         method="GET", path="/a/./b/../c%20d/e:f//g", query="b=2&a=1&a=0&empty=&k=v%2Fslash",
         region="us-east-1", headers=[], body=""),
    dict(note="a header with two values, joined with a comma",
         method="POST", path="/", query="", region="ap-northeast-1",
         headers=[("X-Multi", "one"), ("X-Multi", "  two  "),
                  ("X-Amz-Target", "TrentService.DescribeKey")],
         body='{"KeyId": "alias/\u00e9t\u00e9"}'),
    dict(note="session token and x-amz-content-sha256 equal to the body hash",
         method="POST", path="/", query="", region="us-west-2", token="FQoGZXIvYXdzEXAMPLETOKEN2",
         headers=[("Content-Type", "application/x-amz-json-1.1"),
                  ("X-Amz-Target", "TrentService.GenerateRandom"),
                  ("X-Amz-Content-SHA256", hashlib.sha256(b'{"NumberOfBytes": 32}').hexdigest())],
         body='{"NumberOfBytes": 32}'),
]


def main():
    for case in CASES:
        url = "http://127.0.0.1:5599" + case["path"]
        if case["query"]:
            url += "?" + case["query"]
        req = AWSRequest(method=case["method"], url=url, data=case["body"].encode())
        req.headers["Host"] = "127.0.0.1:5599"
        for name, value in case["headers"]:
            req.headers[name] = value  # HTTPHeaders keeps repeated names
        creds = Credentials("AKIDEXAMPLE", SECRET, case.get("token"))
        with mock.patch.object(botocore.auth, "get_current_datetime", return_value=WHEN):
            botocore.auth.SigV4Auth(creds, "kms", case["region"]).add_auth(req)
        print(json.dumps({
            "note": case["note"],
            "method": case["method"],
            "path": case["path"],
            "query": case["query"],
            "headers": list(req.headers.items()),
            "body": case["body"],
            "secret": SECRET,
            "now": WHEN.strftime("%Y%m%dT%H%M%SZ"),
        }, ensure_ascii=False))


if __name__ == "__main__":
    main()
