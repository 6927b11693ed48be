"""What moto's CloudFormation needs so that the unchanged ``sam deploy`` can create this stack on the emulator.

Loaded into the moto server process by :mod:`.moto_launcher` (``--sam-deploy``), against moto 5.2.5 exactly (the
project pins it), through moto's own extension points: :class:`CloudFormationModel` subclasses that create each
resource through the service's moto backend, and wrappers around a few model methods. What it adds:

- resource types moto lacks: ``AWS::ApiGatewayV2::Api`` (its OpenAPI ``Body`` imported) and ``Stage``,
  ``AWS::CloudWatch::Alarm``, ``AWS::Logs::MetricFilter``, ``AWS::SNS::Subscription``,
  ``AWS::SecretsManager::Secret``. Not ``AWS::S3::BucketPolicy``: the SAM CLI's managed artifact bucket has one that
  denies requests without TLS, which would refuse every upload to the emulator's plain HTTP (moto skips the type);
- the SAM transform, applied to a change set's template when the change set is created (as CloudFormation does),
  by aws-sam-translator in the SAM CLI's interpreter (:mod:`.sam_translate`);
- the function properties moto drops (``Layers``, ``Architectures``, ``TracingConfig``, ``EphemeralStorage``), a
  layer's own ``LayerName`` and ``CompatibleArchitectures``, and a layer version's ``Ref`` (its ARN);
- the stack's outputs and exports after ``ExecuteChangeSet`` (moto computes them only when a stack is created
  directly);
- an update that changes only a resource's ``DeletionPolicy``, ``UpdateReplacePolicy`` or ``Metadata`` leaves
  the resource alone and out of the change set, as CloudFormation does (moto's diff compares the whole resource
  and "modifies" it, which for a topic means deleting it and creating one under a new ARN); and parameters that
  keep their value (``sam deploy`` passes ``UsePreviousValue``) modify nothing (moto compares them with the
  create's explicit parameters, none, and re-creates every resource that refers to one);
- code locations that can be downloaded: ``GetFunction`` and ``GetLayerVersion`` answer, as AWS does, with a
  presigned URL of the deployed artifact, here on the emulator's own S3.

Nothing here provisions a resource by itself: every resource comes from the template CloudFormation is given.
"""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Self

from moto.apigatewayv2.models import apigatewayv2_backends
from moto.awslambda.models import LambdaFunction, LayerVersion, lambda_backends
from moto.cloudformation.exceptions import UnformattedGetAttTemplateException, ValidationError
from moto.cloudformation.models import CloudFormationBackend, Stack
from moto.cloudformation.parsing import OutputMap
from moto.cloudwatch.models import Dimension, Metric, MetricDataQuery, MetricStat, cloudwatch_backends
from moto.core.common_models import CloudFormationModel
from moto.logs.models import logs_backends
from moto.secretsmanager.models import secretsmanager_backends
from moto.sns.models import sns_backends

if TYPE_CHECKING:
    from collections.abc import Callable

SAM_TRANSFORM: Final = "AWS::Serverless-2016-10-31"
#: Function properties moto's own model passes on (the rest are the ones it drops and :func:`_create_function` adds).
_FUNCTION_PROPERTIES: Final = (
    "Description",
    "MemorySize",
    "Publish",
    "Timeout",
    "VpcConfig",
    "Environment",
    "ReservedConcurrentExecutions",
    "Layers",
    "Architectures",
    "TracingConfig",
    "EphemeralStorage",
    "KmsKeyArn",
    "Tags",
)


