"""The function's policy grants exactly the AWS calls its code makes: derived from the calls, not from the template.

The real ingest function runs against the emulator with an event hook on the botocore session its clients come from
(``bootstrap.aws_session``), through every path that reaches AWS: a new event, a redelivery, an unknown type, a
conditional-write failure that comes back without the old item (the store then reads the record), and a failed
publish (the claim is released). Each call is recorded as its IAM action (``<signing name>:<operation>``), which is
compared with the function's policy both ways: nothing the code calls is missing, nothing granted goes uncalled.
A static scan of the modules the function loads checks that no call site was left out of the run.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import subprocess
import sys
import uuid
from typing import TYPE_CHECKING, Any

import botocore.session
import pytest
from botocore.exceptions import EndpointConnectionError
from stack_webhook_fanout_tools.devkit.emulator import planned_stack, provision
from stack_webhook_fanout_tools.devkit.local_gateway import LocalContext
from stack_webhook_fanout_tools.devkit.samples import UNKNOWN_SAMPLE_TYPE, sample_api_event
from stack_webhook_fanout_tools.devkit.signing import new_message_id

from stack_webhook_fanout import bootstrap

from .conftest import REPO_ROOT, TEMPLATE_PATH
from .test_template_iam import as_list, function_statements

if TYPE_CHECKING:
    from types import ModuleType

    from botocore.model import OperationModel
    from stack_webhook_fanout_tools.devkit.cfn_template import Template

pytestmark = [pytest.mark.template, pytest.mark.integration]

INGEST_APP = REPO_ROOT / "functions" / "ingest" / "app.py"
# The function never calls KMS itself: the services it calls use the stack's key for it (kms:ViaService).
KMS_STATEMENT = "UseStackKeyThroughItsServicesOnly"
SERVICES = ("dynamodb", "sns", "secretsmanager")


def load_function() -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"ingest_app_{uuid.uuid4().hex}", INGEST_APP)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def called_actions(moto_endpoint: str) -> set[str]:
    """The IAM actions of every AWS call the function made while run through each path that reaches AWS."""
    stack = provision(moto_endpoint, name_prefix=f"iam-{uuid.uuid4().hex[:8]}", template_path=TEMPLATE_PATH)
    session = botocore.session.get_session()
    actions: set[str] = set()
    faults = {"strip_old_item": False, "refuse_publish": False}

    def record(model: OperationModel, **_: Any) -> None:
        actions.add(f"{model.service_model.signing_name}:{model.name}")

    def strip_old_item(params: dict[str, Any], **_: Any) -> None:
        if faults["strip_old_item"]:
            params.pop("ReturnValuesOnConditionCheckFailure", None)

    def refuse_publish(**_: Any) -> None:
        if faults["refuse_publish"]:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9/unreachable")

    # Hooks on the session reach every client made from it afterwards (the function makes its clients at init).
    session.register("before-call", record)
    session.register("before-parameter-build.dynamodb.UpdateItem", strip_old_item)
    session.register("before-call.sns.Publish", refuse_publish)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bootstrap, "aws_session", lambda: session)
        patch.delenv("AWS_PROFILE", raising=False)
        for name, value in stack.process_env().items():
            patch.setenv(name, value)
        function = load_function()

        def deliver(event_type: str, event_id: str | None = None) -> int:
            event = sample_api_event(event_type, stack.secret_value, msg_id=event_id or new_message_id())
            return int(function.lambda_handler(event, LocalContext())["statusCode"])

        known = new_message_id()
        assert deliver("user.created", known) == 200  # secret read, claimed, published, marked
        assert deliver("user.created", known) == 200  # a redelivery: the failed claim returns the old item
        assert deliver(UNKNOWN_SAMPLE_TYPE) == 200  # the fallback topic
        faults["strip_old_item"] = True
        assert deliver("user.created", known) == 200  # no old item in the failure: the store reads the record
        faults["strip_old_item"], faults["refuse_publish"] = False, True
        assert deliver("team.created") == 503  # publish failed: the claim is released
    return actions


def called_operations_in_code() -> set[str]:
    """IAM actions of every client method called anywhere in the modules the function loads (a fresh interpreter
    loads the function and lists them), found by name in the source of those modules."""
    listing = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('app', {str(INGEST_APP)!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print('\\n'.join(m for m in sys.modules if m.startswith('stack_webhook_fanout')))\n"
    )
    env = planned_stack().process_env()  # the function's settings; importing it makes no AWS call
    result = subprocess.run(
        [sys.executable, "-c", listing], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    module_names = result.stdout.split()
    assert "stack_webhook_fanout.event_store" in module_names
    session = botocore.session.get_session()
    method_to_action: dict[str, set[str]] = {}
    for service in SERVICES:
        client = session.create_client(
            service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        signing_name = client.meta.service_model.signing_name
        for method, operation in client.meta.method_to_api_mapping.items():
            method_to_action.setdefault(method, set()).add(f"{signing_name}:{operation}")
    called: set[str] = set()
    for name in module_names:
        for node in ast.walk(ast.parse(inspect.getsource(importlib.import_module(name)))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in method_to_action
            ):
                called |= method_to_action[node.func.attr]
    return called


def test_every_client_call_in_the_functions_code_was_made_in_the_run(called_actions: set[str]) -> None:
    in_code = called_operations_in_code()
    assert in_code, "no client call found: the scan is broken"
    assert in_code <= called_actions, f"called in the code but not exercised: {sorted(in_code - called_actions)}"


def test_function_policy_grants_exactly_the_actions_its_code_calls(
    template: Template, called_actions: set[str]
) -> None:
    statements = function_statements(template)
    granted = {a for sid, s in statements.items() if sid != KMS_STATEMENT for a in as_list(s["Action"])}
    assert called_actions - granted == set(), "called but not granted"
    assert granted - called_actions == set(), "granted but never called"


def test_stack_key_is_usable_through_exactly_the_services_the_function_calls(
    template: Template, called_actions: set[str]
) -> None:
    # The table, the secret and the topics are all encrypted with the stack's key.
    via = function_statements(template)[KMS_STATEMENT]["Condition"]["StringEquals"]["kms:ViaService"]
    services = {v["Fn::Sub"].removesuffix(".${AWS::Region}.amazonaws.com") for v in via}
    assert services == {action.split(":", 1)[0] for action in called_actions}
