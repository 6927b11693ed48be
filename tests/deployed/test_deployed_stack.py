"""What ``sam deploy`` created on the emulator, and the deployed function run as Lambda runs it.

Order matters in one place: the 503 test runs before any test puts the webhook secret (pytest keeps file order).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import TYPE_CHECKING, Any

import botocore.exceptions
import pytest
from stack_webhook_fanout_tools.devkit.apigw import http_api_event
from stack_webhook_fanout_tools.devkit.cfn_template import function_environment, load_template, resources
from stack_webhook_fanout_tools.devkit.emulator import drain, subscribe_queue
from stack_webhook_fanout_tools.devkit.lambda_runtime import FunctionError, download_function
from stack_webhook_fanout_tools.devkit.sam_deploy import put_webhook_secret
from stack_webhook_fanout_tools.devkit.samples import SAMPLE_TYPES, sample_body
from stack_webhook_fanout_tools.devkit.signing import new_secret, sign_headers

from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES

from .conftest import REPO_ROOT, STACK_NAME

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import Deployed

pytestmark = pytest.mark.deployed

TEMPLATE = load_template(REPO_ROOT / "template.yaml")
SECRET = new_secret()


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def post_signed(deployed: Deployed, event_type: str, *, secret: str = SECRET, msg_id: str | None = None) -> Any:
    body = sample_body(event_type)
    headers = {**sign_headers(secret, body, msg_id=msg_id), "content-type": "application/json"}
    return (*post(deployed.webhook_url, body, headers), headers["svix-id"], body)


def test_deploy_reaches_create_complete_with_every_output_resolved(deployed: Deployed) -> None:
    cloudformation = deployed.client("cloudformation")
    stack = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert set(deployed.outputs) == set(TEMPLATE["Outputs"])
    for key, value in deployed.outputs.items():
        assert value, key
        assert not re.search(r"\$\{|None|Fn::|Ref|\{'", value), f"{key} is unresolved: {value}"
    summaries = cloudformation.list_stack_resources(StackName=STACK_NAME)["StackResourceSummaries"]
    # moto also lists the resources whose condition is false, with no type: CloudFormation does not create them
    created = {s["LogicalResourceId"]: s for s in summaries if s.get("ResourceType")}
    assert {s["ResourceStatus"] for s in created.values()} == {"CREATE_COMPLETE"}
    types = {s["ResourceType"] for s in created.values()}
    # what the SAM transform makes of the serverless resources, and the types moto lacked
    assert {
        "AWS::Lambda::Function",
        "AWS::Lambda::LayerVersion",
        "AWS::Lambda::Permission",
        "AWS::IAM::Role",
        "AWS::ApiGatewayV2::Api",
        "AWS::ApiGatewayV2::Stage",
        "AWS::CloudWatch::Alarm",
        "AWS::Logs::MetricFilter",
        "AWS::SecretsManager::Secret",
    } <= types
    assert not any(t.startswith("AWS::Serverless::") for t in types)
    unconditional = {k for k, v in resources(TEMPLATE).items() if "Condition" not in v or k == "WebhookSecret"}
    sam_logical_ids = {k for k, v in resources(TEMPLATE).items() if v["Type"].startswith("AWS::Serverless::")}
    assert unconditional - sam_logical_ids <= set(created)


def test_deployed_function_configuration_matches_the_template(deployed: Deployed) -> None:
    function = resources(TEMPLATE)["IngestFunction"]["Properties"]
    lam = deployed.client("lambda")
    config = lam.get_function_configuration(FunctionName=deployed.outputs["IngestFunctionName"])
    assert config["Runtime"] == function["Runtime"] == "python3.13"
    assert config["Architectures"] == function["Architectures"] == ["arm64"]
    assert config["Handler"] == function["Handler"]
    assert config["Timeout"] == function["Timeout"]
    assert config["MemorySize"] == TEMPLATE["Parameters"]["FunctionMemorySize"]["Default"]
    # SAM leaves TracingConfig out when TracingMode is Disabled; Lambda then reports PassThrough
    tracing = TEMPLATE["Parameters"]["TracingMode"]["Default"]
    assert config["TracingConfig"] == {"Mode": "Active" if tracing == "Active" else "PassThrough"}
    [layer] = config["Layers"]
    layer_arn, version = layer["Arn"].rsplit(":", 1)
    assert layer_arn.endswith(f":layer:{STACK_NAME}-dependencies")
    layer_version = lam.get_layer_version(LayerName=layer_arn, VersionNumber=int(version))
    assert layer_version["CompatibleArchitectures"] == ["arm64"]
    assert layer_version["CompatibleRuntimes"] == ["python3.13"]

    environment = config["Environment"]["Variables"]
    assert set(environment) == set(function_environment(TEMPLATE))
    # every name and ARN in it exists in the emulator
    dynamodb, sns = deployed.client("dynamodb"), deployed.client("sns")
    assert dynamodb.describe_table(TableName=environment["EVENTS_TABLE_NAME"])["Table"]["TableStatus"] == "ACTIVE"
    assert environment["EVENTS_TABLE_NAME"] == deployed.outputs["EventsTableName"]
    secret = deployed.client("secretsmanager").describe_secret(SecretId=environment["WEBHOOK_SECRET_ARN"])
    assert secret["ARN"] == environment["WEBHOOK_SECRET_ARN"] == deployed.outputs["WebhookSecretArn"]
    topic_arns = json.loads(environment["TOPIC_ARNS"])
    assert set(topic_arns) == set(KNOWN_EVENT_TYPES)
    for topic_arn in [*topic_arns.values(), environment["FALLBACK_TOPIC_ARN"]]:
        assert sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]["TopicArn"] == topic_arn
    assert topic_arns == dict(deployed.stack.topic_arns)
    assert environment["FALLBACK_TOPIC_ARN"] == deployed.stack.fallback_topic_arn


def test_the_function_imports_its_package_from_the_deployed_layer_only(deployed: Deployed, tmp_path: Path) -> None:
    # given the Lambda runtime's interpreter, which has no copy of the package
    probe = subprocess.run(
        [str(deployed.python), "-c", "import stack_webhook_fanout"], capture_output=True, text=True, check=False
    )
    assert probe.returncode != 0
    assert "No module named 'stack_webhook_fanout'" in probe.stderr
    # and the deployed artifacts, downloaded again, with the package taken out of the layer
    lam = deployed.client("lambda")
    stripped = download_function(lam, deployed.function.name, tmp_path / "function")
    shutil.rmtree(stripped.opt_root / "python" / "stack_webhook_fanout")
    pool = deployed.new_pool(tmp_path / "stripped.log", max_environments=1, function=stripped)
    event = http_api_event(b"{}", {"content-type": "application/json"}, method="POST", path="/webhooks/stack")
    # when it is invoked, its init fails: nothing else on the path provides the package
    try:
        with pytest.raises(FunctionError):
            pool.invoke(event)
    finally:
        pool.close()
    log = (tmp_path / "stripped.log").read_text(errors="replace")
    assert "Runtime.ImportModuleError" in log
    assert "No module named 'stack_webhook_fanout'" in log
    # while the deployed function, run the same way, imports it from the layer
    assert (deployed.function.opt_root / "python" / "stack_webhook_fanout" / "__init__.py").is_file()
    assert not (deployed.function.task_root / "stack_webhook_fanout").exists()


def test_a_download_replaces_whatever_an_earlier_one_left(deployed: Deployed, tmp_path: Path) -> None:
    stale = tmp_path / "function" / "opt" / "python" / "stale_module.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("raise SystemExit('stale code on the path')\n")
    downloaded = download_function(deployed.client("lambda"), deployed.function.name, tmp_path / "function")
    assert not stale.exists()
    assert (downloaded.task_root / "app.py").is_file()


def test_answers_503_before_the_secret_is_set(deployed: Deployed) -> None:
    status, answer, _, _ = post_signed(deployed, "user.created")
    assert status == 503
    assert answer == {"error": "secret_not_configured"}


def test_published_duplicate_fallback_and_401_through_the_deployed_function(deployed: Deployed) -> None:
    stack = deployed.stack
    user_created = subscribe_queue(stack, [stack.topic_arns["user.created"]], f"dep-uc-{uuid.uuid4().hex[:8]}")
    fallback = subscribe_queue(stack, [stack.fallback_topic_arn], f"dep-fb-{uuid.uuid4().hex[:8]}")
    # given the secret put in after the deploy, as a user does (the function refetches it within 10 s)
    put_webhook_secret(stack, SECRET)
    deadline = time.monotonic() + 30
    while True:
        status, answer, event_id, body = post_signed(deployed, "user.created")
        if status != 503 or time.monotonic() > deadline:
            break
        time.sleep(1)
    # then a signed event is published to its deployed topic, verbatim
    assert (status, answer["status"]) == (200, "published"), answer
    messages = drain(user_created, stack=stack, wait_seconds=5)
    assert [m.body.encode() for m in messages] == [body]
    assert messages[0].attributes["event_id"] == event_id
    # a redelivery of the same id is acknowledged as a duplicate and not published again
    status, answer, _, _ = post_signed(deployed, "user.created", msg_id=event_id)
    assert (status, answer["status"]) == (200, "duplicate")
    assert drain(user_created, stack=stack, wait_seconds=1) == []
    # an unknown type goes to the fallback topic
    unknown = json.dumps({"type": "project.renamed", "data": {"id": "p1"}}).encode()
    headers = {**sign_headers(SECRET, unknown), "content-type": "application/json"}
    status, answer = post(deployed.webhook_url, unknown, headers)
    assert (status, answer["status"]) == (200, "published")
    assert [m.body.encode() for m in drain(fallback, stack=stack, wait_seconds=5)] == [unknown]
    # a wrong signature is refused and stored nowhere
    status, answer, wrong_id, _ = post_signed(deployed, "team.created", secret=new_secret())
    assert status == 401, answer
    assert wrong_id not in {str(record.get("event_id")) for record in stack.records()}


def test_every_type_fans_out_to_its_deployed_topic(deployed: Deployed) -> None:
    stack = deployed.stack
    put_webhook_secret(stack, SECRET)
    queues = {
        t: subscribe_queue(stack, [stack.topic_arns[t]], f"dep-{i}-{uuid.uuid4().hex[:8]}")
        for i, t in enumerate(KNOWN_EVENT_TYPES)
    }
    sent: dict[str, str] = {}
    for event_type in KNOWN_EVENT_TYPES:
        status, answer, event_id, _ = post_signed(deployed, event_type)
        assert (status, answer.get("status")) == (200, "published"), (event_type, answer)
        sent[event_type] = event_id
    for event_type, queue_url in queues.items():
        ids = [m.attributes["event_id"] for m in drain(queue_url, stack=stack, wait_seconds=5)]
        assert ids == [sent[event_type]], event_type


def test_overlapping_requests_get_more_execution_environments_up_to_the_bound(
    deployed: Deployed, tmp_path: Path
) -> None:
    pool = deployed.new_pool(tmp_path / "pool.log", max_environments=3)
    put_webhook_secret(deployed.stack, SECRET)
    event = http_api_event(b"{}", {"content-type": "application/json"}, method="POST", path="/webhooks/stack")
    answers: list[Any] = []

    def burst(n: int) -> None:
        threads = [threading.Thread(target=lambda: answers.append(pool.invoke(event))) for _ in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    try:
        # three at once on a cold pool: none is free while the first inits, so three environments start
        burst(3)
        assert pool.environments_started == 3
        # eight more at once: they wait for a free environment rather than go beyond the bound
        burst(8)
        assert pool.environments_started == 3
        pids = pool.pids()
    finally:
        pool.close()
    assert len(answers) == 11
    # an unsigned body: every environment answered it as the function does (401, nothing 5xx)
    assert {a["statusCode"] for a in answers} == {401}
    log = (tmp_path / "pool.log").read_text(errors="replace")
    assert len(re.findall(r"^START RequestId: \S+ Version: \$LATEST$", log, re.MULTILINE)) == 11
    assert len(re.findall(r"^END RequestId: ", log, re.MULTILINE)) == 11
    reports = re.findall(r"^REPORT RequestId: .*$", log, re.MULTILINE)
    assert len(reports) == 11
    # one init per environment, reported on its first invoke
    assert sum("Init Duration" in line for line in reports) == 3
    assert len(set(pids)) == 3


def test_make_send_all_passes_against_the_deployed_function(deployed: Deployed) -> None:
    put_webhook_secret(deployed.stack, SECRET)
    env = {
        **os.environ,
        "URL": deployed.webhook_url,
        "SECRET": SECRET,
        "DEV_OUTPUTS": "/nonexistent",
    }
    result = subprocess.run(
        ["make", "--no-print-directory", "send-all"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(SAMPLE_TYPES)} of {len(SAMPLE_TYPES)} answered 2xx" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_a_template_the_sam_transform_rejects_gets_a_validation_error(deployed: Deployed) -> None:
    broken = json.dumps(
        {
            "Transform": "AWS::Serverless-2016-10-31",
            "Resources": {"Fn": {"Type": "AWS::Serverless::Function", "Properties": {"Handler": "app.handler"}}},
        }
    )
    cloudformation = deployed.client("cloudformation")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        cloudformation.create_change_set(
            StackName="broken-sam-template", ChangeSetName="c1", TemplateBody=broken, ChangeSetType="CREATE"
        )
    # a 400 naming the transform, as CloudFormation answers, not a server error
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "Transform AWS::Serverless-2016-10-31 failed" in caught.value.response["Error"]["Message"]