class HttpApi(CloudFormationModel):
    """``AWS::ApiGatewayV2::Api``: an API created through moto's API Gateway v2 backend; ``Body`` (the OpenAPI
    definition SAM generates) is imported as ``ImportApi`` would."""

    def __init__(self, api_id: str, api_endpoint: str) -> None:
        self.api_id = api_id
        self.api_endpoint = api_endpoint

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ApiGatewayV2::Api"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> Self:
        properties = cloudformation_json.get("Properties", {})
        body = properties.get("Body")
        name = properties.get("Name") or (body or {}).get("info", {}).get("title") or resource_name
        backend = apigatewayv2_backends[account_id][region_name]
        api = backend.create_api(
            api_key_selection_expression=properties.get("ApiKeySelectionExpression"),
            cors_configuration=properties.get("CorsConfiguration"),
            description=properties.get("Description") or (body or {}).get("info", {}).get("description"),
            disable_schema_validation=properties.get("DisableSchemaValidation"),
            disable_execute_api_endpoint=properties.get("DisableExecuteApiEndpoint"),
            name=name,
            protocol_type=properties.get("ProtocolType", "HTTP"),
            route_selection_expression=properties.get("RouteSelectionExpression"),
            tags=properties.get("Tags") or {},
            version=properties.get("Version"),
        )
        if body is not None:
            api.import_api(json.dumps(body), fail_on_warnings=bool(properties.get("FailOnWarnings")))
        return cls(api.api_id, api.api_endpoint)

    @property
    def physical_resource_id(self) -> str:
        return self.api_id

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("ApiEndpoint", "ApiId")

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name == "ApiEndpoint":
            return self.api_endpoint
        if attribute_name == "ApiId":
            return self.api_id
        raise UnformattedGetAttTemplateException()


class HttpApiStage(CloudFormationModel):
    """``AWS::ApiGatewayV2::Stage``, created through moto's API Gateway v2 backend."""

    def __init__(self, stage_name: str) -> None:
        self.stage_name = stage_name

    @staticmethod
    def cloudformation_name_type() -> str:
        return "StageName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ApiGatewayV2::Stage"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> Self:
        properties = cloudformation_json.get("Properties", {})
        # The backend takes the API's request shape: camelCase keys, nested ones too.
        config = _camel_keys({k: v for k, v in properties.items() if k != "ApiId"})
        config["stageName"] = properties.get("StageName") or resource_name
        stage = apigatewayv2_backends[account_id][region_name].create_stage(properties["ApiId"], config)
        return cls(stage.name)

    @property
    def physical_resource_id(self) -> str:
        return self.stage_name


class MetricAlarm(CloudFormationModel):
    """``AWS::CloudWatch::Alarm``, put through moto's CloudWatch backend (single metric or metric math)."""

    def __init__(self, name: str, arn: str) -> None:
        self.name = name
        self.arn = arn

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> Self:
        properties = cloudformation_json.get("Properties", {})
        queries = [_metric_data_query(query) for query in properties.get("Metrics", [])] or None
        alarm = cloudwatch_backends[account_id][region_name].put_metric_alarm(
            name=properties.get("AlarmName") or resource_name,
            namespace=properties.get("Namespace"),
            metric_name=properties.get("MetricName"),
            comparison_operator=properties["ComparisonOperator"],
            evaluation_periods=int(properties["EvaluationPeriods"]),
            period=properties.get("Period"),
            threshold=float(properties["Threshold"]) if "Threshold" in properties else None,  # type: ignore[arg-type]
            statistic=properties.get("Statistic"),
            description=properties.get("AlarmDescription"),
            dimensions=[{"name": d["Name"], "value": d["Value"]} for d in properties.get("Dimensions", [])],
            alarm_actions=properties.get("AlarmActions", []),
            metric_data_queries=queries,
            datapoints_to_alarm=properties.get("DatapointsToAlarm"),
            extended_statistic=properties.get("ExtendedStatistic"),
            ok_actions=properties.get("OKActions", []),
            insufficient_data_actions=properties.get("InsufficientDataActions", []),
            unit=properties.get("Unit"),
            actions_enabled=properties.get("ActionsEnabled", True) not in (False, "false"),
            treat_missing_data=properties.get("TreatMissingData"),
            threshold_metric_id=properties.get("ThresholdMetricId"),
        )
        return cls(alarm.name, alarm.alarm_arn)

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name == "Arn":
            return self.arn
        raise UnformattedGetAttTemplateException()


def _metric_data_query(query: dict[str, Any]) -> MetricDataQuery:
    stat = query.get("MetricStat")
    metric_stat = None
    if stat:
        metric = stat["Metric"]
        metric_stat = MetricStat(
            metric=Metric(
                metric_name=metric["MetricName"],
                namespace=metric["Namespace"],
                dimensions=[Dimension(d["Name"], d["Value"]) for d in metric.get("Dimensions", [])],
            ),
            period=stat["Period"],
            stat=stat["Stat"],
            unit=stat.get("Unit"),
        )
    return MetricDataQuery(
        query_id=query["Id"],
        label=query.get("Label"),  # type: ignore[arg-type]
        period=query.get("Period"),  # type: ignore[arg-type]
        return_data=query.get("ReturnData"),  # type: ignore[arg-type]
        expression=query.get("Expression"),
        metric_stat=metric_stat,
    )


