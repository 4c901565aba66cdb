"""Fixture: for each Kafka record it receives, produces one record to the same topic, with its trace header.

$BROKERS is the bootstrap server. A function that copies _X_AMZN_TRACE_ID into an X-Amzn-Trace-Id record
header lets the router count the chain (router/trace.py); without it, the loop is invisible to the router.
"""

import asyncio
import os

from aiokafka import AIOKafkaProducer


async def produce(topic, value):
    producer = AIOKafkaProducer(bootstrap_servers=os.environ["BROKERS"], enable_idempotence=False)
    await producer.start()
    try:
        trace = os.environ["_X_AMZN_TRACE_ID"].encode()
        await producer.send_and_wait(topic, value, headers=[("X-Amzn-Trace-Id", trace)])
    finally:
        await producer.stop()


def handler(event, context):
    for records in event["records"].values():
        for record in records:
            asyncio.run(produce(record["topic"], b"again"))
    return {"trace": os.environ["_X_AMZN_TRACE_ID"]}
