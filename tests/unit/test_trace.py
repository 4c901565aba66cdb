"""router/trace.py: reading, writing and deepening the X-Ray style trace header loop protection counts."""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from router.core import trace as T


def fixed_hex(n: int) -> str:
    return "a" * n


def test_parse_reads_every_field_and_keeps_unknown_ones_in_order() -> None:
    t = T.parse(
        "Root=1-65a1b2c3-0123456789abcdef01234567;Parent=89abcdef01234567;Sampled=1;Self=x;Lineage=1f2e3d4c:3"
    )
    assert t is not None
    assert (t.root, t.parent, t.sampled, t.hops, t.depth) == (
        "1-65a1b2c3-0123456789abcdef01234567", "89abcdef01234567", "1", 3, 4,
    )  # fmt: skip
    assert t.extra == (("Self", "x"),)


def test_parse_refuses_what_has_no_root() -> None:
    for header in (None, "", "garbage", "Parent=1;Sampled=0", "Root=;Parent=1", ";;;"):
        assert T.parse(header) is None, header


def test_parse_undoes_botocores_quoting_and_takes_the_highest_lineage_count() -> None:
    header = "Root=1-a-b;Lineage=11111111:2|22222222:7|33333333:1;Note=a b"
    wire = quote(header, safe="-=;:+&[]{}\"',")  # what botocore sends
    assert "%7C" in wire and "%20" in wire
    t = T.parse(wire)
    assert t is not None and t.hops == 7 and t.extra == (("Note", "a b"),)


def test_a_lineage_without_a_count_is_hop_zero() -> None:
    assert T.parse("Root=1-a-b;Lineage=1f2e3d4c").hops == 0  # type: ignore[union-attr]
    assert T.parse("Root=1-a-b;Lineage=x:y").hops == 0  # type: ignore[union-attr]


def test_next_hop_keeps_the_root_and_counts_one_more() -> None:
    first = T.next_hop(None, fixed_hex)
    assert (first.hops, first.depth, first.parent) == (0, 1, "a" * 16)
    assert first.root.startswith("1-") and first.root.endswith("a" * 24)
    second = T.next_hop(first.header(), lambda n: "b" * n)
    assert (second.root, second.hops, second.parent) == (first.root, 1, "b" * 16)
    assert T.depth(second.header()) == 2


def test_next_hop_of_a_foreign_trace_continues_it_and_of_garbage_starts_a_chain() -> None:
    aws = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
    t = T.next_hop(aws, fixed_hex)
    assert (t.root, t.sampled, t.hops) == ("1-5759e988-bd862e3fe1be46a994272793", "1", 1)
    assert T.next_hop("depth=3", fixed_hex).hops == 0


def test_header_spells_lineage_as_aws_does() -> None:
    t = T.Trace(root="1-a-b", parent="p", sampled="0", hops=5)
    assert t.header() == f"Root=1-a-b;Parent=p;Sampled=0;Lineage={zlib.crc32(b'1-a-b'):08x}:5"
    # Every character survives botocore's quoting unchanged.
    assert quote(t.header(), safe="-=;:+&[]{}\"',") == t.header()


hex_ids = st.text(alphabet="0123456789abcdef", min_size=1, max_size=24)
keys = st.sampled_from(["Self", "Foo", "X1"])
values = st.text(alphabet="abcXYZ019-_.", min_size=0, max_size=8)


@given(
    root=hex_ids, parent=st.none() | hex_ids, sampled=st.sampled_from(["0", "1", "?"]),
    hops=st.integers(0, 10_000), extra=st.lists(st.tuples(keys, values), max_size=3),
)  # fmt: skip
def test_header_and_parse_round_trip(
    root: str, parent: str | None, sampled: str, hops: int, extra: list[tuple[str, str]]
) -> None:
    t = T.Trace(root=f"1-{root}", parent=parent, sampled=sampled, hops=hops, extra=tuple(extra))
    assert T.parse(t.header()) == t
    assert T.next_hop(t.header()).depth == t.depth + 1


def test_carriers() -> None:
    assert T.find_header([("Subject", "x"), ("x-amzn-trace-id", "Root=1")]) == "Root=1"
    assert T.find_header([("Subject", "x")]) is None
    assert T.from_kafka_headers([("other", b"1"), ("X-Amzn-Trace-Id", b"Root=1-a")]) == "Root=1-a"
    assert T.from_kafka_headers([("X-Amzn-Trace-Id", None)]) is None
    assert T.from_kafka_headers(None) is None


def test_mail_carrier_undoes_the_encoded_words_mail_clients_fold_long_values_into() -> None:
    from email.message import EmailMessage

    header = T.Trace(root="1-6634f2a0-9f1c2b3d4e5f60718293a4b5", parent="53995c3f42cd8ad8", hops=3).header()
    message = EmailMessage()
    message["X-Amzn-Trace-Id"] = header
    raw = message.as_string().split("\n\n")[0]
    assert "=?utf-8?q?" in raw  # Python folds it so
    value = raw.split(": ", 1)[1].replace("\n", "")
    headers = [{"name": "Subject", "value": "x"}, {"name": "X-Amzn-Trace-Id", "value": value}]
    assert T.from_mail_headers(headers) == header
    assert T.from_mail_headers([{"name": "x-amzn-trace-id", "value": header}]) == header
    assert T.from_mail_headers([{"name": "X-Amzn-Trace-Id", "value": "=?bogus?q?x?="}]) is None
    assert T.from_mail_headers([]) is None


def test_xattr_carrier(tmp_path: Path) -> None:
    marked, plain = tmp_path / "marked", tmp_path / "plain"
    marked.write_bytes(b"x")
    plain.write_bytes(b"x")
    os.setxattr(marked, T.XATTR, b"Root=1-a-b;Lineage=0:4")
    assert T.from_xattr(marked) == "Root=1-a-b;Lineage=0:4"
    assert T.from_xattr(plain) is None
    assert T.from_xattr(tmp_path / "missing") is None
