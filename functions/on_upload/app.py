"""S3 ObjectCreated handler: logs each new object of the emulated bucket (drop a file in data/uploads)."""


def handler(event, context):
    objects = []
    for record in event["Records"]:
        obj = record["s3"]["object"]
        bucket = record["s3"]["bucket"]["name"]
        print(f"new object {bucket}/{obj['key']} ({obj['size']} bytes, eTag {obj['eTag']})")
        objects.append(obj["key"])
    return {"processed": objects}
