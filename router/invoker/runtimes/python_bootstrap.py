"""router's Python runtime: the Lambda Runtime API loop for `python3.X` functions.

Started by the invoker as `python -S -u python_bootstrap.py DATA_LIMIT SITE_DIRS` with Lambda's environment
(AWS_LAMBDA_RUNTIME_API, _HANDLER, LAMBDA_TASK_ROOT, ...) and the code folder as working directory. It
behaves as AWS's Python runtime (awslambdaric) does for the handler:

* the handler `module.function` is imported from LAMBDA_TASK_ROOT; failures are posted to /init/error as
  Runtime.ImportModuleError ("Unable to import module 'x': ..."), Runtime.UserCodeSyntaxError,
  Runtime.HandlerNotFound ("Handler 'f' missing on module 'x'"), Runtime.MalformedHandlerName, or the
  exception's class name for any other error raised at import; then the process exits 1;
* each event is `json`-decoded and passed with a Lambda-like context object; the return value is
  JSON-encoded (Decimal as a number; anything else not serialisable fails as Runtime.MarshalError);
* an exception becomes {"errorMessage", "errorType" (class name), "requestId", "stackTrace"}, is logged as
  "[ERROR] Type: message" with the traceback, and is posted to /error;
* the root logger gets Lambda's handler ("[LEVEL]\\t<time>\\t<request id>\\t<message>") when the code uses
  `logging` (it is configured lazily, so functions that never log do not pay for importing it).

With `_ROUTER_WRITES` in its environment it first installs python_writes.py's audit hook (loop protection:
the writes a function starts into the router's own sources are noted in a journal).

Also started as `python -S -u python_bootstrap.py --zygote FD`: a template process that forks instances
(runtimes/python_zygote.py); each forked child then runs main() as a freshly started one would.

It talks HTTP/1.1 over one kept-alive socket rather than with http.client: importing http.client (and the
email package behind it) would add about 20 ms to every cold start.
"""

import gc
import json
import os
import socket
import sys
import time

_PREFIX = "/2018-06-01/runtime"


