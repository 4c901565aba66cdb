"""The stream engine the stream kinds (Kafka, Kinesis, DynamoDB Streams) share: Lambda's event source
mappings.

Modules: `engine` (batching, order, checkpoints over settled records), `batch` (delivery, retries, bisect,
partial batch responses), `failure` (failure destinations), `checkpoints` (checkpoint files), `shards` (the
shard reader of Kinesis and DynamoDB Streams: shard tree, iterators), `routes` (one mapping per route),
`stats` (lag and counters).

May import: router.core, router.config, router.shapes, router.metrics; never router.dispatch, router.invoker
or router.control.
"""
