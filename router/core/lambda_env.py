"""Lambda's reserved environment variables, listed once.

Lambda sets these in every function's environment and refuses them in a function's configuration ("Defined
runtime environment variables" in the Lambda developer guide; `TZ` has not been reserved since 2022).

* `RESERVED`: every reserved name.
* `ROLE_CREDENTIALS`: the execution role's keys. Lambda sets them from the role; the router has no role, so a
  function may bring its own (to reach the AWS emulation, say): the one part of `RESERVED` it may set.
* `PROTECTED` (`RESERVED` less `ROLE_CREDENTIALS`): what a function may not set here. The Lambda API refuses
  them (router/control/requests.py); in a function of the config file the invoker drops them and sets its own
  (router/invoker/launch.py). `_X_AMZN_TRACE_ID` is set per call by the runtimes.
"""

from __future__ import annotations

ROLE_CREDENTIALS = frozenset(
    {"AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
)

RESERVED = ROLE_CREDENTIALS | {
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
}

PROTECTED = RESERVED - ROLE_CREDENTIALS
