"""The control plane: one HTTP port with the Lambda-compatible API, health and metrics."""
