"""SQLite transactions on a connection opened with `isolation_level=None` (the router's queue, the record).

with transaction(db):                 # BEGIN ... COMMIT; ROLLBACK and re-raise on any exception
    db.execute(...)
with transaction(db, "BEGIN IMMEDIATE"):  # take the write lock at the start
    ...
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator


@contextlib.contextmanager
def transaction(db: sqlite3.Connection, begin: str = "BEGIN") -> Iterator[sqlite3.Connection]:
    db.execute(begin)
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
