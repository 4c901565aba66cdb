"""The source contract (router/core/ports.py), checked the same way for every source kind.

Each test runs once per kind driver (tests/contract/drivers/); what each clause means for each kind is in
tests/contract/README.md. Waits poll conditions, bounded by a hang guard; nothing sleeps a fixed time.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from router.config.sources import KINDS, kind_traits
from router.core.envelope import Envelope
from tests.contract.drivers import DRIVERS
from tests.contract.harness import SOURCE, WAIT_S, Harness, until

DAY_S = 86400.0


def test_every_registered_kind_has_a_driver() -> None:
    driven = {d.kind for d in DRIVERS.values()}
    assert set(KINDS) <= driven, f"source kinds without a contract driver: {sorted(set(KINDS) - driven)}"
    assert driven <= set(KINDS), f"drivers of kinds nobody registered: {sorted(driven - set(KINDS))}"


def check_envelope(envelope: Envelope, shape: str, now: float) -> None:
    assert envelope.kind == shape
    assert envelope.source_name == SOURCE
    assert isinstance(envelope.id, str) and envelope.id.strip()
    assert envelope.type and envelope.source
    when = dt.datetime.fromisoformat(envelope.time.replace("Z", "+00:00"))
    assert when.tzinfo is not None, envelope.time
    assert abs(when.timestamp() - now) < DAY_S, f"{envelope.time} is not about now"


@pytest.mark.parametrize("event_format", ["aws", "cloudevents"])
async def test_an_event_becomes_an_envelope_the_route_receives(harness: Harness, event_format: str) -> None:
    d = harness.driver
    await harness.start(event_format)
    event = await harness.produce_delivered()

    [call] = harness.fn.with_key(event.key, "accepted")
    traits = kind_traits(d.kind)
    assert call.method == ("invoke" if traits.waits_for_result else "enqueue")
    assert call.keys == [event.key]  # the driver read the event out of the kind's shape, as rendered
    if event_format == "cloudevents" or call.envelopes:  # Kafka's aws events are rendered without envelopes
        [envelope] = call.envelopes
        check_envelope(envelope, traits.shape, d.clock.time())


async def test_the_source_acknowledges_only_after_the_outcome(harness: Harness) -> None:
    d = harness.driver
    await harness.start()
    harness.fn.hold()
    event = await d.produce()
    await until(
        lambda: harness.fn.with_key(event.key, "held"), lambda: f"{event.key} held: {harness.fn.summary()}"
    )
    assert not await d.acknowledged(event), "acknowledged before the outcome was known"

    harness.fn.release()
    await until(lambda: d.acknowledged(event), f"{event.key} acknowledged once its outcome was known")
    assert len(harness.fn.with_key(event.key, "accepted")) == 1


async def test_a_refusal_leaves_the_event_unacknowledged_and_it_is_delivered_later(harness: Harness) -> None:
    d = harness.driver
    await harness.start()
    harness.fn.refuse(1)
    harness.fn.hold()  # the calls after the refusal wait, so the source can be looked at in between
    first = await d.produce()
    await until(
        lambda: harness.fn.with_key(first.key, "refused"),
        lambda: f"{first.key} refused: {harness.fn.summary()}",
    )

    event = await d.retry(first)  # pushed kinds: the sender heard the refusal and sends again
    assert event.key == first.key
    await until(
        lambda: harness.fn.with_key(event.key, "held"), lambda: f"{event.key} again: {harness.fn.summary()}"
    )
    assert not await d.acknowledged(first), "a refused event was acknowledged"
    assert not await d.acknowledged(event)

    harness.fn.release()
    await until(lambda: d.acknowledged(event), f"{event.key} acknowledged after its redelivery")
    assert [c.state for c in harness.fn.calls if event.key in c.keys] == ["refused", "accepted"]


async def test_stop_is_prompt_and_close_is_idempotent(harness: Harness) -> None:
    await harness.start()
    await harness.produce_delivered()
    source = harness.source
    assert source is not None
    await harness.stop()  # cancels run() and closes; bounded by wait_for (a hang guard, not a timing check)
    await asyncio.wait_for(source.aclose(), WAIT_S)
    await asyncio.wait_for(source.aclose(), WAIT_S)


async def test_a_restart_delivers_nothing_twice_that_was_acknowledged(harness: Harness) -> None:
    d = harness.driver
    await harness.start()
    before = await harness.produce_delivered()
    await harness.stop()

    await harness.start()
    since = len(harness.fn.calls)
    after = await harness.produce_delivered()  # in order behind anything the source would deliver again
    keys = [k for c in harness.fn.calls[since:] for k in c.keys]
    assert before.key not in keys, f"{before.key} delivered again after the restart: {harness.fn.summary()}"
    assert after.key in keys and await d.acknowledged(before)