class LogMetricFilter(CloudFormationModel):
    """``AWS::Logs::MetricFilter``, put through moto's CloudWatch Logs backend."""

    def __init__(self, name: str) -> None:
        self.name = name

    @staticmethod
    def cloudformation_name_type() -> str:
        return "FilterName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Logs::MetricFilter"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> Self:
        properties = cloudformation_json.get("Properties", {})
        name = properties.get("FilterName") or resource_name
        logs_backends[account_id][region_name].put_metric_filter(
            filter_name=name,
            filter_pattern=properties["FilterPattern"],
            log_group_name=properties["LogGroupName"],
            # The backend stores the API's shape: camelCase keys.
            metric_transformations=_camel_keys(properties["MetricTransformations"]),
        )
        return cls(name)

    @property
    def physical_resource_id(self) -> str:
        return self.name


class TopicSubscription(CloudFormationModel):
    """``AWS::SNS::Subscription``, through moto's SNS backend, with its delivery attributes."""

    _ATTRIBUTES: Final = ("DeliveryPolicy", "FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy")

    def __init__(self, arn: str) -> None:
        self.arn = arn

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SNS::Subscription"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> Self:
        properties = cloudformation_json.get("Properties", {})
        backend = sns_backends[account_id][region_name]
        subscription = backend.subscribe(properties["TopicArn"], properties["Endpoint"], properties["Protocol"])
        for name in cls._ATTRIBUTES:
            if name in properties:
                value = properties[name]
                text = json.dumps(value) if isinstance(value, dict) else str(value).lower()
                backend.set_subscription_attributes(subscription.arn, name, text)
        return cls(subscription.arn)

    @property
    def physical_resource_id(self) -> str:
        return self.arn


class Secret(CloudFormationModel):
    """``AWS::SecretsManager::Secret`` with a ``SecretString``, through moto's Secrets Manager backend."""

    def __init__(self, arn: str) -> None:
        self.arn = arn

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::Secret"

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> Self:
        properties = cloudformation_json.get("Properties", {})
        if "GenerateSecretString" in properties:
            raise ValidationError(message="the emulator's AWS::SecretsManager::Secret takes SecretString only")
        created = secretsmanager_backends[account_id][region_name].create_secret(
            name=properties.get("Name") or resource_name,
            secret_string=properties.get("SecretString"),
            secret_binary=None,
            description=properties.get("Description"),
            tags=properties.get("Tags"),
            kms_key_id=properties.get("KmsKeyId"),
            client_request_token=None,
            replica_regions=[],
            force_overwrite=False,
        )
        return cls(json.loads(created)["ARN"])

    @property
    def physical_resource_id(self) -> str:
        return self.arn


def _camel_keys(value: Any) -> Any:
    """``{"AccessLogSettings": {"DestinationArn": ...}}`` -> ``{"accessLogSettings": {"destinationArn": ...}}``."""
    if isinstance(value, dict):
        return {(k[:1].lower() + k[1:]): _camel_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel_keys(v) for v in value]
    return value


