"""What the control plane persists beside a deployed function: its event invoke configs, function URLs,
published versions and aliases. Field names are ours (snake_case); the API handlers render Lambda's shapes.

* `InvokeConfigRecord`: one PutFunctionEventInvokeConfig (per qualifier: `$LATEST`, a version or an alias).
  Destinations are kept as the ARNs the caller gave (GetFunctionEventInvokeConfig returns them as is).
* `UrlConfigRecord`: one function URL (per qualifier: `$LATEST` or an alias); `url_id` is the 32-character
  id its URL is served under.
* `VersionRecord`: one published version, an immutable snapshot: the `FunctionRecord` as it was (its
  `code_file` names the version's own copy of the code), the code's digest, the merged layer folder.
* `AliasRecord`: one alias: the version it points to and the weight of at most one additional version.
"""

from __future__ import annotations

import msgspec


class InvokeConfigRecord(msgspec.Struct, frozen=True, kw_only=True):
    max_retries: int | None = None  # None: Lambda's default (2)
    max_event_age_s: int | None = None  # None: Lambda's default (21600)
    on_success: str | None = None  # destination ARN
    on_failure: str | None = None
    last_modified: float = 0.0


class UrlConfigRecord(msgspec.Struct, frozen=True, kw_only=True):
    url_id: str
    auth_type: str = "NONE"  # NONE | AWS_IAM
    invoke_mode: str = "BUFFERED"  # BUFFERED | RESPONSE_STREAM (served buffered)
    cors: dict[str, object] | None = None  # Lambda's Cors member, as given
    created: float = 0.0
    last_modified: float = 0.0


class AliasRecord(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: str
    description: str = ""
    weights: dict[str, float] = {}  # RoutingConfig.AdditionalVersionWeights
    revision_id: str = ""
