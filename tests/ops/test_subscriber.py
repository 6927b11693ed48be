"""The example subscriber (examples/subscriber): its template, its build, and its consumer fed with messages that the
real ingest function published through a subscription made as the template makes it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from stack_webhook_fanout_tools.devkit import cfn_template
from stack_webhook_fanout_tools.devkit.imported_modules import imported_package_files
from stack_webhook_fanout_tools.devkit.local_gateway import LocalContext
from stack_webhook_fanout_tools.devkit.subscriber_stack import (
    imported_event_type,
    provision_subscriber,
    resolved_filter_policy,
    subscriber_environment,
)

from stack_webhook_fanout.event_types import KNOWN_EVENT_TYPES

from .subscriber_support import GUARD_ACTIONS
from .support import REPO_ROOT, SUBSCRIBER_APP, SUBSCRIBER_DIR, load_module, receive_raw, sqs_lambda_event

if TYPE_CHECKING:
    from .support import FedStack

SUBSCRIBER_TEMPLATE = SUBSCRIBER_DIR / "template.yaml"
SAM = REPO_ROOT / ".venv-sam" / "bin" / "sam"
# Personal data of the samples that must never reach the consumer's logs.
PERSONAL_DATA = ("jane@example.com", "jane@gmail.com", "Jane Doe", "Jane Q. Doe")


def python313_dir() -> str:
    """The bin directory of this interpreter's base installation: ``sam build`` needs ``python3.13`` on PATH, and
    the tests run on the project's 3.13 virtual environment."""
    base_bin = Path(sys.base_prefix) / "bin"
    if not (base_bin / "python3.13").exists():
        pytest.fail(f"no python3.13 in {base_bin} for sam build")
    return str(base_bin)


