"""Read ``template.yaml`` as plain data: the one place tests and the local emulator learn what the stack declares.

CloudFormation's YAML short forms (``!Ref``, ``!Sub``, ``!GetAtt`` ...) are turned into the long JSON forms
(``{"Ref": ...}``, ``{"Fn::Sub": ...}``, ``{"Fn::GetAtt": [resource, attribute]}``), so a loaded template looks the
same whichever form its author used, and nothing is evaluated: ``!Sub`` strings keep their ``${...}`` placeholders.

The helpers below read the parts other code depends on (the events table's key schema and TTL attribute, the SNS
topics, the function's environment) so that the emulator and the tests cannot drift from the template.

PyYAML is a development dependency: it is imported when a template is loaded, never at import time, and this
module is never imported by the Lambda handler.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple, cast

if TYPE_CHECKING:
    from collections.abc import Mapping

    import yaml

#: A loaded template: the document's top-level mapping.
Template = dict[str, Any]

#: Short-form tags whose long form is ``{"Fn::<Name>": value}``.
_FN_TAGS: Final[tuple[str, ...]] = (
    "And",
    "Base64",
    "Cidr",
    "Equals",
    "FindInMap",
    "GetAZs",
    "If",
    "ImportValue",
    "Join",
    "Not",
    "Or",
    "Select",
    "Split",
    "Sub",
)

_TIMESTAMP_TAG: Final = "tag:yaml.org,2002:timestamp"


class TemplateError(ValueError):
    """The template cannot be read, or lacks the resource or property asked for."""


class TableKeySchema(NamedTuple):
    """``KeySchema`` and ``AttributeDefinitions`` of a DynamoDB table, as written in the template."""

    key_schema: list[dict[str, str]]
    attribute_definitions: list[dict[str, str]]


def load_template(path: str | Path) -> Template:
    """Load a CloudFormation/SAM template (YAML or JSON), turning short-form intrinsic tags into long forms.

    Unlike a plain ``yaml.safe_load`` it keeps ISO dates such as ``2012-10-17`` as strings (as CloudFormation
    does) and rejects duplicate keys (which CloudFormation refuses but YAML would silently overwrite).

    Raises
    ------
    TemplateError
        When the file is not a YAML mapping or repeats a key.
    """
    import yaml

    text = Path(path).read_text(encoding="utf-8")
    try:
        document = yaml.load(text, Loader=_loader_class())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path}: {exc}") from exc
    if not isinstance(document, dict):
        raise TemplateError(f"{path}: a template must be a mapping, got {type(document).__name__}")
    return cast("Template", document)


def resources(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the ``Resources`` section (logical id -> resource)."""
    section = template.get("Resources")
    if not isinstance(section, dict):
        raise TemplateError("the template has no Resources section")
    return cast("dict[str, dict[str, Any]]", section)


