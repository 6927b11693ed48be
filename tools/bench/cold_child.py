"""One cold start, timed from inside a fresh interpreter: ``cold_child.py <job.json>``.

The job (written by ``run.py``) names the variant, holds a freshly signed API Gateway event and the exact AWS calls
our handler made for an event of the same kind (recorded by ``count_child.py`` with a ``before-parameter-build``
hook; only the svix-id differs), and where to write the result.

Variants, each serving one event against the moto server:

``handler``
    ``functions/ingest/app.py`` loaded with importlib (the Lambda init phase), then ``lambda_handler(event)``.
``floor``
    ``import boto3``, the three clients with the same botocore config, the same four AWS calls with the same
    parameters (GetSecretValue, the conditional claim UpdateItem, Publish, the mark UpdateItem). Nothing else:
    no verification, no parsing beyond ``json.loads``. No design can do less.
``floor_tuned``
    The floor with the handler's two init techniques (``functions/ingest/app.py``, ``bootstrap.py``): clients from
    botocore without ``import boto3``, no garbage collection during init, then ``gc.freeze()``. The issue's floor
    does neither; this one shows what the handler costs over the best floor we know how to write (informational).
``naive``
    What one writes with the usual libraries: ``svix.webhooks.Webhook``, a Powertools ``APIGatewayHttpResolver``,
    ``parameters.get_secret``, the eagerly built pydantic union of every event type (``stack_webhook_fanout.events``),
    Powertools ``Logger`` (correlation id) and ``Metrics`` (cold start metric), and the same DynamoDB/SNS calls.

Only ``time``, ``sys``, ``json`` and ``job_json`` (with ``binascii``, to read the job's bytes) are imported before the
clock starts (every variant needs them anyway); the
interpreter's own start-up is the same for all three and is left out, which makes the ratios stricter, not kinder.
"""

import json
import sys
import time

import job_json


class _Context:
    """The attributes of a Lambda context object that Powertools reads."""

    function_name = "IngestFunction-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:IngestFunction-bench"
    aws_request_id = "00000000-0000-4000-8000-000000000000"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 10_000


def run_handler(job: dict) -> tuple[int, float]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("ingest_app", job["app_path"])
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    init_done = time.perf_counter()
    result = module.lambda_handler(job["event"], _Context())
    return int(result["statusCode"]), init_done


def run_floor(job: dict) -> tuple[int, float]:
    import boto3
    from botocore.config import Config

    config = Config(**job["client_config"])
    clients = {name: boto3.client(name, config=config) for name in ("dynamodb", "sns", "secretsmanager")}
    init_done = time.perf_counter()
    json.loads(job["event"]["body"])
    for service, operation, params in job["calls"]:
        getattr(clients[service], operation)(**params)
    return 200, init_done


def run_floor_tuned(job: dict) -> tuple[int, float]:
    import gc

    gc.disable()
    from botocore.config import Config
    from botocore.session import get_session

    config = Config(**job["client_config"])
    session = get_session()
    clients = {name: session.create_client(name, config=config) for name in ("dynamodb", "sns", "secretsmanager")}
    gc.freeze()
    gc.enable()
    init_done = time.perf_counter()
    json.loads(job["event"]["body"])
    for service, operation, params in job["calls"]:
        getattr(clients[service], operation)(**params)
    return 200, init_done


def run_naive(job: dict) -> tuple[int, float]:
    import boto3
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
    from aws_lambda_powertools.metrics import MetricUnit
    from aws_lambda_powertools.utilities import parameters
    from botocore.config import Config
    from svix.webhooks import Webhook

    from stack_webhook_fanout.events import STACK_EVENT_ADAPTER

    config = Config(**job["client_config"])
    logger = Logger()
    metrics = Metrics()
    app = APIGatewayHttpResolver()
    clients = {name: boto3.client(name, config=config) for name in ("dynamodb", "sns")}
    calls = [call for call in job["calls"] if call[0] != "secretsmanager"]
    secret_id = job["secret_id"]

    @app.post("/webhooks/stack")
    def receive() -> dict:
        request = app.current_event
        body = request.decoded_body
        secret = parameters.get_secret(secret_id, max_age=300)
        Webhook(secret).verify(body, dict(request.headers))
        event = STACK_EVENT_ADAPTER.validate_json(body)
        for service, operation, params in calls:
            getattr(clients[service], operation)(**params)
        metrics.add_metric(name="Published", unit=MetricUnit.Count, value=1)
        logger.info("published", extra={"event_type": event.type})
        return {"status": "published"}

    @metrics.log_metrics(capture_cold_start_metric=True)
    @logger.inject_lambda_context(correlation_id_path='headers."svix-id"')
    def lambda_handler(event: dict, context: object) -> dict:
        return app.resolve(event, context)

    init_done = time.perf_counter()
    result = lambda_handler(job["event"], _Context())
    return int(result["statusCode"]), init_done


def main() -> None:
    with open(sys.argv[1]) as handle:
        job = job_json.load(handle)
    variant = {
        "handler": run_handler,
        "floor": run_floor,
        "floor_tuned": run_floor_tuned,
        "naive": run_naive,
    }[job["variant"]]
    start, cpu_start = time.perf_counter(), time.process_time()
    status, init_done = variant(job)
    end, cpu_end = time.perf_counter(), time.process_time()
    result = {
        "variant": job["variant"],
        "status": status,
        "init_ms": (init_done - start) * 1000,
        "first_event_ms": (end - init_done) * 1000,
        "total_ms": (end - start) * 1000,
        "cpu_ms": (cpu_end - cpu_start) * 1000,
        "modules": len(sys.modules),
    }
    with open(job["result_path"], "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
