"""The cluster's DynamoDB table: node items, shard leases with checkpoints, schedule state and tick claims.

One table (`cluster.leases.dynamodb.table`), keyed by `pk` (a group: one cluster's nodes, one mapping's
shards, one schedule) and `sk` (the item in the group). Several clusters may share a table: every `pk` starts
with the cluster's name.

| pk                                   | sk            | item                                            |
| ---                                  | ---           | ---                                             |
| `<cluster>#nodes`                    | node id       | a node: counter, view, started, address         |
| `<cluster>#shards#<source>#<mapping>`| shard id      | a lease: owner, counter, checkpoint, finished   |
| `<cluster>#schedule#<source>`        | `state`       | the schedule's state (expression, anchor, ...)  |
| `<cluster>#schedule#<source>`        | `tick#<time>` | a tick's claim: owner, counter                  |

`LeaseTable` is a thin layer over the aiobotocore client: plain Python values in and out (str, int, float,
bool, None, lists of str), every write conditional where the caller says so, every read strongly
consistent. `put`/`update`/`delete` return False when their condition failed (another node got there
first) and raise `TableError` for anything else. `open()` creates the table (on-demand billing) when it is
missing and `create` allows it, and waits until it is active.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from router.config.cluster import ClusterDynamo
from router.core.errors import RESOURCE_NOT_FOUND, DispatchError

log = logging.getLogger("router.cluster")

Item = dict[str, Any]
Names = dict[str, str]
CONDITION_FAILED = "ConditionalCheckFailedException"


class TableError(DispatchError):
    """The table could not be reached or refused a request for another reason than a failed condition. A
    DispatchError: a source that meets it (a schedule's claim) backs off and tries again."""


def encode(value: Any) -> dict[str, Any]:
    match value:
        case None:
            return {"NULL": True}
        case bool():
            return {"BOOL": value}
        case int() | float():
            return {"N": repr(value) if isinstance(value, float) else str(value)}
        case str():
            return {"S": value}
        case list() | tuple():
            return {"L": [encode(v) for v in value]}
    raise TypeError(f"cannot store {type(value).__name__} in the lease table")


def decode(attr: dict[str, Any]) -> Any:
    ((kind, value),) = attr.items()
    match kind:
        case "NULL":
            return None
        case "BOOL" | "S":
            return value
        case "N":
            return int(value) if value.lstrip("-").isdigit() else float(value)
        case "L":
            return [decode(v) for v in value]
    raise TypeError(f"unexpected attribute type {kind} in the lease table")


def decode_item(raw: dict[str, Any]) -> Item:
    return {k: decode(v) for k, v in raw.items()}


class LeaseTable:
    def __init__(self, settings: ClusterDynamo, region: str) -> None:
        self.settings = settings
        self.name = settings.table
        self._args = settings.client_args(region)
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None

    async def open(self) -> None:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        config = AioConfig(
            retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=10
        )
        self._client = await self._stack.enter_async_context(
            get_session().create_client("dynamodb", config=config, **self._args)
        )
        await self._ensure_table()

    async def aclose(self) -> None:
        await self._stack.aclose()
        self._client = None

    async def _ensure_table(self) -> None:
        from botocore.exceptions import ClientError

        try:
            described = await self._client.describe_table(TableName=self.name)
        except ClientError as e:
            if _code(e) != RESOURCE_NOT_FOUND or not self.settings.create_table:
                raise TableError(f"lease table {self.name}: {e}") from e
            await self._create()
            return
        if described["Table"].get("TableStatus") != "ACTIVE":
            await self._wait_active()

    async def _create(self) -> None:
        from botocore.exceptions import ClientError

        log.info("creating the cluster's lease table %s", self.name)
        try:
            await self._client.create_table(
                TableName=self.name,
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        except ClientError as e:
            if _code(e) != "ResourceInUseException":  # another node created it meanwhile
                raise TableError(f"lease table {self.name}: cannot create it: {e}") from e
        await self._wait_active()

    async def _wait_active(self) -> None:
        for _ in range(600):
            described = await self._client.describe_table(TableName=self.name)
            if described["Table"].get("TableStatus") == "ACTIVE":
                return
            await asyncio.sleep(0.5)
        raise TableError(f"lease table {self.name} did not become active")

    # -- reads ----------------------------------------------------------------------------------------------

    async def get(self, pk: str, sk: str) -> Item | None:
        response = await self._call("get_item", TableName=self.name, Key=_key(pk, sk), ConsistentRead=True)
        raw = response.get("Item")
        return decode_item(raw) if raw else None

    async def query(self, pk: str, prefix: str = "") -> list[Item]:
        """Every item of group `pk` (whose sk starts with `prefix`), in sk order."""
        condition = "pk = :pk" + (" AND begins_with(sk, :prefix)" if prefix else "")
        values: dict[str, Any] = {":pk": {"S": pk}}
        if prefix:
            values[":prefix"] = {"S": prefix}
        items: list[Item] = []
        start: dict[str, Any] | None = None
        while True:
            args: dict[str, Any] = {
                "TableName": self.name,
                "KeyConditionExpression": condition,
                "ExpressionAttributeValues": values,
                "ConsistentRead": True,
            }
            if start:
                args["ExclusiveStartKey"] = start
            response = await self._call("query", **args)
            items.extend(decode_item(raw) for raw in response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                return items

    # -- conditional writes ---------------------------------------------------------------------------------

    async def put(
        self, item: Item, condition: str | None = None, values: Item | None = None, names: Names | None = None
    ) -> bool:
        args: dict[str, Any] = {"TableName": self.name, "Item": {k: encode(v) for k, v in item.items()}}
        return await self._write("put_item", args, condition, values, names)

    async def update(
        self,
        pk: str,
        sk: str,
        sets: Item,
        condition: str | None = None,
        values: Item | None = None,
        names: Names | None = None,
    ) -> Item | None:
        """SET every attribute of `sets` (a None value REMOVEs it); the item as it is after, or None when
        the condition failed. Conditions name attributes through `names` (#x: many names are reserved)."""
        names = {f"#a{i}": k for i, k in enumerate(sets)} | (names or {})
        assigned = [f"#a{i} = :v{i}" for i, (k, v) in enumerate(sets.items()) if v is not None]
        removed = [f"#a{i}" for i, (k, v) in enumerate(sets.items()) if v is None]
        expression = ("SET " + ", ".join(assigned) if assigned else "") + (
            " REMOVE " + ", ".join(removed) if removed else ""
        )
        all_values = {f":v{i}": v for i, v in enumerate(sets.values()) if v is not None} | (values or {})
        args: dict[str, Any] = {
            "TableName": self.name,
            "Key": _key(pk, sk),
            "UpdateExpression": expression.strip(),
            "ExpressionAttributeNames": names,
            "ReturnValues": "ALL_NEW",
        }
        if all_values:
            args["ExpressionAttributeValues"] = {k: encode(v) for k, v in all_values.items()}
        if condition:
            args["ConditionExpression"] = condition
        try:
            response = await self._call("update_item", **args)
        except _ConditionFailed:
            return None
        return decode_item(response.get("Attributes", {}))

    async def delete(
        self,
        pk: str,
        sk: str,
        condition: str | None = None,
        values: Item | None = None,
        names: Names | None = None,
    ) -> bool:
        args: dict[str, Any] = {"TableName": self.name, "Key": _key(pk, sk)}
        return await self._write("delete_item", args, condition, values, names)

    async def _write(
        self, op: str, args: dict[str, Any], condition: str | None, values: Item | None, names: Names | None
    ) -> bool:
        if condition:
            args["ConditionExpression"] = condition
        if names:
            args["ExpressionAttributeNames"] = names
        if values:
            args["ExpressionAttributeValues"] = {k: encode(v) for k, v in values.items()}
        try:
            await self._call(op, **args)
        except _ConditionFailed:
            return False
        return True

    async def _call(self, op: str, **args: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        if self._client is None:
            raise TableError("the lease table is not open")
        try:
            return await getattr(self._client, op)(**args)
        except ClientError as e:
            if _code(e) == CONDITION_FAILED:
                raise _ConditionFailed from None
            raise TableError(f"lease table {self.name}: {op}: {e}") from e
        except (TimeoutError, BotoCoreError, OSError) as e:
            raise TableError(f"lease table {self.name}: {op}: {e}") from e


class _ConditionFailed(Exception):
    pass


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _code(e: Exception) -> str:
    return str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))
