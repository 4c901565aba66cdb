"""Where an uploaded deployment package (function code or a layer) comes from: `ZipFile`, or an S3 object.

`package(config, code, what)` returns the ZIP's bytes, checked in memory (router.control.uploads) before
anything is written:

* `ZipFile`: the bytes as sent (at most 50 MB zipped, Lambda's direct-upload limit);
* `S3Bucket` + `S3Key` (+ `S3ObjectVersion`): fetched with GetObject through aiobotocore from the endpoint
  of the router's `aws:` section (AWS, moto, MinIO, SeaweedFS...), up to 250 MB zipped. A failed GetObject
  is InvalidParameterValueException with Lambda's wording ("Error occurred while GetObject. S3 Error Code:
  NoSuchKey. S3 Error Message: ...").
* `ImageUri` (container images) is refused: the router runs ZIP packages only.
"""

from __future__ import annotations

import asyncio
from typing import Any

from router.config import Config
from router.control.errors import invalid_parameter
from router.control.requests import CodeIn
from router.control.uploads import MB, UnsafeZip, ZipLimits, check_zip

S3_LIMITS = ZipLimits(max_zipped=250 * MB)


async def package(config: Config, code: CodeIn, what: str = "Code") -> bytes:
    if code.image_uri:
        raise invalid_parameter("The router runs ZIP packages only: ImageUri is not supported")
    if code.s3_bucket or code.s3_key:
        if not (code.s3_bucket and code.s3_key):
            raise invalid_parameter(f"{what}.S3Bucket and {what}.S3Key must be given together")
        data = await fetch_s3(config, code.s3_bucket, code.s3_key, code.s3_object_version)
        return await checked_zip(data, S3_LIMITS)
    if not code.zip_file:
        raise invalid_parameter(
            f"Please provide a source for the code: {what}.ZipFile or {what}.S3Bucket/S3Key"
        )
    return await checked_zip(code.zip_file)


async def checked_zip(data: bytes, limits: ZipLimits | None = None) -> bytes:
    try:
        await asyncio.to_thread(check_zip, data, limits)
    except UnsafeZip as e:
        raise invalid_parameter(str(e)) from None
    return data


async def fetch_s3(config: Config, bucket: str, key: str, version: str | None) -> bytes:
    from aiobotocore.session import get_session
    from botocore.exceptions import BotoCoreError, ClientError

    args: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version:
        args["VersionId"] = version
    try:
        async with get_session().create_client("s3", **config.aws.client_args(config.account.region)) as s3:
            reply = await s3.get_object(**args)
            async with reply["Body"] as body:
                data: bytes = await body.read()
                return data
    except ClientError as e:
        error = e.response.get("Error", {})
        raise invalid_parameter(
            f"Error occurred while GetObject. S3 Error Code: {error.get('Code')}. "
            f"S3 Error Message: {error.get('Message')}"
        ) from None
    except BotoCoreError as e:
        raise invalid_parameter(f"Error occurred while GetObject from s3://{bucket}/{key}: {e}") from None
