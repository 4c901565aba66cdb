"""Loop protection in the Python runtime: notes the writes a function starts into the router's own sources.

Installed by python_bootstrap.py when the router set `_ROUTER_WRITES` (the journal folder) and at least one
of `_ROUTER_WATCHED_DIRS` / `_ROUTER_AWS_ENDPOINTS`; the journal's format and what reads it are in
router/core/writes.py (this file runs in the instance and imports nothing of the router). A PEP 578 audit
hook sees, before they happen:

* `open` for writing (mode with w, a, x or +; os.open with O_WRONLY, O_RDWR or O_CREAT) and `os.rename`
  (os.rename and os.replace) of a path under a watched folder: a `file` entry for the path (the target of a
  rename);
* `http.client.send` of a request to one of the endpoints (any HTTP client built on http.client: botocore,
  urllib3, requests): `PUT /bucket/key` and the completion of a multipart upload (`s3`), Kinesis
  `PutRecord` / `PutRecords` (`kinesis`, per record), DynamoDB `PutItem`, `UpdateItem`, `DeleteItem`,
  `BatchWriteItem` and `TransactWriteItems` (`dynamodb`, per item). Path-style S3 URLs only (what botocore
  uses for an endpoint given as an address).

Each entry carries the invocation's trace (`_X_AMZN_TRACE_ID`) and is appended to `<journal>/<pid>.jsonl`
with one write. The hook costs a set lookup for every other audited event; a failure inside it is ignored,
never the function's problem.
"""

import base64
import hashlib
import json
import os
import sys
import time

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT
_EVENTS = frozenset(("open", "os.rename", "http.client.send"))
_KINESIS = "Kinesis_20131202."
_DYNAMODB = "DynamoDB_20120810."
_DYNAMODB_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


class _Journal:
    def __init__(self, folder, dirs, endpoints):
        self.folder = folder
        self.dirs = tuple(d.rstrip(os.sep) + os.sep for d in dirs)
        self.endpoints = frozenset(endpoints)
        self.fd = None
        self.pid = None
        self.pending = {}  # id(connection) -> [target, headers, body bytes so far, expected length]
        self.busy = False

    def note(self, kind, **fields):
        trace = os.environ.get("_X_AMZN_TRACE_ID")
        if not trace:
            return
        line = json.dumps({"t": trace, "at": time.time(), "k": kind, **fields}) + "\n"
        if self.fd is None or self.pid != os.getpid():  # a forked child writes its own file
            self.pid = os.getpid()
            path = os.path.join(self.folder, f"{self.pid}.jsonl")
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.write(self.fd, line.encode())

    # -- files -----------------------------------------------------------------------------------------

    def file(self, path):
        if isinstance(path, int) or not self.dirs:
            return
        path = os.path.realpath(os.fsdecode(path))
        if path.startswith(self.dirs):
            self.note("file", path=path)

    # -- HTTP --------------------------------------------------------------------------------------------

    def sent(self, connection, data):
        if not self.endpoints:
            return
        data = bytes(data)
        key = id(connection)
        waiting = self.pending.get(key)
        if waiting is not None:
            waiting[2] += data
            self._maybe_done(key, waiting)
            return
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep or not head.startswith((b"PUT ", b"POST ")):
            return
        request, headers = _parse_head(head)
        if headers.get("host") not in self.endpoints:
            return
        target = headers.get("x-amz-target", "")
        if target.startswith((_KINESIS, _DYNAMODB)):
            waiting = [target, headers, body, int(headers.get("content-length", "0") or 0)]
            self.pending[key] = waiting
            self._maybe_done(key, waiting)
        else:
            self._s3(request)

    def _maybe_done(self, key, waiting):
        target, _, body, length = waiting
        if len(body) < length:
            return
        del self.pending[key]
        try:
            doc = json.loads(body[:length] or b"{}")
        except ValueError:
            return
        operation = target.split(".", 1)[1]
        if target.startswith(_KINESIS):
            self._kinesis(operation, doc)
        elif operation in _DYNAMODB_WRITES:
            self._dynamodb(operation, doc)

    def _s3(self, request):
        from urllib.parse import unquote

        method, _, rest = request.partition(" ")
        target = rest.rsplit(" ", 1)[0]
        path, _, query = target.partition("?")
        bucket, _, key = path.lstrip("/").partition("/")
        if not bucket or not key:
            return
        completes = method == "POST" and "uploadId=" in query
        if (method == "PUT" and not query) or completes:
            self.note("s3", bucket=bucket, key=unquote(key))

    def _kinesis(self, operation, doc):
        stream = _name(doc.get("StreamName") or doc.get("StreamARN") or "", "/")
        if operation == "PutRecord":
            records = [doc]
        elif operation == "PutRecords":
            records = doc.get("Records") or []
        else:
            return
        for record in records:
            data = base64.b64decode(record.get("Data") or "")
            sha = hashlib.sha256(data).hexdigest()
            self.note("kinesis", stream=stream, pk=record.get("PartitionKey", ""), sha=sha)

    def _dynamodb(self, operation, doc):
        for table, attrs in _dynamodb_items(operation, doc):
            self.note("dynamodb", table=_name(table, "table/"), attrs={k: _attr(v) for k, v in attrs.items()})


def _parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers


def _name(value, marker):
    """The name at the end of an ARN (after `marker`), or the value itself."""
    if marker in value:
        value = value.split(marker, 1)[1]
    return value.split("/", 1)[0] if marker == "table/" else value.rsplit("/", 1)[-1]


def _attr(value):
    if isinstance(value, dict) and len(value) == 1:
        ((kind, inner),) = value.items()
        return f"{kind}:{inner}"
    return json.dumps(value, sort_keys=True)


def _dynamodb_items(operation, doc):
    if operation == "PutItem":
        yield doc.get("TableName", ""), doc.get("Item") or {}
    elif operation in ("UpdateItem", "DeleteItem"):
        yield doc.get("TableName", ""), doc.get("Key") or {}
    elif operation == "BatchWriteItem":
        for table, requests in (doc.get("RequestItems") or {}).items():
            for request in requests:
                put, delete = request.get("PutRequest"), request.get("DeleteRequest")
                yield table, (put or {}).get("Item") or (delete or {}).get("Key") or {}
    elif operation == "TransactWriteItems":
        for item in doc.get("TransactItems") or []:
            for kind, body in item.items():
                if kind in ("Put", "Update", "Delete"):
                    yield body.get("TableName", ""), body.get("Item") or body.get("Key") or {}


def install():
    """Add the audit hook if the router asked for it (its environment names a journal and something to
    watch). Once per process: audit hooks cannot be removed."""
    folder = os.environ.get("_ROUTER_WRITES")
    dirs = [d for d in os.environ.get("_ROUTER_WATCHED_DIRS", "").split(os.pathsep) if d]
    endpoints = [e for e in os.environ.get("_ROUTER_AWS_ENDPOINTS", "").split(",") if e]
    if not folder or not (dirs or endpoints):
        return
    journal = _Journal(folder, dirs, endpoints)

    def hook(event, args):
        if event not in _EVENTS or journal.busy:
            return
        journal.busy = True  # the journal's own open must not come back here
        try:
            if event == "open":
                path, mode, flags = args
                if (mode and any(c in mode for c in "wax+")) or (mode is None and flags & _WRITE_FLAGS):
                    journal.file(path)
            elif event == "os.rename":
                journal.file(args[1])
            else:
                journal.sent(args[0], args[1])
        except Exception:
            pass  # never the function's problem
        finally:
            journal.busy = False

    sys.addaudithook(hook)
