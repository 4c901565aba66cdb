"""router: a local and self-hosted serverless event runtime (Lambda-style functions off event sources)."""

__version__ = "0.1.0"
