"""Fixture: for each mail it receives, sends one more to the same inbox, with its trace as a mail header.

$SMTP_PORT is the router's inbox. X-Amzn-Trace-Id on the mail lets the router count the chain.
"""

import os
import smtplib
from email.message import EmailMessage


def handler(event, context):
    subject = event["Records"][0]["ses"]["mail"]["commonHeaders"]["subject"]
    message = EmailMessage()
    message["From"], message["To"] = "loop@example.test", "inbox@example.test"
    message["Subject"] = f"re: {subject}"
    message["X-Amzn-Trace-Id"] = os.environ["_X_AMZN_TRACE_ID"]
    message.set_content("again\n")
    with smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]), timeout=10) as client:
        client.send_message(message)
    return {"sent": message["Subject"]}
