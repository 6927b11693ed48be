"""The alarms and the dashboard in template.yaml: they watch the metrics the function really emits.

Static checks read the template (custom metrics in the function's namespace with its service dimension, every alarm
sending to the optional targets, the dashboard body valid JSON naming only resources that exist). The integration
check runs the real handler through each outcome on the emulator, captures the EMF metrics it prints, and requires
every custom metric an alarm or the dashboard uses to be among them, with the same dimensions.
"""

from __future__ import annotations

import io
import json
import re
from typing import TYPE_CHECKING, Any

import botocore.session
import pytest
from botocore.exceptions import ClientError
from stack_webhook_fanout_tools.devkit import cfn_template
from stack_webhook_fanout_tools.devkit.local_gateway import LocalContext
from stack_webhook_fanout_tools.devkit.moto_server import free_port
from stack_webhook_fanout_tools.devkit.samples import sample_api_event
from stack_webhook_fanout_tools.devkit.signing import new_secret

from stack_webhook_fanout import bootstrap, observability
from stack_webhook_fanout.event_store import EventStore
from stack_webhook_fanout.event_types import FALLBACK_TOPIC_LOGICAL_ID, TOPIC_LOGICAL_IDS
from stack_webhook_fanout.signature import _REASONS

from .support import TEMPLATE_PATH

if TYPE_CHECKING:
    from .support import FedStack

ALARM_TYPE = "AWS::CloudWatch::Alarm"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9:]+)(?:\.([A-Za-z]+))?\}")
#: Every reason SignatureVerifier.verify can give: standardwebhooks' messages, plus its own fallbacks.
SIGNATURE_REASONS = {*_REASONS.values(), "invalid_signature", "malformed_signature", "body_not_utf8"}
EMAIL_TARGET = {"Fn::If": ["HasAlarmEmail", {"Ref": "AlarmNotificationTopic"}, {"Ref": "AWS::NoValue"}]}
TOPIC_TARGET = {"Fn::If": ["HasAlarmTopicArn", {"Ref": "AlarmTopicArn"}, {"Ref": "AWS::NoValue"}]}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return cfn_template.load_template(TEMPLATE_PATH)


def alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in template["Resources"].items() if v["Type"] == ALARM_TYPE}


