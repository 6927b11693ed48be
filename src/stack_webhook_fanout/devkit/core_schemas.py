"""Render ``stack_webhook_fanout/data_schemas.py``: the pydantic-core schemas of the event data models, as literals.

The ingest function only needs the verdict of ``DATA_MODELS[type].model_validate(data)``. Importing pydantic and
building the models costs about 50 ms of cold start; ``pydantic_core`` alone is a fraction of that. So the core schema
pydantic builds for each model (``Model.__pydantic_core_schema__``) is written out as Python literals, and
``data_validation.py`` turns it into a ``pydantic_core.SchemaValidator`` at run time.

Most of a core schema is literals (dicts, lists, strings, numbers, booleans, None), copied as they are and in
pydantic's order. The other parts are mapped explicitly, and anything else stops the generator with the path of the
value (:class:`UnknownSchemaPart`), so that a pydantic upgrade or a new field type cannot silently give a different
validator:

* ``cls`` of a ``model`` schema (one of our model classes) -> ``DataObject``, a plain stand-in class. The ``model``
  schema itself is kept, with its ``config``: pydantic-core scopes each model's config to its own fields exactly as
  it does for pydantic, instead of us re-deriving it (``extra_behavior`` on every ``model-fields``). Only model schemas
  whose class does nothing of its own are accepted (``custom_init`` and ``root_model`` False, no ``post_init``).
* ``metadata``: read by pydantic only (JSON Schema functions, union tag keys), never by pydantic-core: dropped, once
  its keys are ones we know.
* ``default_factory`` (``list``): the builtin, by name.
* ``discriminator`` of ``JsonValue``'s tagged union (``pydantic.types._get_type_name``) -> ``json_type_name``.
* ``ref`` / ``schema_ref`` (``module.Name:<id()>``) -> ``module.Name``, so that the file is the same on every run;
  two different refs that would become one stop the generator.
* the ``schema`` types are an allow-list of the ones the models use today.

The config pydantic gives the model's own ``SchemaValidator`` (``ConfigWrapper.core_config``) is emitted as well, and
checked to be the ``model`` schema's ``config``.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel
from pydantic._internal._config import ConfigWrapper
from pydantic.types import _get_type_name

from .. import models

if TYPE_CHECKING:
    from collections.abc import Mapping

#: Where the generated module lives, relative to the package.
MODULE_NAME: Final = "data_schemas.py"
HEADER: Final = '''"""Core schemas of the event data models (``models.DATA_MODELS``), for ``data_validation.py``.

GENERATED from ``stack_webhook_fanout/models.py`` by ``tools/generate_data_schemas.py`` (``make schemas``): do not
edit. ``tests/unit/test_data_validation.py::test_committed_data_schemas_are_not_stale`` fails when this file is stale.
How the non-literal parts of pydantic's schemas are mapped: ``stack_webhook_fanout.devkit.core_schemas``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .data_schema_support import DataObject, json_type_name

if TYPE_CHECKING:
    from pydantic_core import CoreConfig, CoreSchema
