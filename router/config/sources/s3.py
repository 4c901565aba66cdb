"""Settings of the S3 source (`kind: s3`): a watched folder, SQS notifications or a polled bucket."""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec

from router.config.base import SourceSettings
from router.core.kinds import KindTraits

# Names editors, downloaders and atomic writers give files that are not (yet) objects.
DEFAULT_IGNORE = [".*", "*~", "*.tmp", "*.temp", "*.swp", "*.swx", "*.part", "*.crdownload", "~$*", "#*#"]


class Config(SourceSettings, tag="s3"):
    traits: ClassVar[KindTraits] = KindTraits(shape="s3", default_events=("ObjectCreated:*",))

    bucket: str
    # emulated bucket
    directory: str | None = None
    ignore: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_IGNORE))
    stable_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 0.5
    force_polling: bool = False  # poll the folder instead of inotify (network and container mounts)
    # real S3 API
    endpoint: str | None = None  # None: AWS itself
    queue: str | None = None  # SQS queue name or URL receiving the bucket's notifications
    region: str | None = None  # default: account.region
    access_key_id: str | None = None  # default: the AWS credential chain (environment, profile)
    secret_access_key: str | None = None
    prefix: str = ""  # polling mode: list only keys under this prefix
    poll_interval_s: Annotated[float, msgspec.Meta(ge=0.05, le=86400)] = 5.0
    # SQS long-poll wait; a stop waits for the poll in flight to end (so its messages are not hidden)
    wait_time_s: Annotated[int, msgspec.Meta(ge=0, le=20)] = 5
    # folder and polling modes: on the very first start, announce the objects already there
    announce_existing: bool = True
