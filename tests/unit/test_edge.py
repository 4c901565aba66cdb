"""router.edge in isolation: the refusal log's budget, body decoding caps, the malformed-HTTP statuses."""

from __future__ import annotations

import gzip
import logging
import zlib

import pytest
from aiohttp.http_exceptions import BadHttpMessage, BadHttpMethod, BadStatusLine, LineTooLong

from router.edge.bodies import BodyRefused, content_coding, decode
from router.edge.http import HttpLimits, classify
from router.edge.rejects import Budget, RateLimitFilter, RejectLog


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_of_refusals_costs_a_burst_of_lines_then_a_few_per_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    rejects = RejectLog("test", budget=Budget(burst=5, per_s=1.0, clock=clock))
    with caplog.at_level(logging.INFO, logger="router.edge"):
        for _ in range(1000):
            rejects.refused("10.0.0.1", 400, "bad")
        clock.now = 2.0
        rejects.refused("10.0.0.1", 400, "bad")
    assert rejects.count == 1001
    assert len(caplog.records) == 6
    last = caplog.records[-1]
    assert "995 more refused" in last.getMessage()
    assert last.fields["suppressed"] == 995  # type: ignore[attr-defined]
    assert all(r.levelno == logging.INFO and r.exc_info is None for r in caplog.records)


def test_rate_limit_filter_drops_and_counts() -> None:
    clock = Clock()
    limit = RateLimitFilter(Budget(burst=2, per_s=1.0, clock=clock))
    records = [logging.LogRecord("x", logging.WARNING, "f", 1, "unrecognised", None, None) for _ in range(5)]
    assert [limit.filter(r) for r in records] == [True, True, False, False, False]
    clock.now = 1.0
    nxt = logging.LogRecord("x", logging.WARNING, "f", 1, "unrecognised", None, None)
    assert limit.filter(nxt) and "3 similar lines left out" in nxt.getMessage()


class Headers(dict[str, str]):
    def getall(self, key: str) -> list[str]:
        return [self[key]]


@pytest.mark.parametrize(
    ("value", "coding", "status"),
    [
        (None, None, None),
        ("identity", None, None),
        ("GZIP", "gzip", None),
        ("x-gzip", "x-gzip", None),
        ("deflate", "deflate", None),
        ("br", None, 415),
        ("gzip, gzip", None, 415),
        ("compress", None, 415),
    ],
)
def test_content_codings(value: str | None, coding: str | None, status: int | None) -> None:
    headers = Headers() if value is None else Headers({"Content-Encoding": value})
    if status is None:
        assert content_coding(headers) == coding  # type: ignore[arg-type]
    else:
        with pytest.raises(BodyRefused) as info:
            content_coding(headers)  # type: ignore[arg-type]
        assert info.value.status == status


async def test_decoding_zlib_raw_deflate_gzip_and_concatenated_members() -> None:
    data = b'{"a": 1}' * 1000
    raw = zlib.compressobj(wbits=-15)
    raw_deflate = raw.compress(data) + raw.flush()
    assert await decode(zlib.compress(data), "deflate", limit=len(data)) == data
    assert await decode(raw_deflate, "deflate", limit=len(data)) == data
    assert await decode(gzip.compress(data) + gzip.compress(b"!"), "gzip", limit=len(data) + 1) == data + b"!"


@pytest.mark.parametrize(
    ("body", "coding", "status", "why"),
    [
        (b'{"a": 1}', "gzip", 400, "not valid gzip"),
        (zlib.compress(b"x" * 100_000)[:-20], "deflate", 400, "truncated"),
        (zlib.compress(b"{}") + b"trailing", "deflate", 400, "after the end"),
        (zlib.compress(b"\0" * (10 * 1024 * 1024)), "deflate", 413, "decodes to more than"),
        (gzip.compress(b"\0" * (10 * 1024 * 1024)), "gzip", 413, "decodes to more than"),
    ],
)
async def test_decoding_refusals(body: bytes, coding: str, status: int, why: str) -> None:
    with pytest.raises(BodyRefused) as info:
        await decode(body, coding, limit=1024 * 1024)
    assert info.value.status == status and why in info.value.reason


async def test_decoding_past_its_time_cap_is_refused() -> None:
    with pytest.raises(BodyRefused) as info:
        await decode(zlib.compress(b"\0" * (4 * 1024 * 1024)), "deflate", limit=8 * 1024 * 1024, timeout_s=0)
    assert info.value.status == 400 and "did not decode within" in info.value.reason


def _raised(exc: Exception) -> Exception:
    try:
        raise exc
    except Exception as e:
        return e


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (LineTooLong("Status line is too long", 8190, 9000), 414),
        (LineTooLong(b"header value", 8190, 9000), 431),
        (BadHttpMessage("Too many headers received"), 431),
        (BadHttpMethod("", "Received HTTPS traffic on an HTTP port"), 400),
        (BadHttpMethod(""), 400),
        (BadStatusLine("", "Bad status line: Invalid HTTP version"), 505),
        (BadHttpMessage("Invalid header token"), 400),
    ],
)
def test_malformed_http_statuses(exc: Exception, status: int) -> None:
    got, reason = classify(_raised(exc), HttpLimits())  # type: ignore[arg-type]
    assert got == status and reason