class _Fault(Exception):
    def __init__(self, error_type, message, trace=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


class RuntimeClient:
    """A minimal HTTP/1.1 client for our own Runtime API server (it always sends Content-Length).

    An answer and the request for the next event go out in one write (HTTP/1.1 pipelining), and the server
    answers both in one write once the next event is there: one round trip per call instead of two.
    """

    def __init__(self, address, unix=None):
        host, _, port = address.rpartition(":")
        self._address = (host, int(port))
        self._unix = unix  # the same API on a Unix socket, when the router offers one: no TCP stack
        self._sock = None
        self._buf = bytearray()
        # Received into one reused buffer: sock.recv(256 KB) would allocate (mmap) a fresh one every time.
        self._chunk = bytearray(262144)
        self._view = memoryview(self._chunk)
        self._next = self._head("GET", "/invocation/next", 0)
        self._rest = f"HTTP/1.1\r\nHost: {host}\r\nContent-Length: "  # an answer's head after its path

    def _connect(self):
        # Not socket.create_connection: its getaddrinfo imports the idna codec (with stringprep and
        # unicodedata), 2-3 ms of every cold start; the address is a numeric IPv4 one.
        if self._unix is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(self._unix)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.connect(self._address)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock, self._buf = sock, bytearray()
        return sock

    def _head(self, method, path, length, headers=()):
        head = [f"{method} {_PREFIX}{path} HTTP/1.1", f"Host: {self._address[0]}"]
        head.extend(f"{k}: {v}" for k, v in headers)
        head.append(f"Content-Length: {length}")
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")

    def request(self, method, path, body=b"", headers=()):
        sock = self._sock or self._connect()
        sock.sendall(self._head(method, path, len(body), headers) + body)
        return self._read_response(sock)

    def _recv(self, sock):
        n = sock.recv_into(self._chunk)
        if not n:
            raise ConnectionError("runtime API closed the connection")
        self._buf += self._view[:n]

    def _read_response(self, sock):
        while True:
            end = self._buf.find(b"\r\n\r\n")
            while end < 0:
                self._recv(sock)
                end = self._buf.find(b"\r\n\r\n")
            lines = self._buf[:end].decode("latin-1").split("\r\n")
            del self._buf[: end + 4]
            status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if status == 100:
                continue
            length = int(headers.get("content-length", "0"))
            while len(self._buf) < length:
                self._recv(sock)
            body = bytes(self._buf[:length])
            del self._buf[:length]
            if headers.get("connection", "").lower() == "close":
                sock.close()
                self._sock = None
            return status, headers, body

    def next(self):
        return _event(self.request("GET", "/invocation/next"))

    def _answer_and_next(self, path, body, headers=()):
        """POST an answer and GET the next event; returns the next event (headers, body)."""
        sock = self._sock or self._connect()
        sock.sendall(self._head("POST", path, len(body), headers) + body + self._next)
        return self._after_answer(sock)

    def _after_answer(self, sock):
        self._read_response(sock)  # the answer's 202 (or 4xx: nothing to do about it here)
        if self._sock is not sock:
            return self.next()  # the server closed after the answer, dropping the pipelined GET
        return _event(self._read_response(sock))

    def respond(self, request_id, body):
        """Answer the event and wait for the next one."""
        sock = self._sock or self._connect()
        head = f"POST {_PREFIX}/invocation/{request_id}/response {self._rest}{len(body)}\r\n\r\n"
        sock.sendall(b"".join((head.encode("latin-1"), body, self._next)))
        return self._after_answer(sock)

    def fail(self, request_id, error):
        """Report the event's error and wait for the next one."""
        body, error_type = _encode_error(error)
        return self._answer_and_next(f"/invocation/{request_id}/error", body, _error_headers(error_type))

    def init_error(self, error):
        body, error_type = _encode_error(error)
        return self.request("POST", "/init/error", body, _error_headers(error_type))[0]


def _event(response):
    status, headers, body = response
    if status != 200:
        # 403 means an answer went missing on our side; there is nothing sensible to retry.
        raise ConnectionError(f"runtime API /next answered {status}: {body[:200]!r}")
    return headers, body


def _error_headers(error_type):
    return (("Content-Type", "application/json"), ("Lambda-Runtime-Function-Error-Type", error_type))


def _encode_error(error):
    return json.dumps(error).encode(), error["errorType"]


# ---------------------------------------------------------------------------------------------------------
# The context object


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self):
        self.cognito_identity_id = self.cognito_identity_pool_id = None


class Client:
    __slots__ = ("app_package_name", "app_title", "app_version_code", "app_version_name", "installation_id")


class ClientContext:
    __slots__ = ("client", "custom", "env")


def _obj(cls, data):
    if data is None:
        return None
    obj = cls()
    for key in cls.__slots__:
        setattr(obj, key, data.get(key))
    return obj


_ENVIRONMENT_FIELDS = (
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
)
_context_env = None  # their values in this instance, read at its first call


class LambdaContext:
    def __init__(self, request_id, deadline_ms, arn, client_context, identity):
        global _context_env
        if _context_env is None:
            # What awslambdaric's context reads from the environment each time it is made: the instance's
            # own, fixed for its life, so read once rather than in five os.environ lookups a call.
            _context_env = tuple(os.environ.get(name) for name in _ENVIRONMENT_FIELDS)
        self.aws_request_id = request_id
        (
            self.log_group_name,
            self.log_stream_name,
            self.function_name,
            self.memory_limit_in_mb,
            self.function_version,
        ) = _context_env
        self.invoked_function_arn = arn
        self.client_context = _obj(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _obj(Client, self.client_context.client)
        self.identity = _obj(CognitoIdentity, identity) if identity else CognitoIdentity()
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},invoked_function_arn={self.invoked_function_arn}])"
        )


def _json_header(headers, name):
    raw = headers.get(name)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------------------
# Handler loading, errors, logging

_request_id = ""
_logging_ready = False