def _create_function(
    cls: type[LambdaFunction],
    resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> LambdaFunction:
    """``AWS::Lambda::Function`` from S3 code with every property the function's configuration shows."""
    properties = cloudformation_json["Properties"]
    spec: dict[str, Any] = {
        "Code": properties["Code"],
        "FunctionName": properties.get("FunctionName") or resource_name,
        "Handler": properties.get("Handler"),
        "Role": properties["Role"],
        "Runtime": properties.get("Runtime"),
    }
    spec.update({name: properties[name] for name in _FUNCTION_PROPERTIES if name in properties})
    if "KmsKeyArn" in spec:
        spec["KMSKeyArn"] = spec.pop("KmsKeyArn")
    if isinstance(spec.get("Tags"), list):
        spec["Tags"] = {tag["Key"]: tag["Value"] for tag in spec["Tags"]}
    return lambda_backends[account_id][region_name].create_function(spec)


def _publish_layer_version(
    cls: type[LayerVersion],
    resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> LayerVersion:
    """``AWS::Lambda::LayerVersion`` under its own ``LayerName``, with its compatible architectures."""
    properties = cloudformation_json["Properties"]
    spec = {"Content": properties["Content"], "LayerName": properties.get("LayerName") or resource_name}
    for name in ("Description", "CompatibleRuntimes", "CompatibleArchitectures", "LicenseInfo"):
        if name in properties:
            spec[name] = properties[name]
    return lambda_backends[account_id][region_name].publish_layer_version(spec)


def _presigned_url(s3_endpoint: str, location: dict[str, Any]) -> str | None:
    """A presigned GetObject URL of the artifact on the emulator's S3, as AWS answers with (signed locally with the
    emulator's dummy credentials; no request is made)."""
    bucket, key = location.get("S3Bucket"), location.get("S3Key")
    if not bucket or not key:
        return None
    url: str = _s3_client(s3_endpoint).generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=600
    )
    return url


@functools.cache
def _s3_client(s3_endpoint: str) -> Any:
    from .emulator import emulator_session

    return emulator_session().client("s3", endpoint_url=s3_endpoint)


def _downloadable_function_code(s3_endpoint: str, get_code: Callable[[LambdaFunction], dict[str, Any]]) -> Any:
    @functools.wraps(get_code)
    def wrapper(self: LambdaFunction) -> dict[str, Any]:
        answer = get_code(self)
        url = _presigned_url(s3_endpoint, self.code)
        if url and "Code" in answer:
            answer["Code"]["Location"] = url
        return answer

    return wrapper


def _downloadable_layer_content(s3_endpoint: str, get_version: Callable[[LayerVersion], dict[str, Any]]) -> Any:
    @functools.wraps(get_version)
    def wrapper(self: LayerVersion) -> dict[str, Any]:
        answer = get_version(self)
        url = _presigned_url(s3_endpoint, self.content)
        if url:
            answer["Content"]["Location"] = url
        return answer

    return wrapper


def sam_transform(
    template: dict[str, Any], parameters: dict[str, Any], *, region: str, sam_python: Path
) -> dict[str, Any]:
    """``template`` after the SAM transform, by aws-sam-translator in ``sam_python``; raise ValidationError (a 400
    answer to CreateChangeSet, as CloudFormation gives) if it fails."""
    script = Path(__file__).with_name("sam_translate.py")
    result = subprocess.run(
        [str(sam_python), str(script)],
        input=json.dumps({"template": template, "parameters": parameters, "region": region}, default=str),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise ValidationError(message=f"Transform {SAM_TRANSFORM} failed: {result.stderr.strip()[-1500:]}")
    transformed: dict[str, Any] = json.loads(result.stdout)
    return transformed


def _transforming_create(sam_python: Path, create: Callable[..., tuple[str, str]]) -> Any:
    @functools.wraps(create)
    def wrapper(
        self: CloudFormationBackend,
        stack_name: str,
        change_set_name: str,
        template: str,
        parameters: dict[str, str],
        *args: Any,
        **kwargs: Any,
    ) -> tuple[str, str]:
        template_dict = Stack.parse_template(template)
        if isinstance(template_dict, dict) and template_dict.get("Transform") == SAM_TRANSFORM:
            pseudo = {
                "AWS::Region": self.region_name,
                "AWS::AccountId": self.account_id,
                "AWS::Partition": "aws",
                "AWS::StackName": stack_name,
            }
            transformed = sam_transform(
                template_dict, {**parameters, **pseudo}, region=self.region_name, sam_python=sam_python
            )
            template = json.dumps(transformed)
        return create(self, stack_name, change_set_name, template, parameters, *args, **kwargs)

    return wrapper


#: Resource attributes that CloudFormation records without updating the resource.
ATTRIBUTE_ONLY_KEYS: Final = frozenset({"DeletionPolicy", "UpdateReplacePolicy", "Metadata"})


def attribute_only_changes(old_template: dict[str, Any], new_template: dict[str, Any]) -> set[str]:
    """Logical ids whose resource differs between the templates in ``ATTRIBUTE_ONLY_KEYS`` alone."""
    old, new = old_template.get("Resources", {}), new_template.get("Resources", {})

    def updatable(resource: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in resource.items() if key not in ATTRIBUTE_ONLY_KEYS}

    return {lid for lid in new if lid in old and new[lid] != old[lid] and updatable(new[lid]) == updatable(old[lid])}


def _update_of(self: CloudFormationBackend, change_set_name: str) -> tuple[Any, set[str]]:
    """The change set, and the resources its update changes only in attributes (none for a create)."""
    change_set = self.describe_change_set(change_set_name)
    if change_set is None or change_set.change_set_type != "UPDATE":
        return change_set, set()
    return change_set, attribute_only_changes(change_set.stack.template_dict, change_set.template_dict)


def _create_without_attribute_only_changes(create: Callable[..., tuple[str, str]]) -> Any:
    @functools.wraps(create)
    def wrapper(self: CloudFormationBackend, *args: Any, **kwargs: Any) -> tuple[str, str]:
        change_set_id, stack_id = create(self, *args, **kwargs)
        change_set, unchanged = _update_of(self, change_set_id)
        if unchanged:
            change_set.changes = [
                c for c in change_set.changes if not (c.action == "Modify" and c.logical_resource_id in unchanged)
            ]
        return change_set_id, stack_id

    return wrapper


def _execute_with_outputs(execute: Callable[..., None]) -> Any:
    @functools.wraps(execute)
    def wrapper(self: CloudFormationBackend, change_set_name: str, stack_name: str | None = None) -> None:
        change_set, unchanged = _update_of(self, change_set_name)
        # moto's update compares these very dicts: show it the old resource, then put the new attributes back in
        # place (the stack's resource map holds the same dicts, so its DeletionPolicy is the new one afterwards)
        if change_set is not None and change_set.change_set_type == "UPDATE":
            before = change_set.stack.stack_parameters
            change_set.parameters = {k: v for k, v in change_set.parameters.items() if before.get(k) != v}
        new_resources = change_set.template_dict["Resources"] if unchanged else {}
        saved = {lid: dict(new_resources[lid]) for lid in unchanged}
        for lid in unchanged:
            new_resources[lid].clear()
            new_resources[lid].update(change_set.stack.template_dict["Resources"][lid])
        try:
            execute(self, change_set_name, stack_name)
        finally:
            for lid, resource in saved.items():
                new_resources[lid].clear()
                new_resources[lid].update(resource)
        if change_set is None:
            return
        stack = change_set.stack
        stack.template_dict = change_set.template_dict
        stack.output_map = OutputMap(stack.resource_map, stack.template_dict, stack.stack_id)
        for export in stack.exports:
            self.exports[export.name] = export

    return wrapper


def install(*, s3_endpoint: str, sam_python: Path) -> None:
    """Install the extensions into moto (once, before the server handles a request).

    ``s3_endpoint`` is the URL clients reach the emulator at (code locations point there); ``sam_python`` an
    interpreter that has aws-sam-translator.
    """
    # The new CloudFormationModel subclasses above registered themselves by being defined (moto lists subclasses).
    LambdaFunction.create_from_cloudformation_json = classmethod(_create_function)  # type: ignore[assignment,method-assign,arg-type]
    # CloudFormation's Ref of a layer version is its ARN; moto's model has no physical id, so Ref gave the object.
    LayerVersion.physical_resource_id = property(lambda self: self.arn)  # type: ignore[attr-defined]
    LayerVersion.create_from_cloudformation_json = classmethod(_publish_layer_version)  # type: ignore[assignment,method-assign,arg-type]
    LambdaFunction.get_code = _downloadable_function_code(s3_endpoint, LambdaFunction.get_code)  # type: ignore[method-assign]
    LayerVersion.get_layer_version = _downloadable_layer_content(s3_endpoint, LayerVersion.get_layer_version)  # type: ignore[method-assign]
    CloudFormationBackend.create_change_set = _create_without_attribute_only_changes(  # type: ignore[method-assign]
        _transforming_create(sam_python, CloudFormationBackend.create_change_set)
    )
    CloudFormationBackend.execute_change_set = _execute_with_outputs(CloudFormationBackend.execute_change_set)  # type: ignore[method-assign]