def sam(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    if not SAM.exists():
        pytest.fail(f"{SAM} is missing: run `make install` (the SAM CLI lives in its own virtual environment)")
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "PATH": f"{python313_dir()}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(SAM), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


def subscriber_template() -> dict[str, Any]:
    return cfn_template.load_template(SUBSCRIBER_TEMPLATE)


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


# --- the template -------------------------------------------------------------------------------------------------
@pytest.mark.template
def test_subscriber_template_passes_sam_validate_lint() -> None:
    result = sam("validate", "--lint", cwd=SUBSCRIBER_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


@pytest.mark.template
def test_subscriber_sam_build_ships_the_event_models_for_arm64(tmp_path: Path) -> None:
    # when: built as its README says (from examples/subscriber, no container)
    result = sam("build", "--build-dir", str(tmp_path / "build"), cwd=SUBSCRIBER_DIR)

    # then: the function holds app.py, the models package and pydantic-core (native, built for aarch64)
    assert result.returncode == 0, result.stdout + result.stderr
    function = tmp_path / "build" / "ConsumerFunction"
    assert (function / "app.py").is_file()
    assert (function / "stack_webhook_fanout" / "events.py").is_file()
    assert (function / "stack_webhook_fanout" / "entity_guard.py").is_file()
    binaries = list((function / "pydantic_core").glob("_pydantic_core.*.so"))
    assert len(binaries) == 1
    assert "aarch64" in binaries[0].name
    assert not (function / "boto3").exists()
    assert not (function / "Makefile").exists()
    assert not list(function.glob("stack_webhook_fanout*.dist-info"))  # no wheel metadata (it embedded the README)

    # and: of the package, exactly the modules that importing app.py loads
    shipped = sorted(
        p.relative_to(function).as_posix() for p in (function / "stack_webhook_fanout").rglob("*") if p.is_file()
    )
    imports = tmp_path / "imports"
    imports.mkdir()
    shutil.copy(function / "app.py", imports / "app.py")
    shutil.copytree(function / "stack_webhook_fanout", imports / "stack_webhook_fanout")
    # (its built dependencies left out: pydantic-core is built for aarch64; this interpreter's pydantic stands in)
    loaded = imported_package_files(
        sys.executable,
        entry_module="app",
        package="stack_webhook_fanout",
        paths=[imports],
        env={
            "AWS_DEFAULT_REGION": "us-east-1",
            "GUARD_TABLE_NAME": "guard",
            "GUARD_DAYS": "14",
            "SUBSCRIBER_NAME": "subscriber",
        },
    )
    imported = sorted(f.relative_to(imports.resolve()).as_posix() for f in loaded)
    assert shipped == imported
    assert "stack_webhook_fanout/ingest.py" not in shipped


def test_subscriber_template_subscribes_a_queue_to_every_topic_with_raw_delivery_and_a_type_filter() -> None:
    template = subscriber_template()
    subscriptions = resources_of_type(template, "AWS::SNS::Subscription")

    # every known type's topic, imported from the source stack, once
    assert sorted(imported_event_type(s["Properties"]["TopicArn"]) for s in subscriptions.values()) == sorted(
        KNOWN_EVENT_TYPES
    )
    for subscription in subscriptions.values():
        properties = subscription["Properties"]
        assert properties["Protocol"] == "sqs"
        assert properties["Endpoint"] == {"Fn::GetAtt": ["EventsQueue", "Arn"]}
        assert properties["RawMessageDelivery"] is True
        assert properties["FilterPolicyScope"] == "MessageAttributes"
        assert properties["FilterPolicy"] == {"event_type": {"Ref": "EventTypes"}}
    defaults = resolved_filter_policy(template, {"event_type": {"Ref": "EventTypes"}})["event_type"]
    assert set(defaults) <= set(KNOWN_EVENT_TYPES)


def test_subscriber_template_queue_has_encryption_a_dead_letter_queue_and_an_sns_only_policy() -> None:
    template = subscriber_template()
    queues = resources_of_type(template, "AWS::SQS::Queue")
    assert set(queues) == {"EventsQueue", "EventsDeadLetterQueue", "SubscriptionDeadLetterQueue"}
    assert all(q["Properties"]["SqsManagedSseEnabled"] is True for q in queues.values())
    redrive = queues["EventsQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}

    (policy,) = resources_of_type(template, "AWS::SQS::QueuePolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    sources = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sorted(imported_event_type(s) for s in sources) == sorted(KNOWN_EVENT_TYPES)


def test_subscriber_template_gives_every_subscription_a_dead_letter_queue_that_only_the_topics_may_fill() -> None:
    template = subscriber_template()
    # every subscription keeps what SNS cannot deliver in the subscriptions' dead-letter queue
    subscriptions = resources_of_type(template, "AWS::SNS::Subscription")
    assert len(subscriptions) == len(KNOWN_EVENT_TYPES)
    for logical_id, subscription in subscriptions.items():
        assert subscription["Properties"]["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": ["SubscriptionDeadLetterQueue", "Arn"]}
        }, logical_id
        # created after the policy that lets SNS send to it (else SNS could drop the first messages)
        assert subscription["DependsOn"] == "EventsQueuePolicy", logical_id

    # the queue policy lets SNS send to that queue, from exactly the topics subscribed
    (policy,) = resources_of_type(template, "AWS::SQS::QueuePolicy").values()
    assert {"Ref": "SubscriptionDeadLetterQueue"} in policy["Properties"]["Queues"]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == (
        "Allow",
        {"Service": "sns.amazonaws.com"},
        "sqs:SendMessage",
    )
    assert {"Fn::GetAtt": ["SubscriptionDeadLetterQueue", "Arn"]} in statement["Resource"]
    sources = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sorted(imported_event_type(s) for s in sources) == sorted(
        imported_event_type(s["Properties"]["TopicArn"]) for s in subscriptions.values()
    )
    assert len(sources) == len(set(map(str, sources)))

    # and an alarm goes off on the first message in it
    alarms = resources_of_type(template, "AWS::CloudWatch::Alarm")
    (alarm,) = (
        a["Properties"]
        for a in alarms.values()
        if a["Properties"]["Dimensions"]
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["SubscriptionDeadLetterQueue", "QueueName"]}}]
    )
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert (alarm["ComparisonOperator"], alarm["Threshold"], alarm["EvaluationPeriods"]) == (
        "GreaterThanThreshold",
        0,
        1,
    )
    assert alarm["TreatMissingData"] == "notBreaching"
    dead_letter = template["Resources"]["SubscriptionDeadLetterQueue"]["Properties"]
    assert dead_letter["SqsManagedSseEnabled"] is True
    assert dead_letter["MessageRetentionPeriod"] == 1209600


