"""Example: a function that imports its greeting from a layer (functions/layers/greeting)."""

import os

from greeting import greet  # from the layer's python/ folder, as on Lambda's /opt/python


def handler(event, context):
    version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
    return {"message": greet(event.get("name", "world")), "version": version}
