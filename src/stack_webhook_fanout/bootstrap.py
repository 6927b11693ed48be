"""Build the ingest service from the environment: AWS clients and settings, made once per cold start.

Creating clients does no network I/O (credentials and the secret are resolved on the first request), so importing
the handler is cheap and safe anywhere. ``AWS_ENDPOINT_URL`` (honoured by botocore) points every client at an
emulator.

The clients come straight from botocore, which boto3's ``client()`` wraps: ``import boto3`` adds its resource layer
and s3transfer (with multiprocessing), about 13 ms of cold start that three low-level clients never use
(``make bench``). The clients are the same objects boto3 would return.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

# botocore first, before the rest of the package: measured in the cold start (make bench), importing it after the
# package's own imports made the function's init about 40 ms slower, for the same modules and clients.
from botocore.session import Session, get_session

from .aws_calls import DeadlineBoundClient
from .config import Settings
from .event_store import EventStore
from .ingest import IngestService
from .publisher import SnsPublisher
from .topics import TopicRouter
from .webhook_secret import WebhookSecretSource

if TYPE_CHECKING:
    from collections.abc import Mapping


def client_config() -> Any:
    """Timeouts and retries of a call with time to spare; ``aws_calls`` bounds both by the invocation's deadline.

    ``parameter_validation=False``: botocore otherwise walks every call's parameters against the service model
    before sending, about a quarter of a warm invocation's CPU here (``make bench``: 4.23 -> 3.24 million
    instructions per event). The parameters are built by this package with fixed shapes (typed by the boto3 stubs);
    DynamoDB, SNS and Secrets Manager validate them on their side, and a rejection there is a ``ClientError`` that
    maps to the same 503 as a client-side ``ParamValidationError`` (a ``BotoCoreError``) did.
    """
    from botocore.config import Config

    return Config(
        connect_timeout=1,
        read_timeout=2,
        retries={"max_attempts": 2, "mode": "standard"},
        parameter_validation=False,
    )


@functools.cache
def aws_session() -> Session:
    """The botocore session every client of the function comes from, one per process (as boto3's default session).

    botocore copies a session's event hooks into each client it creates: a hook registered here before
    ``build_service`` runs sees every call the function makes (the tests and the benchmark count and answer calls so).
    """
    return get_session()


def build_service(settings: Settings | None = None, *, clients: Mapping[str, Any] | None = None) -> IngestService:
    """Wire the service. ``clients`` may hold ``dynamodb``, ``sns`` and ``secretsmanager`` clients to use."""
    settings = settings or Settings.from_env()
    clients = dict(clients or {})
    if len(clients) < 3:
        session, config = aws_session(), client_config()
        for name in ("dynamodb", "sns", "secretsmanager"):
            if name not in clients:
                clients[name] = DeadlineBoundClient(session, name, config)
    return IngestService(
        secrets=WebhookSecretSource(
            clients["secretsmanager"],
            settings.secret_arn,
            max_age_seconds=settings.secret_max_age_seconds,
            refresh_interval_seconds=settings.secret_refresh_interval_seconds,
        ),
        store=EventStore(
            clients["dynamodb"],
            settings.table_name,
            retention_days=settings.retention_days,
            lease_seconds=settings.claim_lease_seconds,
        ),
        publisher=SnsPublisher(clients["sns"]),
        router=TopicRouter(settings.topic_arns, settings.fallback_topic_arn),
    )