def test_subscriber_template_function_reports_batch_item_failures() -> None:
    function = subscriber_template()["Resources"]["ConsumerFunction"]["Properties"]
    assert (function["Runtime"], function["Architectures"], function["Handler"]) == (
        "python3.13",
        ["arm64"],
        "app.lambda_handler",
    )
    (event,) = function["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["EventsQueue", "Arn"]}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # the queue hides a message longer than the function may take with it
    queue = subscriber_template()["Resources"]["EventsQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]


def test_subscriber_template_guard_table_is_what_the_entity_guard_writes_encrypted_and_expiring() -> None:
    # given: the key and expiry attributes the entity guard writes
    from stack_webhook_fanout.entity_guard import KEY_ATTRIBUTE, TTL_ATTRIBUTE

    template = subscriber_template()
    table = template["Resources"]["GuardTable"]["Properties"]

    # then: keyed on its key attribute, TTL on its expiry attribute, encrypted, on demand
    assert table["KeySchema"] == [{"AttributeName": KEY_ATTRIBUTE, "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": KEY_ATTRIBUTE, "AttributeType": "S"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert "IdempotencyTable" not in template["Resources"]
    # and: the function is given the table, its own key prefix, and only the item calls the guard makes (the
    # calls themselves are counted in tests/ops/test_subscriber_idempotency.py)
    function = template["Resources"]["ConsumerFunction"]["Properties"]
    variables = function["Environment"]["Variables"]
    assert variables["GUARD_TABLE_NAME"] == {"Ref": "GuardTable"}
    assert variables["SUBSCRIBER_NAME"] == {"Ref": "AWS::StackName"}
    assert variables["GUARD_DAYS"] == {"Ref": "GuardDays"}
    ((statement,),) = [policy["Statement"] for policy in function["Policies"]]
    assert sorted(statement["Action"]) == sorted(GUARD_ACTIONS)
    assert statement["Resource"] == {"Fn::GetAtt": ["GuardTable", "Arn"]}


def test_subscriber_requirements_are_pinned_at_the_versions_the_project_ships_and_tests() -> None:
    from importlib.metadata import version

    from packaging.requirements import Requirement

    def pins(path: Path) -> dict[str, str]:
        found: dict[str, str] = {}
        for line in path.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith(("#", ".")):
                continue
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", line
            found[requirement.name.lower().replace("_", "-")] = specifier.version
        return found

    example = pins(SUBSCRIBER_DIR / "src" / "requirements.txt")
    layer = pins(REPO_ROOT / "layers" / "dependencies" / "requirements.txt")
    assert example["aws-lambda-powertools"] == "3.37.0"
    for name, pinned in example.items():
        # the layer's pin where it ships the package, else the development environment's (pydantic and its own)
        assert pinned == layer.get(name, version(name)), name


# --- the consumer on the emulator ---------------------------------------------------------------------------------
def subscribe_as_the_template_does(fed: FedStack, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """The subscriber's queue, table and subscriptions as its template declares them (devkit.subscriber_stack),
    and its function's environment set for :func:`load_consumer`; the queue's URL and ARN."""
    subscriber = provision_subscriber(fed.stack, SUBSCRIBER_TEMPLATE, name=f"subscriber-{uuid.uuid4().hex[:8]}")
    for name, value in subscriber_environment(fed.stack, subscriber, SUBSCRIBER_TEMPLATE).items():
        monkeypatch.setenv(name, value)
    return subscriber.queue_url, subscriber.queue_arn


def load_consumer(monkeypatch: pytest.MonkeyPatch) -> Any:
    # A service name of its own: Powertools keeps one logger per name, bound to the stream it was created with.
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", f"stack-subscriber-{uuid.uuid4().hex[:8]}")
    return load_module(SUBSCRIBER_APP)


def log_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.integration
def test_subscriber_consumer_processes_published_events_and_reports_bad_ones(
    fed_stack: FedStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: the subscriber's queue, subscribed as its template subscribes it (default EventTypes)
    queue_url, queue_arn = subscribe_as_the_template_does(fed_stack, monkeypatch)
    sqs = fed_stack.stack.client("sqs")
    # and: deliveries through the real ingest function; team_permission.created is not among the default types
    good = [fed_stack.deliver(t) for t in ("user.created", "user.deleted", "team_membership.created")]
    filtered_out = fed_stack.deliver("team_permission.created")
    assert all(d.status == 200 for d in [*good, filtered_out])
    # and: two messages a consumer cannot type, as our ingest function published them: an unknown type (to the
    # fallback topic), and a user.created whose data the models reject (routed on its verified type, to its topic)
    unknown = fed_stack.deliver("session.created")
    invalid = fed_stack.deliver("user.created", body=b'{"type":"user.created","data":{"id":"u_1"}}')
    [fallback] = receive_raw(sqs, fed_stack.queues["fallback"], expected=2)
    assert fallback["MessageAttributes"]["event_id"]["StringValue"] == unknown.event_id

    # when: the filter lets the default types through (the invalid user.created too), and the consumer gets them
    # with the unknown one
    received = receive_raw(sqs, queue_url, expected=5)
    ids = {m["MessageAttributes"]["event_id"]["StringValue"]: m for m in received}
    assert sorted(ids) == sorted([*(d.event_id for d in good), invalid.event_id])
    batch = [ids[good[0].event_id], fallback, ids[good[1].event_id], ids[invalid.event_id], ids[good[2].event_id]]
    consumer = load_consumer(monkeypatch)
    capsys.readouterr()
    response = consumer.lambda_handler(sqs_lambda_event(batch, queue_arn, fed_stack.stack.region), LocalContext())

    # then: exactly the two bad messages are reported as failures (SQS retries them, then dead-letters them)
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == sorted(
        [fallback["MessageId"], ids[invalid.event_id]["MessageId"]]
    )
    # and: each good one was processed as its typed event, in order; the bad ones were logged without content
    logs = log_lines(capsys.readouterr().out)
    processed = [(line["event_id"], line["event_type"]) for line in logs if line.get("decision") == "applied"]
    assert processed == [(d.event_id, d.event_type) for d in good]
    actions = [line["action"] for line in logs if line.get("decision") == "applied"]
    assert actions[0].startswith("upserted profile of user ")
    assert actions[1] == "erased data of user 3241a285-8329-4d69-8f3d-316e08cf140c in 2 teams"
    assert actions[2].startswith("granted user ")
    rejected = sorted((line["event_id"], line["event_type"]) for line in logs if line.get("decision") == "rejected")
    assert rejected == sorted([(unknown.event_id, "session.created"), (invalid.event_id, "user.created")])
    for secret in PERSONAL_DATA:
        assert secret not in json.dumps(logs)


@pytest.mark.integration
def test_subscriber_consumer_reports_a_batch_of_only_bad_messages_without_failing(
    fed_stack: FedStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: two messages from the fallback topic only
    fed_stack.deliver("session.created")
    fed_stack.deliver("unreadable", body=b'{"data":{"endpointUrl":"https://x"}}')
    sqs = fed_stack.stack.client("sqs")
    fallback = receive_raw(sqs, fed_stack.queues["fallback"], expected=2)
    assert len(fallback) == 2
    subscribe_as_the_template_does(fed_stack, monkeypatch)
    consumer = load_consumer(monkeypatch)

    # when
    response = consumer.lambda_handler(
        sqs_lambda_event(fallback, "arn:aws:sqs:us-east-1:123456789012:q", fed_stack.stack.region), LocalContext()
    )

    # then: every record reported (SQS retries them, then dead-letters them), no exception
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == sorted(
        m["MessageId"] for m in fallback
    )


@pytest.mark.integration
def test_subscriber_consumer_skips_a_replay_of_an_event_it_processed_in_the_same_batch(
    fed_stack: FedStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: an event ingested, then replayed
    from stack_webhook_fanout_tools.replay import ReplaySummary, ReplayTarget, Selection, build_replayer

    queue_url, queue_arn = subscribe_as_the_template_does(fed_stack, monkeypatch)
    delivery = fed_stack.deliver("user.updated")
    target = ReplayTarget.from_local_outputs(fed_stack.stack.outputs())
    replayer = build_replayer(target, fed_stack.stack.client("dynamodb"), fed_stack.stack.client("sns"))
    summary = ReplaySummary(executed=True)
    replayer.run(replayer.select(Selection(event_ids=(delivery.event_id,)), summary), summary)
    assert summary.published == 1
    sqs = fed_stack.stack.client("sqs")
    received = receive_raw(sqs, queue_url, expected=2)
    assert len(received) == 2
    consumer = load_consumer(monkeypatch)
    capsys.readouterr()

    # when
    response = consumer.lambda_handler(sqs_lambda_event(received, queue_arn, fed_stack.stack.region), LocalContext())

    # then: the first copy of the batch applied, the other a duplicate of it (the README's rule); both deleted, and
    # the consumer knows which one is the replay
    assert response == {"batchItemFailures": []}
    logs = log_lines(capsys.readouterr().out)
    handled = [line for line in logs if "decision" in line]
    assert sorted(line["decision"] for line in handled) == ["applied", "duplicate"]
    assert sorted(line["replay"] for line in handled) == [False, True]
    assert {line["event_id"] for line in handled} == {delivery.event_id}


@pytest.mark.integration
def test_subscriber_provisioned_locally_has_the_templates_dead_letter_queue_on_every_subscription(
    fed_stack: FedStack,
) -> None:
    subscriber = provision_subscriber(fed_stack.stack, SUBSCRIBER_TEMPLATE, name=f"subscriber-{uuid.uuid4().hex[:8]}")
    sns, sqs = fed_stack.stack.client("sns"), fed_stack.stack.client("sqs")
    dead_letter_arn = sqs.get_queue_attributes(
        QueueUrl=subscriber.subscription_dead_letter_queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    redrives = {}
    for topic_arn in fed_stack.stack.topic_arns.values():
        for subscription in sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]:
            if subscription["Endpoint"] == subscriber.queue_arn:
                attributes = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])
                redrives[topic_arn] = json.loads(attributes["Attributes"]["RedrivePolicy"])
    assert set(redrives) == set(fed_stack.stack.topic_arns.values())
    assert all(r == {"deadLetterTargetArn": dead_letter_arn} for r in redrives.values())
    assert dead_letter_arn != subscriber.queue_arn
