"""Fixture: an app written with AWS Lambda Powertools' event handlers, unmodified, as Lambda users write them.

Payload 2.0 events go to an APIGatewayHttpResolver, 1.0 events to an APIGatewayRestResolver; both serve
GET /items/<item_id>, answering what Powertools made of the event (the item id, the path it routed on, the raw
path, the stage and the event's `version` as APIGatewayProxyEvent / APIGatewayProxyEventV2 read it).
"""

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, APIGatewayRestResolver

http_api = APIGatewayHttpResolver()
rest_api = APIGatewayRestResolver()


def _item(app, item_id):
    event = app.current_event
    return {
        "id": item_id,
        "path": event.path,
        "version": event.version,
        "stage": event.request_context.stage,
    }


@http_api.get("/items/<item_id>")
def http_item(item_id):
    return {**_item(http_api, item_id), "rawPath": http_api.current_event.raw_path}


@rest_api.get("/items/<item_id>")
def rest_item(item_id):
    return {**_item(rest_api, item_id), "contextPath": rest_api.current_event.request_context.path}


def handler(event, context):
    app = http_api if event.get("version") == "2.0" else rest_api
    return app.resolve(event, context)
