"""Request ids are version-4 UUIDs in canonical text form, and random."""

from __future__ import annotations

import uuid

from router.core.ids import new_request_id


def test_request_ids_are_random_v4_uuids() -> None:
    ids = [new_request_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text