def metric_stats(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    return [m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m]


def dimensions(metric: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}


def function_env(template: dict[str, Any]) -> dict[str, Any]:
    return cfn_template.function_environment(template, "IngestFunction")


def dashboard(template: dict[str, Any]) -> dict[str, Any]:
    """The dashboard body with every ``${X}`` / ``${X.Attr}`` replaced by ``<X>`` / ``<X.Attr>``."""
    dashboards = [r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    assert len(dashboards) == 1
    body = dashboards[0]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(body, str)
    for name, _attribute in PLACEHOLDER.findall(body):
        assert name.startswith("AWS::") or name in template["Resources"], f"dashboard names unknown {name}"
    document = json.loads(PLACEHOLDER.sub(lambda m: f"<{m.group(0)[2:-1]}>", body))
    assert isinstance(document, dict)
    return document


def dashboard_metrics(template: dict[str, Any]) -> list[list[Any]]:
    return [row for w in dashboard(template)["widgets"] for row in w["properties"].get("metrics", [])]


# --- alarms -------------------------------------------------------------------------------------------------------
def namespace_text(namespace: Any) -> str:
    """A metric namespace as text: plain, or the ``!Sub`` string of a stack-specific one."""
    return namespace if isinstance(namespace, str) else namespace["Fn::Sub"]


def test_alarms_cover_errors_5xx_signatures_dependencies_and_throttles(template: dict[str, Any]) -> None:
    namespace = function_env(template)["POWERTOOLS_METRICS_NAMESPACE"]
    watched = {
        (namespace_text(m["Namespace"]), m["MetricName"]) for a in alarms(template).values() for m in metric_stats(a)
    }

    assert {
        ("AWS/Lambda", "Errors"),  # function errors
        (namespace, "InternalError"),  # 500s for unexpected exceptions
        ("AWS/ApiGateway", "5xx"),  # 5xx rate
        (namespace, "RejectedByReason"),  # signature failures
        (namespace, "DependencyFailure"),  # publish / DynamoDB failures
        (namespace, "PublishedNotRecorded"),  # published, but the record could not be marked
        ("AWS/Lambda", "Throttles"),  # function throttles
        ("AWS/DynamoDB", "WriteThrottleEvents"),  # table throttles
        ("AWS/DynamoDB", "ReadThrottleEvents"),
        ("StackWebhookFanout/${AWS::StackName}", "ApiThrottledRequests"),  # API throttling (429)
    } <= watched


def test_alarm_custom_metrics_use_the_functions_namespace_and_service(template: dict[str, Any]) -> None:
    env = function_env(template)
    custom = [
        m
        for a in alarms(template).values()
        for m in metric_stats(a)
        if m["Namespace"] == env["POWERTOOLS_METRICS_NAMESPACE"]
    ]

    assert len(custom) >= 10
    for metric in custom:
        assert dimensions(metric)["service"] == env["POWERTOOLS_SERVICE_NAME"], metric


def test_custom_metrics_are_per_stack(template: dict[str, Any]) -> None:
    # the service dimension is the stack's name: two stacks in one account and region never add up in each other's
    # metrics, alarms or dashboard
    assert function_env(template)["POWERTOOLS_SERVICE_NAME"] == {"Ref": "AWS::StackName"}
    namespace = function_env(template)["POWERTOOLS_METRICS_NAMESPACE"]
    rows = dashboard_metrics(template)
    custom_rows = [row for row in rows if row[0] == namespace]
    assert len(custom_rows) >= 8
    for row in custom_rows:
        assert row[row.index("service") + 1] == "<AWS::StackName>", row
    searches = [row[0]["expression"] for row in rows if isinstance(row[0], dict) and namespace in row[0]["expression"]]
    assert searches
    for expression in searches:
        assert 'service="<AWS::StackName>"' in expression, expression


def expected_targets(template: dict[str, Any]) -> list[dict[str, Any]]:
    """The optional topic, and the e-mail topic too once the template has an AlarmEmail parameter."""
    return [EMAIL_TARGET, TOPIC_TARGET] if "AlarmEmail" in template["Parameters"] else [TOPIC_TARGET]


def test_every_alarm_notifies_the_optional_targets_and_computes_one_series(template: dict[str, Any]) -> None:
    for name, alarm in alarms(template).items():
        assert alarm["AlarmActions"] == expected_targets(template), name
        assert alarm["OKActions"] == expected_targets(template), name
        assert alarm["TreatMissingData"] == "notBreaching", name
        assert alarm["AlarmName"]["Fn::Sub"].startswith("${AWS::StackName}-"), name
        assert alarm["AlarmDescription"], name
        # exactly one returned series, an expression over the alarm's own metric ids
        returned = [m for m in alarm["Metrics"] if m.get("ReturnData")]
        assert len(returned) == 1, name
        ids = {m["Id"] for m in alarm["Metrics"] if "MetricStat" in m}
        used = set(re.findall(r"\b[a-z][A-Za-z0-9_]*\b", returned[0]["Expression"])) - {"FILL", "IF", "AND"}
        assert used == ids, name
        assert len(alarm["Metrics"]) <= 10, f"{name}: CloudWatch allows 10 metrics in an alarm"


def test_notification_targets_are_optional_parameters(template: dict[str, Any]) -> None:
    parameters, conditions, resources = template["Parameters"], template["Conditions"], template["Resources"]
    assert parameters["AlarmTopicArn"]["Default"] == ""
    assert conditions["HasAlarmTopicArn"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}
    if "AlarmEmail" not in parameters:
        assert "AlarmNotificationTopic" not in resources
        return
    assert parameters["AlarmEmail"]["Default"] == ""
    assert conditions["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    assert resources["AlarmNotificationTopic"]["Condition"] == "HasAlarmEmail"
    subscription = resources["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "AlarmNotificationTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("arn:aws:sns:eu-west-1:123456789012:pager", True),
        ("arn:aws-us-gov:sns:us-gov-west-1:123456789012:ops_alarms-1", True),
        ("arn:aws:sqs:eu-west-1:123456789012:pager", False),
        ("arn:aws:sns:eu-west-1:1234:pager", False),
        ("pager", False),
    ],
)
def test_alarm_topic_parameter_accepts_only_a_topic_arn(template: dict[str, Any], value: str, accepted: bool) -> None:
    pattern = template["Parameters"]["AlarmTopicArn"]["AllowedPattern"]
    assert (re.fullmatch(pattern, value) is not None) is accepted


def test_signature_alarm_counts_every_reason_a_signature_can_fail_for(template: dict[str, Any]) -> None:
    alarm = alarms(template)["SignatureFailureSpikeAlarm"]
    reasons = {dimensions(m)["reason"] for m in metric_stats(alarm)}
    assert {m["MetricName"] for m in metric_stats(alarm)} == {"RejectedByReason"}
    assert reasons == SIGNATURE_REASONS


def test_secret_mismatch_alarm_needs_mismatches_and_nothing_published(template: dict[str, Any]) -> None:
    alarm = alarms(template)["SecretMismatchAlarm"]
    by_id = {m["Id"]: m for m in alarm["Metrics"]}
    assert dimensions(by_id["mismatch"]["MetricStat"]["Metric"])["reason"] == "no_matching_signature"
    assert by_id["published"]["MetricStat"]["Metric"]["MetricName"] == "Published"
    assert "AND FILL(published, 0) == 0" in by_id["stuck"]["Expression"]


def test_delivery_lag_alarm_watches_the_p90_of_the_functions_delivery_lag(template: dict[str, Any]) -> None:
    env = function_env(template)
    alarm = alarms(template)["DeliveryLagAlarm"]
    assert alarm["AlarmName"] == {"Fn::Sub": "${AWS::StackName}-delivery-lag"}
    [stat] = [m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m]
    assert stat["Metric"]["Namespace"] == env["POWERTOOLS_METRICS_NAMESPACE"]
    assert (stat["Metric"]["MetricName"], dimensions(stat["Metric"])) == (
        "DeliveryLag",
        {"service": env["POWERTOOLS_SERVICE_NAME"]},
    )
    # late: a tenth of the deliveries more than a minute after Svix created them (its retries come after 5 s, then
    # 5 min), in 2 of 3 five-minute periods
    assert (stat["Stat"], stat["Period"]) == ("p90", 300)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (60_000, "GreaterThanThreshold")
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (3, 2)
    assert "docs/delivery-lag.md" in alarm["AlarmDescription"]


def test_delivery_lag_alarm_is_on_the_dashboard_with_its_metric(template: dict[str, Any]) -> None:
    namespace = function_env(template)["POWERTOOLS_METRICS_NAMESPACE"]
    [widget] = [
        w
        for w in dashboard(template)["widgets"]
        if any(
            r[:4] == [namespace, "DeliveryLag", "service", "<AWS::StackName>"]
            for r in w["properties"].get("metrics", [])
        )
    ]
    assert {row[-1]["stat"] for row in widget["properties"]["metrics"]} == {"p50", "p90", "Maximum"}
    assert (
        widget["properties"]["annotations"]["horizontal"][0]["value"]
        == alarms(template)["DeliveryLagAlarm"]["Threshold"]
    )


def test_api_throttling_filter_reads_the_access_logs_status_field(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    access_log = resources["WebhookHttpApi"]["Properties"]["AccessLogSettings"]
    metric_filter = resources["ApiThrottledRequestsMetricFilter"]["Properties"]
    assert metric_filter["LogGroupName"] == {"Ref": access_log["DestinationArn"]["Fn::GetAtt"][0]}
    # given: an access log line as API Gateway writes it for a throttled request
    line = json.loads(access_log["Format"].replace("$context.status", "429"))
    # then: the status is a JSON string, which is what the filter pattern compares with
    assert line["status"] == "429"
    assert metric_filter["FilterPattern"] == '{ $.status = "429" }'
    (transformation,) = metric_filter["MetricTransformations"]
    assert transformation["MetricName"] == "ApiThrottledRequests"
    assert transformation["MetricNamespace"] == {"Fn::Sub": "StackWebhookFanout/${AWS::StackName}"}


# --- dashboard ----------------------------------------------------------------------------------------------------
def test_dashboard_shows_events_by_type_for_every_topic(template: dict[str, Any]) -> None:
    published = [row for row in dashboard_metrics(template) if row[:2] == ["AWS/SNS", "NumberOfMessagesPublished"]]
    topics = {row[3] for row in published}
    assert topics == {f"<{lid}.TopicName>" for lid in (*TOPIC_LOGICAL_IDS.values(), FALLBACK_TOPIC_LOGICAL_ID)}


def test_dashboard_shows_duplicates_rejections_latency_and_cold_starts(template: dict[str, Any]) -> None:
    env = function_env(template)
    namespace, service = env["POWERTOOLS_METRICS_NAMESPACE"], "<AWS::StackName>"
    rows = dashboard_metrics(template)
    plain = [row for row in rows if isinstance(row[0], str)]
    expressions = [row[0]["expression"] for row in rows if isinstance(row[0], dict)]

    assert [namespace, "Duplicate", "service", service] in [row[:4] for row in plain]
    assert any("RejectedByReason" in e and "{" + namespace + ",reason,service}" in e for e in expressions)
    duration = {row[-1]["stat"] for row in plain if row[:2] == ["AWS/Lambda", "Duration"]}
    assert duration == {"p50", "p90", "p99"}
    assert any(row[:2] == ["AWS/ApiGateway", "Latency"] for row in plain)
    assert [namespace, "ColdStart", "function_name", "<IngestFunction>", "service", service] in [
        row[:6] for row in plain
    ]
    for row in plain:
        if row[0] == namespace:
            assert "service" in row, row
            assert row[row.index("service") + 1] == service, row


def test_dashboard_shows_publications_whose_record_was_not_marked(template: dict[str, Any]) -> None:
    env = function_env(template)
    namespace, service = env["POWERTOOLS_METRICS_NAMESPACE"], "<AWS::StackName>"
    widgets = [
        w
        for w in dashboard(template)["widgets"]
        if [namespace, "PublishedNotRecorded", "service", service]
        in [r[:4] for r in w["properties"].get("metrics", [])]
    ]
    assert len(widgets) == 1
    assert widgets[0]["type"] == "metric"


def test_dashboard_lists_every_alarm(template: dict[str, Any]) -> None:
    (widget,) = [w for w in dashboard(template)["widgets"] if w["type"] == "alarm"]
    assert sorted(widget["properties"]["alarms"]) == sorted(f"<{name}.Arn>" for name in alarms(template))


def test_dashboard_url_output_is_exported(template: dict[str, Any]) -> None:
    output = template["Outputs"]["DashboardUrl"]
    assert "${OperationsDashboard}" in output["Value"]["Fn::Sub"]
    assert output["Export"] == {"Name": {"Fn::Sub": "${AWS::StackName}-DashboardUrl"}}


# --- the metrics the function emits --------------------------------------------------------------------------------
def emitted(stdout: str) -> set[tuple[str, str, frozenset[str]]]:
    """(namespace, metric, dimension names) of every EMF document printed."""
    found = set()
    for line in stdout.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                for dimension_set in directive["Dimensions"]:
                    found.add((directive["Namespace"], metric["Name"], frozenset(dimension_set)))
    return found


@pytest.mark.integration
def test_custom_metrics_of_alarms_and_dashboard_are_emitted_by_the_function(
    template: dict[str, Any],
    fed_stack: FedStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = function_env(template)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", env["POWERTOOLS_METRICS_NAMESPACE"])
    stack = fed_stack.stack
    # a fresh execution environment: the function counts its cold start once per process
    monkeypatch.setattr(observability._invocation, "cold_start", True)
    # the outcome lines carry the metrics; the log handler kept the stdout it saw at import, so read it here
    log_lines = io.StringIO()
    monkeypatch.setattr(observability.logger.registered_handler, "stream", log_lines)
    capsys.readouterr()

    # given: every outcome the alarms and the dashboard count
    fed_stack.deliver("user.created")  # Received, Published, ColdStart, DeliveryLag (its id is a Svix KSUID)
    duplicate = fed_stack.deliver("team.created")
    fed_stack.deliver("team.created", event_id=duplicate.event_id)  # Duplicate
    fed_stack.deliver("session.created")  # PublishedToFallback
    EventStore(stack.client("dynamodb"), stack.table_name, lease_seconds=300).claim(
        "msg_busy", event_type="user.created", body="{}", body_sha256="0", event_timestamp="1"
    )
    fed_stack.deliver("user.created", event_id="msg_busy")  # InProgress
    handler = fed_stack.handler()
    unsigned = sample_api_event("user.created", new_secret())
    handler.lambda_handler(unsigned, LocalContext())  # Rejected, RejectedByReason
    broken_sns = fed_stack.handler(AWS_ENDPOINT_URL_SNS=f"http://127.0.0.1:{free_port()}")
    assert fed_stack.deliver("user.deleted", handler=broken_sns).status == 503  # DependencyFailure
    stack.client("secretsmanager").put_secret_value(SecretId=stack.secret_arn, SecretString="NOT-CONFIGURED")
    unset = fed_stack.handler(SECRET_MAX_AGE_SECONDS="1")
    assert fed_stack.deliver("user.deleted", handler=unset).status == 503  # SecretNotConfigured
    stack.client("secretsmanager").put_secret_value(SecretId=stack.secret_arn, SecretString=stack.secret_value)
    # SNS accepts, but the update that marks the record published fails: PublishedNotRecorded (still a 200)
    marking_fails = botocore.session.get_session()
    monkeypatch.setattr(bootstrap, "aws_session", lambda: marking_fails)

    def refuse_mark(params: dict[str, Any], **_: Any) -> None:
        if b":published" in params["body"]:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, "UpdateItem")

    marking_fails.register("before-call.dynamodb.UpdateItem", refuse_mark)
    unrecorded = fed_stack.handler(POWERTOOLS_METRICS_NAMESPACE=env["POWERTOOLS_METRICS_NAMESPACE"])
    assert fed_stack.deliver("team.deleted", handler=unrecorded).status == 200
    # an unexpected exception inside a real DynamoDB call (not a botocore error): InternalError
    session = botocore.session.get_session()  # a fresh one for the function, with the fault on it
    monkeypatch.setattr(bootstrap, "aws_session", lambda: session)

    def explode(**_: Any) -> None:
        raise RuntimeError("injected")

    session.register("before-call.dynamodb.UpdateItem", explode)
    crashing = fed_stack.handler(POWERTOOLS_METRICS_NAMESPACE=env["POWERTOOLS_METRICS_NAMESPACE"])
    assert fed_stack.deliver("user.deleted", handler=crashing).status == 500
    metrics = emitted(log_lines.getvalue() + capsys.readouterr().out)

    # then: every custom metric the template reads was emitted, with the dimensions the template uses
    namespace = env["POWERTOOLS_METRICS_NAMESPACE"]
    wanted = {
        (m["Namespace"], m["MetricName"], frozenset(dimensions(m)))
        for a in alarms(template).values()
        for m in metric_stats(a)
        if m["Namespace"] == namespace
    }
    for row in dashboard_metrics(template):
        if row[0] == namespace:
            names = row[2:-1] if isinstance(row[-1], dict) else row[2:]
            wanted.add((namespace, row[1], frozenset(names[0::2])))
    assert len(wanted) >= 10
    assert wanted <= metrics, sorted(wanted - metrics)
