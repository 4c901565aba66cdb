"""Fixture: for each file created in its watched folder, writes one more next to it, marked with its trace.

$BUCKET_DIR is the folder. The `user.router.trace` extended attribute lets the router count the chain; it is
set before the file is complete (renamed into place), so the router sees it when it announces the file.
With $NO_XATTR set it writes a plain file (no attribute): the router's runtime notes the write instead.
"""

import os


def handler(event, context):
    key = event["Records"][0]["s3"]["object"]["key"]
    folder = os.environ["BUCKET_DIR"]
    name = f"{key}.x"
    tmp = os.path.join(folder, f".{name}.tmp")
    with open(tmp, "wb") as f:
        f.write(b"again")
    if not os.environ.get("NO_XATTR"):
        os.setxattr(tmp, "user.router.trace", os.environ["_X_AMZN_TRACE_ID"].encode())
    os.replace(tmp, os.path.join(folder, name))
    return {"wrote": name}
