"""Fixture: classifies the objects of an S3 event by size against $LIMIT (two versions of a function differ
by their LIMIT, for the replay tests)."""

import os


def handler(event, context):
    limit = int(os.environ["LIMIT"])
    return [
        {"key": r["s3"]["object"]["key"], "class": "big" if r["s3"]["object"]["size"] > limit else "small"}
        for r in event["Records"]
    ]
