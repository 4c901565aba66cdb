"""The kind drivers of the contract suite, by test id. Every registered source kind needs at least one
(tests/contract/test_contract.py checks it): a new kind gets the whole suite by adding its driver here."""

from __future__ import annotations

from tests.contract.drivers.base import Event, KindDriver
from tests.contract.drivers.dynamodb import DynamoDBDriver
from tests.contract.drivers.email import EmailDriver
from tests.contract.drivers.http import HttpDriver
from tests.contract.drivers.kafka import KafkaDriver
from tests.contract.drivers.kinesis import KinesisDriver
from tests.contract.drivers.s3 import S3FolderDriver, S3QueueDriver
from tests.contract.drivers.schedule import ScheduleDriver
from tests.contract.drivers.sqs import SnsDriver, SqsDriver

DRIVERS: dict[str, type[KindDriver]] = {
    d.name: d
    for d in (
        S3FolderDriver,
        S3QueueDriver,
        DynamoDBDriver,
        KafkaDriver,
        KinesisDriver,
        EmailDriver,
        ScheduleDriver,
        HttpDriver,
        SqsDriver,
        SnsDriver,
    )
}

__all__ = ["DRIVERS", "Event", "KindDriver"]
