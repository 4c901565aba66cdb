"""S3 ObjectCreated handler: logs each new object of the emulated bucket (drop a file in data/uploads)."""


def handler(event, context):
    objects = []
    for record in event["Records"]:
        obj = record["s3"]["object"]
        print(f"new object {record['s3']['bucket']['name']}/{obj['key']} ({obj['size']} bytes, eTag {obj['eTag']})")
        objects.append(obj["key"])
    return {"processed": objects}