def resources_of_type(template: Mapping[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """Return every resource of one type, e.g. ``AWS::SNS::Topic``, by logical id."""
    return {lid: res for lid, res in resources(template).items() if res.get("Type") == resource_type}


def resource(template: Mapping[str, Any], logical_id: str, resource_type: str | None = None) -> dict[str, Any]:
    """Return one resource, checking its type when ``resource_type`` is given."""
    found = resources(template).get(logical_id)
    if found is None:
        raise TemplateError(f"no resource {logical_id!r} in the template")
    if resource_type is not None and found.get("Type") != resource_type:
        raise TemplateError(f"resource {logical_id!r} is a {found.get('Type')}, not a {resource_type}")
    return found


def properties(template: Mapping[str, Any], logical_id: str, resource_type: str | None = None) -> dict[str, Any]:
    """Return a resource's ``Properties`` (empty when it has none)."""
    return cast("dict[str, Any]", resource(template, logical_id, resource_type).get("Properties") or {})


def table_key_schema(template: Mapping[str, Any], logical_id: str = "EventsTable") -> TableKeySchema:
    """Return the ``KeySchema`` and ``AttributeDefinitions`` of a DynamoDB table.

    Unpacks as a pair: ``key_schema, attribute_definitions = table_key_schema(template)``. Only the attributes
    named in the key schema are kept from ``AttributeDefinitions`` (what ``CreateTable`` accepts without indexes).
    """
    props = properties(template, logical_id, "AWS::DynamoDB::Table")
    key_schema = [dict(element) for element in props.get("KeySchema") or []]
    if not key_schema:
        raise TemplateError(f"table {logical_id!r} has no KeySchema")
    key_names = {element["AttributeName"] for element in key_schema}
    definitions = [dict(d) for d in props.get("AttributeDefinitions") or [] if d.get("AttributeName") in key_names]
    missing = key_names - {d["AttributeName"] for d in definitions}
    if missing:
        raise TemplateError(f"table {logical_id!r} has no AttributeDefinitions for {sorted(missing)}")
    return TableKeySchema(key_schema=key_schema, attribute_definitions=definitions)


def ttl_attribute(template: Mapping[str, Any], logical_id: str = "EventsTable") -> str | None:
    """Return the attribute a DynamoDB table's TTL is enabled on, or ``None`` when TTL is off or absent."""
    spec = properties(template, logical_id, "AWS::DynamoDB::Table").get("TimeToLiveSpecification") or {}
    if spec.get("Enabled") is not True:
        return None
    name = spec.get("AttributeName")
    return name if isinstance(name, str) else None


#: The tag every event topic (one per type, and the fallback) carries; other topics (alarms) do not.
EVENT_TOPIC_TAG = "stack-webhook-fanout:event-type"


def topic_logical_ids(template: Mapping[str, Any]) -> set[str]:
    """Return the logical ids of the event topics: ``AWS::SNS::Topic`` resources tagged :data:`EVENT_TOPIC_TAG`."""
    return {
        logical_id
        for logical_id, topic in resources_of_type(template, "AWS::SNS::Topic").items()
        if any(tag.get("Key") == EVENT_TOPIC_TAG for tag in (topic.get("Properties") or {}).get("Tags") or [])
    }


def function_environment(template: Mapping[str, Any], logical_id: str = "IngestFunction") -> dict[str, Any]:
    """Return a function's environment variables, with SAM ``Globals`` merged in as SAM does (function wins).

    Values are returned as loaded: plain strings, or intrinsic functions such as ``{"Fn::Sub": "..."}``.
    """
    found = resource(template, logical_id)
    if found.get("Type") not in {"AWS::Serverless::Function", "AWS::Lambda::Function"}:
        raise TemplateError(f"resource {logical_id!r} is a {found.get('Type')}, not a function")
    merged: dict[str, Any] = {}
    if found["Type"] == "AWS::Serverless::Function":
        global_function = (template.get("Globals") or {}).get("Function") or {}
        merged.update((global_function.get("Environment") or {}).get("Variables") or {})
    merged.update(((found.get("Properties") or {}).get("Environment") or {}).get("Variables") or {})
    return merged


@functools.cache
def _loader_class() -> type[yaml.SafeLoader]:
    """Build (once) the SafeLoader subclass that understands CloudFormation's tags; imports PyYAML."""
    import yaml

    class CloudFormationLoader(yaml.SafeLoader):
        """SafeLoader + CloudFormation short forms, dates kept as strings, duplicate keys refused."""

        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    # CloudFormation reads `Version: 2012-10-17` as a string; YAML 1.1 would make it a date.
    CloudFormationLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def node_value(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node {node!r}", node.start_mark)

    def construct_ref(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        return {"Ref": node_value(loader, node)}

    def construct_condition(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        return {"Condition": node_value(loader, node)}

    def construct_get_att(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value = node_value(loader, node)
        if isinstance(value, str):
            # "Resource.Attribute"; attribute names may contain dots themselves ("Endpoint.Address").
            logical_id, _, attribute = value.partition(".")
            value = [logical_id, attribute]
        return {"Fn::GetAtt": value}

    def fn_constructor(name: str) -> Any:
        def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
            return {f"Fn::{name}": node_value(loader, node)}

        return construct

    CloudFormationLoader.add_constructor("!Ref", construct_ref)
    CloudFormationLoader.add_constructor("!Condition", construct_condition)
    CloudFormationLoader.add_constructor("!GetAtt", construct_get_att)
    for name in _FN_TAGS:
        CloudFormationLoader.add_constructor(f"!{name}", fn_constructor(name))
    return CloudFormationLoader
