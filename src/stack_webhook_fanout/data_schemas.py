"""Core schemas of the event data models (``models.DATA_MODELS``), for ``data_validation.py``.

GENERATED from ``stack_webhook_fanout/models.py`` by ``tools/generate_data_schemas.py`` (``make schemas``): do not
edit. ``tests/unit/test_data_validation.py::test_committed_data_schemas_are_not_stale`` fails when this file is stale.
How the non-literal parts of pydantic's schemas are mapped: ``stack_webhook_fanout.devkit.core_schemas``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .data_schema_support import DataObject, json_type_name

if TYPE_CHECKING:
    from pydantic_core import CoreConfig, CoreSchema


USER: Final[CoreSchema] = {
    "type": "definitions",
    "schema": {
        "type": "model",
        "cls": DataObject,
        "schema": {
            "type": "model-fields",
            "fields": {
                "id": {
                    "type": "model-field",
                    "schema": {
                        "type": "str",
                    },
                },
                "primary_email": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "nullable",
                            "schema": {
                                "type": "str",
                            },
                        },
                        "default": None,
                    },
                },
                "primary_email_verified": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "bool",
                        },
                        "default": False,
                    },
                },
                "primary_email_auth_enabled": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "bool",
                        },
                        "default": False,
                    },
                },
                "display_name": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "nullable",
                            "schema": {
                                "type": "str",
                            },
                        },
                        "default": None,
                    },
                },
                "selected_team": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "nullable",
                            "schema": {
                                "type": "model",
                                "cls": DataObject,
                                "schema": {
                                    "type": "model-fields",
                                    "fields": {
                                        "id": {
                                            "type": "model-field",
                                            "schema": {
                                                "type": "str",
                                            },
                                        },
                                        "display_name": {
                                            "type": "model-field",
                                            "schema": {
                                                "type": "str",
                                            },
                                        },
                                        "profile_image_url": {
                                            "type": "model-field",
                                            "schema": {
                                                "type": "default",
                                                "schema": {
                                                    "type": "nullable",
                                                    "schema": {
                                                        "type": "str",
                                                    },
                                                },
                                                "default": None,
                                            },
                                        },
                                        "created_at_millis": {
                                            "type": "model-field",
                                            "schema": {
                                                "type": "int",
                                            },
                                        },
                                        "client_metadata": {
                                            "type": "model-field",
                                            "schema": {
                                                "type": "default",
                                                "schema": {
                                                    "type": "definition-ref",
                                                    "schema_ref": "pydantic.types.JsonValue",
                                                },
                                                "default": None,
                                            },
                                        },
                                        "client_read_only_metadata": {
                                            "type": "model-field",
                                            "schema": {
                                                "type": "default",
                                                "schema": {
                                                    "type": "definition-ref",
                                                    "schema_ref": "pydantic.types.JsonValue",
                                                },
                                                "default": None,
                                            },
                                        },
                                        "server_metadata": {
                                            "type": "model-field",
                                            "schema": {
                                                "type": "default",
                                                "schema": {
                                                    "type": "definition-ref",
                                                    "schema_ref": "pydantic.types.JsonValue",
                                                },
                                                "default": None,
                                            },
                                        },
                                    },
                                    "model_name": "Team",
                                    "computed_fields": [],
                                },
                                "custom_init": False,
                                "root_model": False,
                                "config": {
                                    "extra_fields_behavior": "allow",
                                    "title": "Team",
                                },
                                "ref": "stack_webhook_fanout.models.Team",
                            },
                        },
                        "default": None,
                    },
                },
                "selected_team_id": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "nullable",
                            "schema": {
                                "type": "str",
                            },
                        },
                        "default": None,
                    },
                },
                "profile_image_url": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "nullable",
                            "schema": {
                                "type": "str",
                            },
                        },
                        "default": None,
                    },
                },
                "signed_up_at_millis": {
                    "type": "model-field",
                    "schema": {
                        "type": "int",
                    },
                },
                "last_active_at_millis": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "nullable",
                            "schema": {
                                "type": "int",
                            },
                        },
                        "default": None,
                    },
                },
                "has_password": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "bool",
                        },
                        "default": False,
                    },
                },
                "otp_auth_enabled": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "bool",
                        },
                        "default": False,
                    },
                },
                "passkey_auth_enabled": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "bool",
                        },
                        "default": False,
                    },
                },
                "client_metadata": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "definition-ref",
                            "schema_ref": "pydantic.types.JsonValue",
                        },
                        "default": None,
                    },
                },
                "client_read_only_metadata": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "definition-ref",
                            "schema_ref": "pydantic.types.JsonValue",
                        },
                        "default": None,
                    },
                },
                "server_metadata": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "definition-ref",
                            "schema_ref": "pydantic.types.JsonValue",
                        },
                        "default": None,
                    },
                },
                "is_anonymous": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "bool",
                        },
                        "default": False,
                    },
                },
                "is_restricted": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "bool",
                        },
                        "default": False,
                    },
                },
                "restricted_reason": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "nullable",
                            "schema": {
                                "type": "model",
                                "cls": DataObject,
                                "schema": {
                                    "type": "model-fields",
                                    "fields": {
                                        "type": {
                                            "type": "model-field",
                                            "schema": {
                                                "type": "str",
                                            },
                                        },
                                    },
                                    "model_name": "RestrictedReason",
                                    "computed_fields": [],
                                },
                                "custom_init": False,
                                "root_model": False,
                                "config": {
                                    "extra_fields_behavior": "allow",
                                    "title": "RestrictedReason",
                                },
                                "ref": "stack_webhook_fanout.models.RestrictedReason",
                            },
                        },
                        "default": None,
                    },
                },
                "restricted_by_admin": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "bool",
                        },
                        "default": False,
                    },
                },
                "restricted_by_admin_reason": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "nullable",
                            "schema": {
                                "type": "str",
                            },
                        },
                        "default": None,
                    },
                },
                "restricted_by_admin_private_details": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "nullable",
                            "schema": {
                                "type": "str",
                            },
                        },
                        "default": None,
                    },
                },
                "country_code": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "nullable",
                            "schema": {
                                "type": "str",
                            },
                        },
                        "default": None,
                    },
                },
                "risk_scores": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "nullable",
                            "schema": {
                                "type": "model",
                                "cls": DataObject,
                                "schema": {
                                    "type": "model-fields",
                                    "fields": {
                                        "sign_up": {
                                            "type": "model-field",
                                            "schema": {
                                                "type": "model",
                                                "cls": DataObject,
                                                "schema": {
                                                    "type": "model-fields",
                                                    "fields": {
                                                        "bot": {
                                                            "type": "model-field",
                                                            "schema": {
                                                                "type": "int",
                                                            },
                                                        },
                                                        "free_trial_abuse": {
                                                            "type": "model-field",
                                                            "schema": {
                                                                "type": "int",
                                                            },
                                                        },
                                                    },
                                                    "model_name": "SignUpRiskScores",
                                                    "computed_fields": [],
                                                },
                                                "custom_init": False,
                                                "root_model": False,
                                                "config": {
                                                    "extra_fields_behavior": "allow",
                                                    "title": "SignUpRiskScores",
                                                },
                                                "ref": "stack_webhook_fanout.models.SignUpRiskScores",
                                            },
                                        },
                                    },
                                    "model_name": "RiskScores",
                                    "computed_fields": [],
                                },
                                "custom_init": False,
                                "root_model": False,
                                "config": {
                                    "extra_fields_behavior": "allow",
                                    "title": "RiskScores",
                                },
                                "ref": "stack_webhook_fanout.models.RiskScores",
                            },
                        },
                        "default": None,
                    },
                },
                "oauth_providers": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "list",
                            "items_schema": {
                                "type": "model",
                                "cls": DataObject,
                                "schema": {
                                    "type": "model-fields",
                                    "fields": {
                                        "id": {
                                            "type": "model-field",
                                            "schema": {
                                                "type": "str",
                                            },
                                        },
                                        "account_id": {
                                            "type": "model-field",
                                            "schema": {
                                                "type": "str",
                                            },
                                        },
                                        "email": {
                                            "type": "model-field",
                                            "schema": {
                                                "type": "default",
                                                "schema": {
                                                    "type": "nullable",
                                                    "schema": {
                                                        "type": "str",
                                                    },
                                                },
                                                "default": None,
                                            },
                                        },
                                    },
                                    "model_name": "OAuthProvider",
                                    "computed_fields": [],
                                },
                                "custom_init": False,
                                "root_model": False,
                                "config": {
                                    "extra_fields_behavior": "allow",
                                    "title": "OAuthProvider",
                                },
                                "ref": "stack_webhook_fanout.models.OAuthProvider",
                            },
                        },
                        "default_factory": list,
                        "default_factory_takes_data": False,
                    },
                },
                "auth_with_email": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "nullable",
                            "schema": {
                                "type": "bool",
                            },
                        },
                        "default": None,
                    },
                },
                "requires_totp_mfa": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "nullable",
                            "schema": {
                                "type": "bool",
                            },
                        },
                        "default": None,
                    },
                },
            },
            "model_name": "User",
            "computed_fields": [],
        },
        "custom_init": False,
        "root_model": False,
        "config": {
            "extra_fields_behavior": "allow",
            "title": "User",
        },
        "ref": "stack_webhook_fanout.models.User",
    },
    "definitions": [
        {
            "type": "json-or-python",
            "json_schema": {
                "type": "any",
            },
            "python_schema": {
                "type": "tagged-union",
                "choices": {
                    "list": {
                        "type": "list",
                        "items_schema": {
                            "type": "definition-ref",
                            "schema_ref": "pydantic.types.JsonValue",
                        },
                    },
                    "dict": {
                        "type": "dict",
                        "keys_schema": {
                            "type": "str",
                        },
                        "values_schema": {
                            "type": "definition-ref",
                            "schema_ref": "pydantic.types.JsonValue",
                        },
                    },
                    "str": {
                        "type": "str",
                    },
                    "bool": {
                        "type": "bool",
                    },
                    "int": {
                        "type": "int",
                    },
                    "float": {
                        "type": "float",
                    },
                    "NoneType": {
                        "type": "none",
                    },
                },
                "discriminator": json_type_name,
                "custom_error_type": "invalid-json-value",
                "custom_error_message": "input was not a valid JSON value",
            },
            "ref": "pydantic.types.JsonValue",
        },
    ],
}


USER_CONFIG: Final[CoreConfig] = {
    "extra_fields_behavior": "allow",
    "title": "User",
}


USER_DELETED: Final[CoreSchema] = {
    "type": "model",
    "cls": DataObject,
    "schema": {
        "type": "model-fields",
        "fields": {
            "id": {
                "type": "model-field",
                "schema": {
                    "type": "str",
                },
            },
            "teams": {
                "type": "model-field",
                "schema": {
                    "type": "default",
                    "schema": {
                        "type": "list",
                        "items_schema": {
                            "type": "model",
                            "cls": DataObject,
                            "schema": {
                                "type": "model-fields",
                                "fields": {
                                    "id": {
                                        "type": "model-field",
                                        "schema": {
                                            "type": "str",
                                        },
                                    },
                                },
                                "model_name": "TeamRef",
                                "computed_fields": [],
                            },
                            "custom_init": False,
                            "root_model": False,
                            "config": {
                                "extra_fields_behavior": "allow",
                                "title": "TeamRef",
                            },
                            "ref": "stack_webhook_fanout.models.TeamRef",
                        },
                    },
                    "default_factory": list,
                    "default_factory_takes_data": False,
                },
            },
        },
        "model_name": "UserDeleted",
        "computed_fields": [],
    },
    "custom_init": False,
    "root_model": False,
    "config": {
        "extra_fields_behavior": "allow",
        "title": "UserDeleted",
    },
    "ref": "stack_webhook_fanout.models.UserDeleted",
}


USER_DELETED_CONFIG: Final[CoreConfig] = {
    "extra_fields_behavior": "allow",
    "title": "UserDeleted",
}


TEAM: Final[CoreSchema] = {
    "type": "definitions",
    "schema": {
        "type": "model",
        "cls": DataObject,
        "schema": {
            "type": "model-fields",
            "fields": {
                "id": {
                    "type": "model-field",
                    "schema": {
                        "type": "str",
                    },
                },
                "display_name": {
                    "type": "model-field",
                    "schema": {
                        "type": "str",
                    },
                },
                "profile_image_url": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "nullable",
                            "schema": {
                                "type": "str",
                            },
                        },
                        "default": None,
                    },
                },
                "created_at_millis": {
                    "type": "model-field",
                    "schema": {
                        "type": "int",
                    },
                },
                "client_metadata": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "definition-ref",
                            "schema_ref": "pydantic.types.JsonValue",
                        },
                        "default": None,
                    },
                },
                "client_read_only_metadata": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "definition-ref",
                            "schema_ref": "pydantic.types.JsonValue",
                        },
                        "default": None,
                    },
                },
                "server_metadata": {
                    "type": "model-field",
                    "schema": {
                        "type": "default",
                        "schema": {
                            "type": "definition-ref",
                            "schema_ref": "pydantic.types.JsonValue",
                        },
                        "default": None,
                    },
                },
            },
            "model_name": "Team",
            "computed_fields": [],
        },
        "custom_init": False,
        "root_model": False,
        "config": {
            "extra_fields_behavior": "allow",
            "title": "Team",
        },
        "ref": "stack_webhook_fanout.models.Team",
    },
    "definitions": [
        {
            "type": "json-or-python",
            "json_schema": {
                "type": "any",
            },
            "python_schema": {
                "type": "tagged-union",
                "choices": {
                    "list": {
                        "type": "list",
                        "items_schema": {
                            "type": "definition-ref",
                            "schema_ref": "pydantic.types.JsonValue",
                        },
                    },
                    "dict": {
                        "type": "dict",
                        "keys_schema": {
                            "type": "str",
                        },
                        "values_schema": {
                            "type": "definition-ref",
                            "schema_ref": "pydantic.types.JsonValue",
                        },
                    },
                    "str": {
                        "type": "str",
                    },
                    "bool": {
                        "type": "bool",
                    },
                    "int": {
                        "type": "int",
                    },
                    "float": {
                        "type": "float",
                    },
                    "NoneType": {
                        "type": "none",
                    },
                },
                "discriminator": json_type_name,
                "custom_error_type": "invalid-json-value",
                "custom_error_message": "input was not a valid JSON value",
            },
            "ref": "pydantic.types.JsonValue",
        },
    ],
}


TEAM_CONFIG: Final[CoreConfig] = {
    "extra_fields_behavior": "allow",
    "title": "Team",
}


TEAM_DELETED: Final[CoreSchema] = {
    "type": "model",
    "cls": DataObject,
    "schema": {
        "type": "model-fields",
        "fields": {
            "id": {
                "type": "model-field",
                "schema": {
                    "type": "str",
                },
            },
        },
        "model_name": "TeamDeleted",
        "computed_fields": [],
    },
    "custom_init": False,
    "root_model": False,
    "config": {
        "extra_fields_behavior": "allow",
        "title": "TeamDeleted",
    },
    "ref": "stack_webhook_fanout.models.TeamDeleted",
}


TEAM_DELETED_CONFIG: Final[CoreConfig] = {
    "extra_fields_behavior": "allow",
    "title": "TeamDeleted",
}


TEAM_MEMBERSHIP: Final[CoreSchema] = {
    "type": "model",
    "cls": DataObject,
    "schema": {
        "type": "model-fields",
        "fields": {
            "team_id": {
                "type": "model-field",
                "schema": {
                    "type": "str",
                },
            },
            "user_id": {
                "type": "model-field",
                "schema": {
                    "type": "str",
                },
            },
        },
        "model_name": "TeamMembership",
        "computed_fields": [],
    },
    "custom_init": False,
    "root_model": False,
    "config": {
        "extra_fields_behavior": "allow",
        "title": "TeamMembership",
    },
    "ref": "stack_webhook_fanout.models.TeamMembership",
}


TEAM_MEMBERSHIP_CONFIG: Final[CoreConfig] = {
    "extra_fields_behavior": "allow",
    "title": "TeamMembership",
}


TEAM_PERMISSION: Final[CoreSchema] = {
    "type": "model",
    "cls": DataObject,
    "schema": {
        "type": "model-fields",
        "fields": {
            "id": {
                "type": "model-field",
                "schema": {
                    "type": "str",
                },
            },
            "team_id": {
                "type": "model-field",
                "schema": {
                    "type": "str",
                },
            },
            "user_id": {
                "type": "model-field",
                "schema": {
                    "type": "str",
                },
            },
        },
        "model_name": "TeamPermission",
        "computed_fields": [],
    },
    "custom_init": False,
    "root_model": False,
    "config": {
        "extra_fields_behavior": "allow",
        "title": "TeamPermission",
    },
    "ref": "stack_webhook_fanout.models.TeamPermission",
}


TEAM_PERMISSION_CONFIG: Final[CoreConfig] = {
    "extra_fields_behavior": "allow",
    "title": "TeamPermission",
}


PROJECT_PERMISSION: Final[CoreSchema] = {
    "type": "model",
    "cls": DataObject,
    "schema": {
        "type": "model-fields",
        "fields": {
            "id": {
                "type": "model-field",
                "schema": {
                    "type": "str",
                },
            },
            "user_id": {
                "type": "model-field",
                "schema": {
                    "type": "str",
                },
            },
        },
        "model_name": "ProjectPermission",
        "computed_fields": [],
    },
    "custom_init": False,
    "root_model": False,
    "config": {
        "extra_fields_behavior": "allow",
        "title": "ProjectPermission",
    },
    "ref": "stack_webhook_fanout.models.ProjectPermission",
}


PROJECT_PERMISSION_CONFIG: Final[CoreConfig] = {
    "extra_fields_behavior": "allow",
    "title": "ProjectPermission",
}


STACK_TEST: Final[CoreSchema] = {
    "type": "model",
    "cls": DataObject,
    "schema": {
        "type": "model-fields",
        "fields": {
            "message": {
                "type": "model-field",
                "schema": {
                    "type": "str",
                },
            },
            "endpointUrl": {
                "type": "model-field",
                "schema": {
                    "type": "default",
                    "schema": {
                        "type": "nullable",
                        "schema": {
                            "type": "str",
                        },
                    },
                    "default": None,
                },
            },
        },
        "model_name": "StackTest",
        "computed_fields": [],
    },
    "custom_init": False,
    "root_model": False,
    "config": {
        "extra_fields_behavior": "allow",
        "title": "StackTest",
    },
    "ref": "stack_webhook_fanout.models.StackTest",
}


STACK_TEST_CONFIG: Final[CoreConfig] = {
    "extra_fields_behavior": "allow",
    "title": "StackTest",
}


#: Event type -> (core schema, core config) of its data model, as ``models.DATA_MODELS`` maps it.
DATA_SCHEMAS: Final[dict[str, tuple[CoreSchema, CoreConfig]]] = {
    "user.created": (USER, USER_CONFIG),
    "user.updated": (USER, USER_CONFIG),
    "user.deleted": (USER_DELETED, USER_DELETED_CONFIG),
    "team.created": (TEAM, TEAM_CONFIG),
    "team.updated": (TEAM, TEAM_CONFIG),
    "team.deleted": (TEAM_DELETED, TEAM_DELETED_CONFIG),
    "team_membership.created": (TEAM_MEMBERSHIP, TEAM_MEMBERSHIP_CONFIG),
    "team_membership.deleted": (TEAM_MEMBERSHIP, TEAM_MEMBERSHIP_CONFIG),
    "team_permission.created": (TEAM_PERMISSION, TEAM_PERMISSION_CONFIG),
    "team_permission.deleted": (TEAM_PERMISSION, TEAM_PERMISSION_CONFIG),
    "project_permission.created": (PROJECT_PERMISSION, PROJECT_PERMISSION_CONFIG),
    "project_permission.deleted": (PROJECT_PERMISSION, PROJECT_PERMISSION_CONFIG),
    "stack.test": (STACK_TEST, STACK_TEST_CONFIG),
}
