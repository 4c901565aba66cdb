"""Objects: put into the S3 bucket (notifications through SQS) or written into the watched folder."""

from __future__ import annotations

import hashlib
import os
from typing import Any
from urllib.parse import unquote_plus

from tests.e2e.stack import NAMES, Records, Stack, unique


def s3_record(record: dict[str, Any]) -> dict[str, Any]:
    [s3] = record["event"]["Records"]  # S3 invokes a function with one record per event
    return s3


def object_key(record: dict[str, Any]) -> str:
    return unquote_plus(s3_record(record)["s3"]["object"]["key"])


def test_object_put_in_the_bucket_reaches_the_function(stack: Stack, records: Records) -> None:
    s3 = stack.client("s3")
    key, body = f"photos/{unique('cat')}.jpg", b"not really a jpeg"
    s3.put_object(Bucket=NAMES.UPLOADS_BUCKET, Key=key, Body=body)
    try:
        [record] = records.wait_for("s3", lambda r: object_key(r) == key)
    finally:
        s3.delete_object(Bucket=NAMES.UPLOADS_BUCKET, Key=key)

    event = s3_record(record)
    assert record["function"] == "on_object"
    assert event["eventSource"] == "aws:s3"
    assert event["eventName"] == "ObjectCreated:Put"
    assert event["s3"]["bucket"]["name"] == NAMES.UPLOADS_BUCKET
    assert event["s3"]["bucket"]["arn"] == f"arn:aws:s3:::{NAMES.UPLOADS_BUCKET}"
    assert event["s3"]["object"]["size"] == len(body)
    assert event["s3"]["object"]["eTag"] == hashlib.md5(body).hexdigest()
    assert {"userIdentity", "requestParameters", "responseElements"} <= set(event)  # as real S3 sends


def test_file_written_into_the_watched_folder_reaches_the_function(stack: Stack, records: Records) -> None:
    name, body = f"{unique('note')}.txt", b"hello from the e2e suite\n"
    target = stack.uploads_dir / name
    partial = stack.uploads_dir / f".{name}.part"  # written aside, then renamed: never seen half-written
    partial.write_bytes(body)
    os.replace(partial, target)
    try:
        [record] = records.wait_for("folder", lambda r: object_key(r) == name)
    finally:
        target.unlink()

    event = s3_record(record)
    assert record["function"] == "on_upload"
    assert event["eventName"] == "ObjectCreated:Put"
    assert event["s3"]["bucket"]["name"] == "dropbox"
    assert event["s3"]["object"]["size"] == len(body)
    assert event["s3"]["object"]["eTag"] == hashlib.md5(body).hexdigest()
