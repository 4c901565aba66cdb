"""Fixture: returns the process environment (os.environ, and the trace id in the C environment), working
directory and the start of sys.path."""

import ctypes
import os
import sys

_getenv = ctypes.CDLL(None).getenv
_getenv.restype = ctypes.c_char_p


def handler(event, context):
    return {
        "env": dict(os.environ),
        "c_trace": (_getenv(b"_X_AMZN_TRACE_ID") or b"").decode(),  # the C environment, as getenv(3) sees it
        "cwd": os.getcwd(),
        "path0": sys.path[0],
        "arn": context.invoked_function_arn,
        "log_group": context.log_group_name,
        "log_stream": context.log_stream_name,
        "version": context.function_version,
        "client_context": None if context.client_context is None else context.client_context.custom,
    }