'''

#: Core schema types the models use today; a new one stops the generator until someone has looked at it.
KNOWN_SCHEMA_TYPES: Final = frozenset(
    {
        "any",
        "bool",
        "default",
        "definition-ref",
        "definitions",
        "dict",
        "float",
        "int",
        "json-or-python",
        "list",
        "model",
        "model-field",
        "model-fields",
        "none",
        "nullable",
        "str",
        "tagged-union",
    }
)
#: Keys a ``model`` schema may have (others, e.g. ``post_init`` or ``generic_origin``, would refer to the class).
MODEL_SCHEMA_KEYS: Final = frozenset(
    {"type", "cls", "config", "custom_init", "root_model", "metadata", "ref", "schema"}
)
#: ``metadata`` keys pydantic writes; pydantic-core never reads ``metadata``.
KNOWN_METADATA_KEYS: Final = frozenset({"pydantic_js_functions", "pydantic_internal_union_tag_key"})
#: ``default_factory`` values and their names.
DEFAULT_FACTORIES: Final[Mapping[object, str]] = {list: "list", dict: "dict"}
#: Callable discriminators and the name of our equivalent (``data_schema_support``).
DISCRIMINATORS: Final[Mapping[object, str]] = {_get_type_name: "json_type_name"}
STAND_IN_CLASS: Final = "DataObject"
_REF: Final = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_.]*):(?P<id>[0-9]+)")
_PLAIN_STRING: Final = re.compile(r"[ -~]*")  # printable ASCII; quotes and backslashes are refused below
_INDENT: Final = "    "


class UnknownSchemaPart(Exception):
    """A part of a core schema the generator has no explicit mapping for."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}; map it explicitly in stack_webhook_fanout/devkit/core_schemas.py")


class _Name:
    """A Python name in the generated source (a builtin or an import of the generated module)."""

    def __init__(self, name: str) -> None:
        self.name = name


class _Converter:
    """Turn one core schema into literals and :class:`_Name` objects, refusing what it does not know."""

    def __init__(self, model_classes: frozenset[type[BaseModel]]) -> None:
        self.model_classes = model_classes
        self.refs: dict[str, str] = {}  # deterministic ref -> the original one

    def ref(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not (match := _REF.fullmatch(value)):
            raise UnknownSchemaPart(path, f"a ref that is not 'module.Name:<id>': {value!r}")
        name = match["name"]
        if self.refs.setdefault(name, value) != value:
            raise UnknownSchemaPart(path, f"two refs would both become {name!r}: {self.refs[name]!r} and {value!r}")
        return name

    def schema(self, schema: object, path: str) -> dict[str, Any]:
        if not isinstance(schema, dict) or not isinstance(schema.get("type"), str):
            raise UnknownSchemaPart(path, f"expected a core schema (a dict with a 'type'), got {type(schema).__name__}")
        kind = schema["type"]
        if kind not in KNOWN_SCHEMA_TYPES:
            raise UnknownSchemaPart(path, f"core schema type {kind!r} is not one the generator knows")
        if kind == "model":
            self.check_model(schema, path)
        out: dict[str, Any] = {}
        for key, value in schema.items():
            where = f"{path}.{key}"
            if key == "metadata":
                self.check_metadata(value, where)
            elif key == "cls" and kind == "model":
                out[key] = _Name(STAND_IN_CLASS)
            elif key == "default_factory" and kind == "default":
                name = DEFAULT_FACTORIES.get(value) if isinstance(value, type) else None
                if name is None:
                    raise UnknownSchemaPart(where, f"default_factory {value!r} is not one the generator knows")
                out[key] = _Name(name)
            elif key == "discriminator" and kind == "tagged-union" and callable(value):
                if value not in DISCRIMINATORS:
                    raise UnknownSchemaPart(where, f"discriminator function {value!r} is not one the generator knows")
                out[key] = _Name(DISCRIMINATORS[value])
            elif key == "ref" or (key == "schema_ref" and kind == "definition-ref"):
                out[key] = self.ref(value, where)
            elif key in ("default", "config"):
                out[key] = self.literal(value, where)
            else:
                out[key] = self.value(value, where)
        return out

    def check_model(self, schema: dict[str, Any], path: str) -> None:
        extra = set(schema) - MODEL_SCHEMA_KEYS
        if extra:
            raise UnknownSchemaPart(path, f"model schema keys the stand-in class cannot honour: {sorted(extra)}")
        if schema.get("cls") not in self.model_classes:
            raise UnknownSchemaPart(path, f"model class {schema.get('cls')!r} is not one of models.py's")
        if schema.get("custom_init") is not False or schema.get("root_model") is not False:
            raise UnknownSchemaPart(path, "a model with a custom __init__ or a root model needs its own class")

    def check_metadata(self, value: object, path: str) -> None:
        if not isinstance(value, dict) or not set(value) <= KNOWN_METADATA_KEYS:
            raise UnknownSchemaPart(path, f"metadata the generator does not know: {value!r}")

    def literal(self, value: object, path: str) -> Any:
        """A value that is data, never a schema (a field's default, a config)."""
        if isinstance(value, dict) and not all(isinstance(key, str) for key in value):
            raise UnknownSchemaPart(path, "a dict with keys that are not strings")
        if isinstance(value, dict):
            return {key: self.literal(item, f"{path}.{key}") for key, item in value.items()}
        if isinstance(value, list):
            return [self.literal(item, f"{path}[{i}]") for i, item in enumerate(value)]
        return self.value(value, path)

    def value(self, value: object, path: str) -> Any:
        """A literal, or a nested schema where the value is a dict with a 'type' (fields, choices... are dicts)."""
        if value is None or isinstance(value, bool | int | str):
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise UnknownSchemaPart(path, f"a float that is not a literal: {value!r}")
            return value
        if isinstance(value, list):
            return [self.value(item, f"{path}[{i}]") for i, item in enumerate(value)]
        if isinstance(value, dict):
            if not all(isinstance(key, str) for key in value):
                raise UnknownSchemaPart(path, "a dict with keys that are not strings")
            if isinstance(value.get("type"), str):
                return self.schema(value, path)
            return {key: self.value(item, f"{path}.{key}") for key, item in value.items()}
        raise UnknownSchemaPart(path, f"a {type(value).__name__} value, not a literal: {value!r}")


def _render(value: Any, depth: int) -> str:
    """Source text of a converted value, one item per line with trailing commas (stable under ``ruff format``)."""
    inner = _INDENT * (depth + 1)
    if isinstance(value, _Name):
        return value.name
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = "".join(f"{inner}{_render(k, depth + 1)}: {_render(v, depth + 1)},\n" for k, v in value.items())
        return "{\n" + items + _INDENT * depth + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        items = "".join(f"{inner}{_render(v, depth + 1)},\n" for v in value)
        return "[\n" + items + _INDENT * depth + "]"
    if isinstance(value, str):
        if not _PLAIN_STRING.fullmatch(value) or '"' in value or "\\" in value:
            raise UnknownSchemaPart("<render>", f"a string the generator does not render: {value!r}")
        return f'"{value}"'
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    raise UnknownSchemaPart("<render>", f"cannot render {type(value).__name__}")


def _constant(model: type[BaseModel]) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", model.__name__).upper()


def model_classes() -> frozenset[type[BaseModel]]:
    """Every model class ``models.py`` defines."""
    return frozenset(
        value
        for value in vars(models).values()
        if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == models.__name__
    )


def core_config(model: type[BaseModel]) -> dict[str, Any]:
    """The config pydantic builds the model's own ``SchemaValidator`` with, checked against its schema's."""
    config = dict(ConfigWrapper(model.model_config).core_config(title=model.__name__))
    schema = model.__pydantic_core_schema__
    top = schema["schema"] if schema["type"] == "definitions" else schema
    if top.get("type") != "model" or top.get("config") != config:
        raise UnknownSchemaPart(model.__name__, f"the model schema's config is not the validator's {config!r}")
    return config


def render_data_schemas(
    data_models: Mapping[str, type[BaseModel]] | None = None, *, classes: frozenset[type[BaseModel]] | None = None
) -> str:
    """The whole text of ``data_schemas.py`` for ``data_models`` (default ``models.DATA_MODELS``), whose model classes
    (nested ones included) must be among ``classes`` (default: those ``models.py`` defines)."""
    data_models = models.DATA_MODELS if data_models is None else data_models
    converter = _Converter(model_classes() if classes is None else classes)
    blocks = [HEADER]
    names: dict[type[BaseModel], str] = {}
    for model in data_models.values():
        if model in names:
            continue
        name = names[model] = _constant(model)
        schema = converter.schema(model.__pydantic_core_schema__, model.__name__)
        config = converter.literal(core_config(model), f"{model.__name__}.<config>")
        blocks.append(f"{name}: Final[CoreSchema] = {_render(schema, 0)}\n")
        blocks.append(f"{name}_CONFIG: Final[CoreConfig] = {_render(config, 0)}\n")
    entries = "".join(
        f'    "{event_type}": ({names[m]}, {names[m]}_CONFIG),\n' for event_type, m in data_models.items()
    )
    blocks.append(
        "#: Event type -> (core schema, core config) of its data model, as ``models.DATA_MODELS`` maps it.\n"
        f"DATA_SCHEMAS: Final[dict[str, tuple[CoreSchema, CoreConfig]]] = {{\n{entries}}}\n"
    )
    return "\n\n".join(blocks)
