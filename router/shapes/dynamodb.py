"""DynamoDB Streams records (stream -> Lambda via an event source mapping), batched in `{"Records": [...]}`.

`record(...)` builds one stream record as Lambda delivers it: eventID, eventName (INSERT | MODIFY | REMOVE),
eventVersion 1.1, eventSource, awsRegion, eventSourceARN and the `dynamodb` block (ApproximateCreationDateTime
in epoch seconds, Keys, NewImage/OldImage as the view type allows, SequenceNumber, SizeBytes, StreamViewType).
Images are DynamoDB-JSON (typed attribute values); `typed(value)` turns plain Python into that form and
`from_boto(image)` turns what botocore returns (bytes for B/BS) into the JSON Lambda sends (base64 strings).
A TTL deletion (`ttl=True`) carries the `userIdentity` block DynamoDB adds for the service principal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from router.core import timefmt
from router.core.envelope import Envelope
from router.shapes import common

KIND = "dynamodb"
VIEW_TYPES = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")
EVENT_NAMES = ("INSERT", "MODIFY", "REMOVE")

Image = dict[str, dict[str, Any]]


def stream_arn(
    table: str,
    *,
    label: str = "2024-01-01T00:00:00.000",
    region: str = common.REGION,
    account: str = common.ACCOUNT,
) -> str:
    return f"arn:aws:dynamodb:{region}:{account}:table/{table}/stream/{label}"


def typed(value: Any) -> dict[str, Any]:
    """A plain Python value as a DynamoDB attribute value (str S, number N, bytes B, sets SS/NS/BS, ...)."""
    match value:
        case None:
            return {"NULL": True}
        case bool():
            return {"BOOL": value}
        case str():
            return {"S": value}
        case int() | float() | Decimal():
            return {"N": _number(value)}
        case bytes() | bytearray():
            return {"B": common.b64(bytes(value))}
        case Mapping():
            return {"M": {str(k): typed(v) for k, v in value.items()}}
        case set() | frozenset() if value and all(isinstance(v, str) for v in value):
            return {"SS": sorted(value)}
        case set() | frozenset() if value and all(isinstance(v, bytes) for v in value):
            return {"BS": [common.b64(v) for v in sorted(value)]}
        case set() | frozenset() if value:
            return {"NS": [_number(v) for v in sorted(value)]}
        case list() | tuple() | set() | frozenset():
            return {"L": [typed(v) for v in value]}
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB: {value!r}")


def _number(v: Any) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def image(item: Mapping[str, Any]) -> Image:
    """A plain Python dict as a DynamoDB image."""
    return {str(k): typed(v) for k, v in item.items()}


def from_boto(value: Any) -> Any:
    """An image (or attribute value) as botocore returns it, bytes base64-encoded as Lambda sends them."""
    if isinstance(value, bytes | bytearray):
        return common.b64(bytes(value))
    if isinstance(value, Mapping):
        return {str(k): from_boto(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [from_boto(v) for v in value]
    return value


def size_bytes(*images: Image | None) -> int:
    """DynamoDB's approximate item size: attribute names plus value sizes, over the images carried."""
    return sum(len(name.encode()) + _value_size(v) for img in images if img for name, v in img.items())


def _value_size(av: Mapping[str, Any]) -> int:
    (tag, v), *_ = av.items()
    match tag:
        case "S" | "B":
            return len(str(v).encode())
        case "N":
            return max(1, (len(str(v).lstrip("-").replace(".", "")) + 1) // 2 + 1)
        case "BOOL" | "NULL":
            return 1
        case "SS" | "BS" | "NS":
            return sum(len(str(x).encode()) for x in v)
        case "M":
            return 3 + sum(len(k.encode()) + _value_size(x) for k, x in v.items())
        case "L":
            return 3 + sum(_value_size(x) + 1 for x in v)
    return 0


def record(
    event_name: str,
    keys: Image,
    *,
    new_image: Image | None = None,
    old_image: Image | None = None,
    sequence_number: str,
    stream_arn: str,
    view_type: str = "NEW_AND_OLD_IMAGES",
    size_bytes: int | None = None,
    approx_time: float | None = None,
    event_id: str | None = None,
    ttl: bool = False,
) -> dict[str, Any]:
    """One stream record. Images are typed (see `typed`/`image`); the view type decides which are kept."""
    if event_name not in EVENT_NAMES:
        raise ValueError(f"event_name must be one of {', '.join(EVENT_NAMES)}, got {event_name!r}")
    if view_type not in VIEW_TYPES:
        raise ValueError(f"view_type must be one of {', '.join(VIEW_TYPES)}, got {view_type!r}")
    new = new_image if view_type in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES") and event_name != "REMOVE" else None
    old = old_image if view_type in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES") and event_name != "INSERT" else None
    block: dict[str, Any] = {"ApproximateCreationDateTime": int(common.now(approx_time)), "Keys": keys}
    if new is not None:
        block["NewImage"] = new
    if old is not None:
        block["OldImage"] = old
    block["SequenceNumber"] = sequence_number
    block["SizeBytes"] = size_bytes if size_bytes is not None else _size(keys, new, old)
    block["StreamViewType"] = view_type
    rec: dict[str, Any] = {
        "eventID": event_id or common.lower_hex_id(32),
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": common.arn_region(stream_arn),
        "dynamodb": block,
        "eventSourceARN": stream_arn,
    }
    if ttl:
        rec["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    return rec


def _size(keys: Image, new: Image | None, old: Image | None) -> int:
    return size_bytes(new, old) if (new or old) else size_bytes(keys)


def key_subject(keys: Mapping[str, Mapping[str, Any]]) -> str:
    """Keys as 'Id=101' or 'pk=a,sk=b' (sorted by name): the CloudEvents subject of a stream record."""
    return ",".join(f"{name}={next(iter(av.values()))}" for name, av in sorted(keys.items()))


def envelope(
    rec: dict[str, Any],
    *,
    source_name: str,
    id: str | None = None,
    trace: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Envelope:
    block = rec["dynamodb"]
    return Envelope(
        id=id or rec["eventID"],
        source=rec["eventSourceARN"],
        type=f"com.amazonaws.dynamodb.{rec['eventName']}",
        subject=key_subject(block["Keys"]) or None,
        time=timefmt.iso_s(block["ApproximateCreationDateTime"]),
        kind=KIND,
        source_name=source_name,
        record=rec,
        trace=trace,
        meta=meta or {},
    )


def wrap(envelopes: Sequence[Envelope], **_: Any) -> dict[str, Any]:
    return common.records_event(envelopes)


def sample() -> Envelope:
    keys = image({"Id": 101})
    rec = record(
        "MODIFY",
        keys,
        new_image=image({"Id": 101, "Message": "This item has changed"}),
        old_image=image({"Id": 101, "Message": "New item!"}),
        sequence_number="4421584500000000017450439092",
        stream_arn=stream_arn("orders"),
        approx_time=1_700_000_000,
        event_id="c81e728d9d4c2f636f067f89cc14862c",
    )
    return envelope(rec, source_name="orders")
