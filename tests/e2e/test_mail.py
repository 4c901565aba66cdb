"""Mail sent over SMTP: stored in the mail bucket, and an SES receipt event for the function."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from typing import Any

from tests.e2e.stack import NAMES, Records, Stack, unique


def ses(record: dict[str, Any]) -> dict[str, Any]:
    [event] = record["event"]["Records"]
    return event["ses"]


def test_mail_reaches_the_function_and_is_stored_where_the_event_says(stack: Stack, records: Records) -> None:
    subject = unique("Quarterly report")
    message = EmailMessage()
    message["From"] = "ann@sender.test"
    message["To"] = "team@example.test"
    message["Subject"] = subject
    message.set_content("Numbers attached.\n")
    message.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="numbers.csv")
    with smtplib.SMTP(stack.smtp_host, stack.smtp_port, timeout=30) as smtp:
        refused = smtp.send_message(message)

    assert refused == {}
    [record] = records.wait_for("mail", lambda r: ses(r)["mail"]["commonHeaders"].get("subject") == subject)
    mail, receipt = ses(record)["mail"], ses(record)["receipt"]
    assert record["function"] == "on_mail"
    assert mail["source"] == "ann@sender.test"
    assert mail["destination"] == ["team@example.test"]
    assert receipt["recipients"] == ["team@example.test"]
    assert receipt["action"]["bucketName"] == NAMES.MAIL_BUCKET
    stored = stack.client("s3").get_object(Bucket=NAMES.MAIL_BUCKET, Key=receipt["action"]["objectKey"])
    raw = stored["Body"].read()
    assert subject.encode() in raw
    assert b"numbers.csv" in raw
