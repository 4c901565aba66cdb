"""Example layer module: functions with this layer import it as `greeting`."""


def greet(name):
    return f"hello, {name}"
