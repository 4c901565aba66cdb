"""Event source mappings through the Lambda API (Create/Get/List/Update/DeleteEventSourceMapping).

Modules: `api` (the HTTP handlers), `registry` (the mappings, their checks and States), `model` (request
bodies, the persisted record, Lambda's value rules), `render` (the API's EventSourceMappingConfiguration),
`translate` (a mapping as a source and route, and config-file routes as read-only mappings), `store`
(persistence under state_dir), `port` (what the daemon does for the registry), `queues` (the SQS check).

A mapping runs as a source of its kind (sqs, kinesis, dynamodb, kafka) with one route, on the same engines as
config-file routes: the daemon starts, restarts and stops it through the port.
"""
