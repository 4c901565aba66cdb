"""Where a received message's raw bytes end up, and how the event names that place.

SES's Lambda event carries headers, never the body; the body is reached through the place the message was
stored. Two stores:

* `LocalStore` (default): the spooled file itself, `<state_dir>/sources/<name>/messages/<id>.eml`, stays as
  the message's home. The event's receipt action gets `messagePath`, the absolute path of that file.
* `S3Store` (`store: {s3: {bucket, endpoint, prefix}}`), as SES's S3 action: the message is put at
  `<prefix><messageId>` in the bucket before the event is queued; the event's receipt action gets
  `bucketName`, `objectKeyPrefix` and `objectKey` (the names SES's S3 action object uses). The local copy is
  removed once the event is queued. A failed put is an unavailable store: the SMTP client gets 451.

`save` is idempotent (a redelivery after a crash puts the same object again).
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol

from router.sources.email.spool import SpooledMail


class StoreUnavailable(Exception):
    """The message could not be stored where the event says it is."""


class MessageStore(Protocol):
    keep_local: bool

    async def open(self, stack: contextlib.AsyncExitStack) -> None: ...

    async def save(self, mail: SpooledMail, raw: bytes) -> None: ...

    def location(self, mail: SpooledMail) -> dict[str, Any]: ...


class LocalStore:
    keep_local = True

    async def open(self, stack: contextlib.AsyncExitStack) -> None:
        return None

    async def save(self, mail: SpooledMail, raw: bytes) -> None:
        return None  # the spool already holds it durably

    def location(self, mail: SpooledMail) -> dict[str, Any]:
        return {"messagePath": mail.raw_path}


class S3Store:
    keep_local = False

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self._client_args: dict[str, Any] = {"region_name": region, "endpoint_url": endpoint}
        if access_key_id and secret_access_key:
            self._client_args["aws_access_key_id"] = access_key_id
            self._client_args["aws_secret_access_key"] = secret_access_key
        self._client: Any = None

    async def open(self, stack: contextlib.AsyncExitStack) -> None:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        config = AioConfig(
            retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=30
        )
        self._client = await stack.enter_async_context(
            get_session().create_client("s3", config=config, **self._client_args)
        )

    def key(self, mail: SpooledMail) -> str:
        return f"{self.prefix}{mail.id}"

    async def save(self, mail: SpooledMail, raw: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        assert self._client is not None, "S3Store.open was not called"
        try:
            await self._client.put_object(
                Bucket=self.bucket, Key=self.key(mail), Body=raw, ContentType="message/rfc822"
            )
        except (BotoCoreError, ClientError, OSError) as e:
            raise StoreUnavailable(f"s3://{self.bucket}/{self.key(mail)}: {e}") from e

    def location(self, mail: SpooledMail) -> dict[str, Any]:
        return {"bucketName": self.bucket, "objectKeyPrefix": self.prefix, "objectKey": self.key(mail)}
