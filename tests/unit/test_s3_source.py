"""The S3 source's logic: ignore patterns, event selection, SQS message parsing and record normalisation, the
announced-objects journal, config checks, and acknowledging SQS messages only after submit accepted them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from router.config.sources.s3 import DEFAULT_IGNORE
from router.core.clock import FakeClock
from router.core.envelope import Envelope
from router.core.errors import ConfigError, Throttled
from router.core.ports import Delivery, SourceContext
from router.sources.s3.api import QueuedNotifications, normalize_record, s3_records
from router.sources.s3.common import is_ignored, route_wants
from router.sources.s3.state import AnnouncedObjects, ObjectVersion
from router.validate import parse_config


@pytest.mark.parametrize(
    "key",
    [
        ".hidden",
        "dir/.git/config",
        "notes.txt~",
        "upload.tmp",
        "video.mp4.part",
        "f.crdownload",
        "~$report.docx",
        "#draft#",
        ".report.docx.swp",
        "a/.partial/file.txt",
    ],
)
def test_default_ignore_patterns(key: str) -> None:
    assert is_ignored(key, DEFAULT_IGNORE)


@pytest.mark.parametrize("key", ["a.txt", "dir/photo.jpg", "deep/er/x.tmp.jpg", "tmp/file", "a~b.txt"])
def test_ordinary_keys_are_objects(key: str) -> None:
    assert not is_ignored(key, DEFAULT_IGNORE)


def test_patterns_with_a_slash_match_the_whole_key() -> None:
    assert is_ignored("logs/today.txt", ["logs/*"])
    assert not is_ignored("data/logs/today.txt", ["logs/*"])


def test_route_event_selection() -> None:
    assert route_wants(None, "ObjectCreated:Put") and not route_wants(None, "ObjectRemoved:Delete")
    assert route_wants(["ObjectRemoved:*"], "ObjectRemoved:Delete")
    assert not route_wants(["ObjectRemoved:*"], "ObjectCreated:Put")
    assert route_wants(["ObjectCreated:Put", "ObjectRemoved:Delete"], "ObjectRemoved:Delete")


MOTO_RECORD = {
    "eventVersion": "2.1",
    "eventSource": "aws:s3",
    "awsRegion": "eu-west-1",
    "eventTime": "2024-05-01T10:00:00.123Z",
    "eventName": "ObjectCreated:Put",
    "s3": {
        "s3SchemaVersion": "1.0",
        "configurationId": "cfg1",
        "bucket": {"name": "photos", "arn": "arn:aws:s3:::photos"},
        "object": {"key": "photos%2Fsummer+beach+%281%29.jpg", "size": 5, "eTag": "abc"},
    },
}


def test_sqs_bodies() -> None:
    assert s3_records(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "photos"})) == []
    assert s3_records(json.dumps({"Records": [MOTO_RECORD]})) == [MOTO_RECORD]
    sns = {"Type": "Notification", "Message": json.dumps({"Records": [MOTO_RECORD]})}
    assert s3_records(json.dumps(sns)) == [MOTO_RECORD]
    assert s3_records("not json") is None
    assert s3_records(json.dumps({"hello": "world"})) is None
    assert s3_records(json.dumps({"Records": [{"eventSource": "aws:sqs"}]})) == []


def test_records_are_normalised_to_what_s3_sends() -> None:
    rec = normalize_record(MOTO_RECORD, region="us-east-1", seq=0x1234)
    obj = rec["s3"]["object"]
    assert obj["key"] == "photos/summer+beach+%281%29.jpg"  # '/' kept, as S3 does; moto encodes it
    assert obj["size"] == 5 and obj["eTag"] == "abc" and obj["sequencer"] == "000000000000001234"
    assert rec["eventTime"] == "2024-05-01T10:00:00.123Z" and rec["awsRegion"] == "eu-west-1"
    assert rec["s3"]["configurationId"] == "cfg1" and rec["s3"]["bucket"]["ownerIdentity"]["principalId"]
    assert {"userIdentity", "requestParameters", "responseElements"} <= set(rec)
    removed = normalize_record(
        {**MOTO_RECORD, "eventName": "ObjectRemoved:Delete"}, region="us-east-1", seq=1
    )
    assert "size" not in removed["s3"]["object"] and "eTag" not in removed["s3"]["object"]
    real = {
        **MOTO_RECORD,
        "s3": {**MOTO_RECORD["s3"], "object": {"key": "a+b", "size": 1, "eTag": "e", "sequencer": "00AA"}},
    }
    assert normalize_record(real, region="us-east-1", seq=1)["s3"]["object"]["sequencer"] == "00AA"


def test_journal_survives_reopen_torn_lines_and_compaction(tmp_path: Path) -> None:
    path = tmp_path / "objects.jsonl"
    objects = AnnouncedObjects(path)
    assert objects.empty_journal
    objects.mark_started()
    s1 = objects.next_sequencer(100)
    objects.record("a.txt", ObjectVersion(size=1, etag="e1", stamp="s1", seq=s1))
    objects.record("b.txt", ObjectVersion(size=2, etag="e2", stamp="s2", seq=objects.next_sequencer(50)))
    objects.forget("b.txt")
    objects.close()
    objects.close()
    with open(path, "ab") as f:
        f.write(b'{"k":"c.txt","v":[3,')  # a crash mid-write: never acknowledged
    again = AnnouncedObjects(path)
    assert not again.empty_journal and again.keys() == ["a.txt"] and again.get("a.txt").etag == "e1"
    assert again.next_sequencer(0) > s1 + 1  # sequencers keep growing across restarts
    for i in range(1200):  # many versions of few keys: the journal is compacted, the content kept
        again.record(f"k{i % 3}", ObjectVersion(size=i, etag="e", stamp=str(i), seq=again.next_sequencer(0)))
    again.close()
    assert len(path.read_text().splitlines()) < 1000
    third = AnnouncedObjects(path)
    assert sorted(third.keys()) == ["a.txt", "k0", "k1", "k2"] and third.get("k2").size == 1199
    third.close()


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        (
            "{kind: s3, bucket: Bad_Name, directory: d}",
            "sources.up.bucket: 'Bad_Name' is not a valid bucket name",
        ),
        ("{kind: s3, bucket: ok-bucket, directory: d, queue: q}", "sources.up.queue: give either directory"),
        (
            "{kind: s3, bucket: ok-bucket, endpoint: 'http://x', access_key_id: k}",
            "sources.up.access_key_id: give both access_key_id and",
        ),
        ("{kind: s3, bucket: ok-bucket, directory: d, stable_s: -1}", "sources.up.stable_s"),
    ],
)
def test_config_problems_name_the_key(source: str, problem: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(f"sources:\n  up: {source}\n")
    assert any(p.startswith(problem) for p in e.value.problems), e.value.problems


def test_route_event_types_are_checked() -> None:
    text = """
