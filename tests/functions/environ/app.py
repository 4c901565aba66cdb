"""Fixture: returns the process environment, working directory and the start of sys.path."""

import os
import sys


def handler(event, context):
    return {
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "path0": sys.path[0],
        "arn": context.invoked_function_arn,
        "log_group": context.log_group_name,
        "log_stream": context.log_stream_name,
        "version": context.function_version,
        "client_context": None if context.client_context is None else context.client_context.custom,
    }