def load_handler(handler):
    modname, dot, fname = handler.rpartition(".")
    if not dot or not modname or not fname:
        raise _Fault("Runtime.MalformedHandlerName", f"Bad handler '{handler}': not enough values to unpack")
    import importlib

    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise _Fault(
                "Runtime.BuiltInModuleConflict",
                f"Cannot use built-in module {modname} as a handler module",
            )
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise _Fault("Runtime.ImportModuleError", f"Unable to import module '{modname}': {e}") from None
    except SyntaxError as e:
        trace = [f'  File "{e.filename}" Line {e.lineno}\n    {e.text}']
        raise _Fault(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{modname}': {e}", trace
        ) from None
    try:
        return getattr(module, fname)
    except AttributeError:
        raise _Fault("Runtime.HandlerNotFound", f"Handler '{fname}' missing on module '{modname}'") from None


def error_result(exc, request_id=""):
    if isinstance(exc, _Fault):
        return {
            "errorMessage": exc.message,
            "errorType": exc.error_type,
            "requestId": request_id,
            "stackTrace": exc.trace,
        }
    import traceback

    frames = list(traceback.extract_tb(exc.__traceback__))
    while frames and frames[0].filename == __file__:
        frames = frames[1:]
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_list(frames),
    }


def log_error(error):
    lines = [f"[ERROR] {error['errorType']}: {error['errorMessage']}"]
    if error["stackTrace"]:
        lines.append("Traceback (most recent call last):")
        lines.extend(frame.rstrip("\n") for frame in error["stackTrace"])
    sys.stdout.write("\n".join(lines) + "\n")


def setup_logging():
    """Lambda's log format on the root logger, installed once the function has imported `logging`."""
    global _logging_ready
    _logging_ready = True
    import logging

    class RequestIdFilter(logging.Filter):
        def filter(self, record):
            record.aws_request_id = _request_id
            return True

    handler = logging.StreamHandler(sys.stdout)
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s", "%Y-%m-%dT%H:%M:%S"
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    logging.getLogger().addHandler(handler)


class _Encoder(json.JSONEncoder):
    def default(self, o):
        if type(o).__name__ == "Decimal":
            return int(o) if o == o.to_integral_value() else float(o)
        return super().default(o)


_ENCODER = _Encoder(separators=(",", ":"))  # json.dumps(cls=...) would build one per call


class TraceEnv:
    """`_X_AMZN_TRACE_ID` for each call, as Lambda's runtime sets it: in os.environ and in the process's C
    environment (what getenv(3) and child processes see).

    Not with `os.environ[...] = value` alone: that calls setenv(3), and glibc keeps every value it was ever
    given (they are never freed), so a trace id per call grew an instance by about 140 bytes a call, 28 MB
    in 200,000 calls: a 128 MB function under steady load would reach its memory limit. Here the C
    environment points at one buffer of ours (putenv(3) takes the string itself and copies nothing), which
    each call rewrites; os.environ's own mapping gets the value beside it. Without ctypes or glibc it falls
    back to os.environ.
    """

    NAME = "_X_AMZN_TRACE_ID"
    KEY = b"_X_AMZN_TRACE_ID"  # the name as os.environ's mapping and the C environment hold it

    def __init__(self):
        self._buf = None
        self._raw = None  # the value last set, as os.environ's mapping holds it while nobody changed it
        try:
            import ctypes  # the zygote preloads it

            self._ctypes = ctypes
            self._putenv = ctypes.CDLL(None).putenv
            self._data = os.environ._data  # type: ignore[attr-defined]  # os.environ's encoded mapping
        except (ImportError, OSError, AttributeError):
            self._putenv = None  # type: ignore[assignment]

    def set(self, value):
        raw = os.fsencode(value) if value else b""
        if not raw or b"\0" in raw:
            os.environ.pop(self.NAME, None)  # unsetenv: our buffer, if any, is no longer in use
            return
        if self._putenv is None:
            os.environ[self.NAME] = value
            return
        entry = self.KEY + b"=" + raw
        buf = self._buf
        if buf is None or len(entry) >= len(buf):
            buf = self._ctypes.create_string_buffer(entry, max(256, 2 * len(entry)))
        else:
            buf.value = entry  # in place: where the environment points already, unless...
        if buf is not self._buf or self._data.get(self.KEY) is not self._raw:
            self._putenv(buf)  # ...the handler set or removed the variable since (os.environ says so)
            self._buf = buf  # a buffer this replaces is freed only now that the environment is elsewhere
        self._raw = raw
        self._data[self.KEY] = raw


