"""SES receipt handler: logs who wrote and what about (send mail to anything@example.test on port 2525)."""


def handler(event, context):
    for record in event["Records"]:
        mail = record["ses"]["mail"]
        headers = mail["commonHeaders"]
        print(f"mail from {headers.get('from')} to {mail['destination']}: {headers.get('subject')!r}")
    return {"ok": True}