functions: {}
sources:
  up: {kind: s3, bucket: ok-bucket, directory: d}
routes:
  - {source: up, function: f, events: ["ObjectCreated:*", "s3:ObjectRemoved:*"]}
"""
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    assert any(
        p.startswith("routes[0].events: unknown S3 event type 's3:ObjectRemoved:*'") for p in e.value.problems
    )


class FakeSqs:
    """Records what the source asks of SQS (a fake: unit test of the acknowledgement logic only)."""

    def __init__(self) -> None:
        self.deleted: list[str] = []
        self.released: list[str] = []

    async def delete_message(self, *, QueueUrl: str, ReceiptHandle: str) -> None:
        self.deleted.append(ReceiptHandle)

    async def change_message_visibility_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> None:
        self.released.extend(e["ReceiptHandle"] for e in Entries if e["VisibilityTimeout"] == 0)


class Submit:
    def __init__(self, refuse_from: int | None = None) -> None:
        self.envelopes: list[Envelope] = []
        self.refuse_from = refuse_from

    async def __call__(self, envelopes: Sequence[Envelope]) -> Delivery:
        if self.refuse_from is not None and len(self.envelopes) >= self.refuse_from:
            raise Throttled("busy")
        self.envelopes.extend(envelopes)
        return Delivery(queued=len(envelopes))


def message(handle: str, body: Any) -> dict[str, Any]:
    return {
        "MessageId": handle,
        "ReceiptHandle": handle,
        "Body": body if isinstance(body, str) else json.dumps(body),
    }


def queued_source(submit: Submit, tmp_path: Path) -> QueuedNotifications:
    cfg = parse_config("sources:\n  q: {kind: s3, bucket: photos, endpoint: 'http://x', queue: q}\n").sources[
        "q"
    ]
    return QueuedNotifications(
        SourceContext(name="q", config=cfg, routes=[], state_dir=tmp_path, clock=FakeClock(), submit=submit)
    )


async def test_messages_are_deleted_only_after_submit_accepts_them(tmp_path: Path) -> None:
    submit, sqs = Submit(refuse_from=1), FakeSqs()
    source = queued_source(submit, tmp_path)
    batch = [
        message("test", {"Service": "Amazon S3", "Event": "s3:TestEvent"}),
        message("junk", "hello"),
        message("one", {"Records": [MOTO_RECORD]}),
        message("two", {"Records": [MOTO_RECORD]}),
        message("three", {"Records": [MOTO_RECORD]}),
    ]
    with pytest.raises(Throttled):
        await source._handle(sqs, "url", batch)
    assert len(submit.envelopes) == 1 and submit.envelopes[0].subject == "photos/summer beach (1).jpg"
    assert sqs.deleted == ["test", "junk", "one"]  # the TestEvent and junk without an invocation
    assert sqs.released == ["two", "three"]  # back in the queue at once, in order, not after a timeout