# ---------------------------------------------------------------------------------------------------------
# The loop


def invoke(client, handler, headers, body, trace):
    """Run one event, answer it; returns the next event."""
    global _request_id
    request_id = headers["lambda-runtime-aws-request-id"]
    _request_id = request_id
    trace.set(headers.get("lambda-runtime-trace-id"))
    if not _logging_ready and "logging" in sys.modules:
        setup_logging()
    context = LambdaContext(
        request_id,
        int(headers.get("lambda-runtime-deadline-ms", "0")),
        headers.get("lambda-runtime-invoked-function-arn"),
        _json_header(headers, "lambda-runtime-client-context"),
        _json_header(headers, "lambda-runtime-cognito-identity"),
    )
    try:
        event = json.loads(body) if body else None
    except ValueError as e:
        return client.fail(
            request_id,
            error_result(_Fault("Runtime.UnmarshalError", f"Unable to unmarshal input: {e}"), request_id),
        )
    try:
        result = handler(event, context)
    except Exception as e:
        error = error_result(e, request_id)
        log_error(error)
        return client.fail(request_id, error)
    try:
        payload = _ENCODER.encode(result).encode()
    except (TypeError, ValueError) as e:
        error = error_result(_Fault("Runtime.MarshalError", f"Unable to marshal response: {e}"), request_id)
        log_error(error)
        return client.fail(request_id, error)
    return client.respond(request_id, payload)


def main():
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    if limit:
        import resource

        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    if os.environ.get("_ROUTER_WRITES"):  # loop protection for writes that carry no trace (python_writes.py)
        import python_writes  # beside this file: imported before sys.path drops our folder

        python_writes.install()
    task_root = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
    site_dirs = [p for p in (sys.argv[2].split(os.pathsep) if len(sys.argv) > 2 else []) if p]
    # Our own folder must not shadow the function's modules; the function's folder comes first, as on Lambda.
    here = os.path.dirname(os.path.abspath(__file__))
    # Layers (PYTHONPATH): read here too, because an instance forked from the zygote did not start with it.
    layers = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    rest = [p for p in sys.path if p and p != here and p not in layers]
    sys.path[:] = [task_root, *layers, *rest, *site_dirs]
    sys.argv = [sys.argv[0]]
    import site  # with -S this does not run site.main(); it only gives back the exit()/quit() builtins

    site.setquit()
    unix = os.environ.pop("_ROUTER_RUNTIME_API_UNIX", None)
    client = RuntimeClient(os.environ["AWS_LAMBDA_RUNTIME_API"], unix)
    try:
        handler = load_handler(os.environ["_HANDLER"])
    except Exception as e:
        error = error_result(e)
        log_error(error)
        client.init_error(error)
        sys.exit(1)
    if "logging" in sys.modules:
        setup_logging()
    trace = TraceEnv()
    headers, body = client.next()
    while True:
        headers, body = invoke(client, handler, headers, body, trace)


# What a Python instance imports anyway at some point: a zygote (see python_zygote.py) loads it up front.
ZYGOTE_PRELOAD = ("ctypes", "importlib", "resource", "site")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--zygote"]:
        import python_zygote  # beside this file, which is sys.path[0] here

        for name in ZYGOTE_PRELOAD:
            __import__(name)
        # The first compile() of a process sets up the compiler's state (its AST types): 1.5 ms that every
        # cold start would pay for the function's module (its code is read-only to an isolated instance, so
        # no __pycache__ is left for the next one). Done here, forked instances inherit it.
        compile("pass", "<zygote>", "exec")
        # What the zygote holds stays out of every collection, so an instance's collector never writes to
        # (and so copies) the pages it shares with the zygote.
        gc.freeze()
        python_zygote.serve(int(sys.argv[2]))  # returns in a forked instance only, set up as a fresh one
    main()
