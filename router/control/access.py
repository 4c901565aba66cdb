"""What every Lambda API handler module needs: the catalog, the function a path names, the body, the
FunctionConfiguration of a function, a version or an alias, and the checks of values several calls take
(layers, tags).

* `target(request)`: the path's `{name}` and the `Qualifier` query parameter, as a `FunctionRef`.
* `qualified(request, ref)`: what a read with that qualifier shows, as `Qualified` (the definition, the
  record or version snapshot, and the qualifier for FunctionArn): $LATEST, a version, or the version an
  alias points to (FunctionArn is then the alias's ARN, as on Lambda). ResourceNotFoundException else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from router.control.catalog import FunctionCatalog
from router.control.configuration import function_configuration
from router.control.errors import invalid_parameter, not_found
from router.control.names import LATEST, FunctionRef, parse_function_name
from router.control.plane import PLANE_KEY
from router.control.requests import check_content_type, read_body
from router.control.store import FunctionRecord
from router.core.arn import parse_layer_version_arn
from router.dispatch.registry import FunctionDefinition

MAX_LAYERS = 5
MAX_TAGS = 50
TAG_KEY = re.compile(r"^[\w.:/=+\-@ ]{1,128}\Z", re.UNICODE)


def catalog(request: web.Request) -> FunctionCatalog:
    found = request.app[PLANE_KEY].catalog
    assert found is not None, "the control plane runs without a function catalog"
    return found


async def body(request: web.Request) -> bytes:
    check_content_type(request.headers.get("Content-Type"))
    return await read_body(request)


def target(request: web.Request) -> FunctionRef:
    return parse_function_name(request.match_info["name"], request.query.get("Qualifier"))


def latest_name(request: web.Request) -> str:
    """The plain name of the path, for calls that take no qualifier but $LATEST."""
    ref = target(request)
    if not ref.is_latest:
        raise not_found(catalog(request).arn(ref.name, ref.qualifier))
    return ref.name


@dataclass
class Qualified:
    defn: FunctionDefinition
    record: FunctionRecord | None
    qualifier: str | None  # for FunctionArn (None: unqualified)


def qualified(request: web.Request, ref: FunctionRef) -> Qualified:
    cat = catalog(request)
    defn = cat.require(ref.name)
    if ref.qualifier is None:
        return Qualified(defn, cat.record(ref.name), None)
    if ref.qualifier == LATEST:
        return Qualified(defn, cat.record(ref.name), LATEST)
    versions = cat.versions
    alias = versions.of(ref.name).aliases.get(ref.qualifier)
    version = alias.version if alias is not None else ref.qualifier
    if version == LATEST:
        return Qualified(defn, cat.record(ref.name), ref.qualifier)
    record, vdefn = versions.version(ref.name, version) if version.isdigit() else _missing(cat, ref)
    return Qualified(vdefn, record.function, ref.qualifier)


def _missing(cat: FunctionCatalog, ref: FunctionRef) -> Any:
    raise not_found(cat.arn(ref.name, ref.qualifier))


def configuration(request: web.Request, q: Qualified) -> dict[str, Any]:
    cat = catalog(request)
    return function_configuration(
        q.defn, q.record, cat.config, qualifier=q.qualifier, layer_size=layer_size(cat)
    )


def layer_size(cat: FunctionCatalog) -> Any:
    def size(arn: str) -> int:
        parsed = parse_layer_version_arn(arn)
        found = cat.layers.get(*parsed, deleted=True) if parsed else None
        return found.code_size if found else 0

    return size


def check_layers(cat: FunctionCatalog, layers: list[str]) -> list[str]:
    """Layer version ARNs a function may name: at most 5, each published (and not deleted) here."""
    if len(layers) > MAX_LAYERS:
        raise invalid_parameter(f"Cannot reference more than {MAX_LAYERS} layers.")
    if len(set(layers)) != len(layers):
        raise invalid_parameter("Two different versions of the same layer are not allowed to be referenced.")
    for arn in layers:
        parsed = parse_layer_version_arn(arn)
        if parsed is None:
            raise invalid_parameter(f"Layer version ARN {arn!r} is malformed")
        if cat.layers.get(*parsed) is None:
            raise invalid_parameter(f"Layer version {arn} does not exist.")
    return list(layers)


def check_tags(tags: dict[str, str]) -> dict[str, str]:
    problems = [
        f"tag key {k!r} must be 1-128 letters, digits, spaces or _.:/=+-@"
        for k in tags
        if not TAG_KEY.match(k)
    ]
    problems += [f"tag key {k!r}: the aws: prefix is reserved" for k in tags if k.lower().startswith("aws:")]
    problems += [
        f"tag {k!r}: the value must be at most 256 characters" for k, v in tags.items() if len(v) > 256
    ]
    if len(tags) > MAX_TAGS:
        problems.append(f"a function has at most {MAX_TAGS} tags, got {len(tags)}")
    if problems:
        raise invalid_parameter("; ".join(problems))
    return dict(tags)
