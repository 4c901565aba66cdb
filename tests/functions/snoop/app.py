"""Fixture: tries to read each path in event["paths"] (a file: its first bytes; a folder: its listing) and
returns, per path, "read" or the error's name; also its uid, gid, and what /tmp holds."""

import os


def _try(path):
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            with open(path, "rb") as f:
                f.read(16)
        return "read"
    except OSError as e:
        return type(e).__name__


def handler(event, context):
    paths = event.get("paths", []) if isinstance(event, dict) else []
    with open("/tmp/snoop-was-here", "w") as f:
        f.write(context.aws_request_id)
    return {
        "results": {p: _try(p) for p in paths},
        "uid": os.getuid(),
        "gid": os.getgid(),
        "tmp": sorted(os.listdir("/tmp")),
        "own_code": sorted(os.listdir(os.environ["LAMBDA_TASK_ROOT"])),
    }
