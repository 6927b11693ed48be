"""The two Python objects the generated core schemas (``data_schemas.py``) refer to, instead of pydantic's.

pydantic's core schema of a model holds a few objects that are not literals; ``devkit.core_schemas`` maps each one
explicitly and refuses anything else. Two of them need a runtime counterpart, defined here (not in the generated
module, and not in ``data_validation.py``, which imports the generated module):

* ``DataObject`` stands in for the model classes as the ``cls`` of every ``model`` schema. pydantic-core only
  creates an instance of ``cls`` (``cls.__new__``, then sets ``__dict__`` and the ``__pydantic_*__`` attributes)
  after the fields validated, and accepts an existing instance of ``cls`` as is. The ingest function validates
  what ``json.loads`` returned, which is never an instance of either class, and discards the result: the verdict
  is the one pydantic's own validator gives (``tests/unit/test_data_validation.py`` checks it differentially).
* ``json_type_name`` is the discriminator of ``JsonValue``'s tagged union: the same mapping as pydantic's private
  ``pydantic.types._get_type_name`` (a value's JSON type name; subclasses map to their JSON base type).
"""

from __future__ import annotations

from typing import Any, Final


class DataObject:
    """What a validated model becomes; never read (the function only wants the verdict)."""


_JSON_TYPES: Final = (int, float, str, bool, list, dict, type(None))


def json_type_name(value: Any) -> str:
    """Return the tag of ``value`` in ``JsonValue``'s union: its type's name, or its JSON base type's."""
    value_type = type(value)
    if value_type in _JSON_TYPES:
        return value_type.__name__
    # Proper subclasses (None and bool have none); the order matters: bool is an int.
    for base in (int, float, str, list, dict):
        if isinstance(value, base):
            return base.__name__
    return getattr(value_type, "__name__", "<no type name>")
