"""The endpoint's signing secret: from ``STACK_WEBHOOK_SECRET`` or a hidden prompt, checked, put into the stack.

The value is never printed, never passed on a command line and never logged: it goes from the prompt (or the
environment) into one ``PutSecretValue`` call. Error messages name the problem, never the value.
"""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from stack_webhook_fanout.webhook_secret import SECRET_PREFIX, parse_secret_string

from .errors import DeployStepError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

SECRET_ENV: Final = "STACK_WEBHOOK_SECRET"  # noqa: S105 (the variable's name, not a secret)
PROMPT_ATTEMPTS: Final = 3
WHERE_TO_FIND: Final = (
    "in Stack's dashboard: Webhooks, your endpoint, its signing secret (it starts with whsec_); during a rotation "
    "give the old and the new value separated by a space"
)


class InvalidSigningSecretError(ValueError):
    """The value is not one or two ``whsec_`` + base64 secrets (the message never contains it)."""


def check_signing_secret(value: str) -> str:
    """Return ``value`` stripped if every whitespace-separated entry is ``whsec_`` + base64, the form the function
    accepts (:func:`stack_webhook_fanout.webhook_secret.parse_secret_string`); raise otherwise."""
    entries = value.split()
    if not entries:
        raise InvalidSigningSecretError("the secret is empty")
    usable, ignored = parse_secret_string(value)
    if ignored:
        prefix = sum(1 for entry in entries if not entry.startswith(SECRET_PREFIX))
        reason = f"does not start with {SECRET_PREFIX}" if prefix else f"is not {SECRET_PREFIX} followed by base64"
        which = "it" if len(entries) == 1 else f"{ignored} of its {len(entries)} entries"
        raise InvalidSigningSecretError(f"that is not a signing secret: {which} {reason}")
    return " ".join(usable)


def holds_signing_secret(secretsmanager: Any, secret_arn: str) -> bool:
    """Whether the stack's secret already holds a usable signing secret (False for the placeholder)."""
    try:
        value = secretsmanager.get_secret_value(SecretId=secret_arn).get("SecretString") or ""
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return False
        raise _secret_error("read", secret_arn, exc) from exc
    except BotoCoreError as exc:
        raise _secret_error("read", secret_arn, exc) from exc
    usable, _ = parse_secret_string(value)
    return bool(usable)


def obtain_signing_secret(
    environ: Mapping[str, str],
    *,
    already_set: bool,
    prompt: Callable[[str], str] = getpass.getpass,
    say: Callable[[str], None] = print,
) -> str | None:
    """The secret to put: ``STACK_WEBHOOK_SECRET`` if set, else asked with a hidden prompt (up to three tries).
    None when the stack already holds one and the user keeps it (an empty answer)."""
    from_env = environ.get(SECRET_ENV)
    if from_env is not None:
        try:
            return check_signing_secret(from_env)
        except InvalidSigningSecretError as exc:
            raise DeployStepError(
                f"{SECRET_ENV}: {exc}", f"set it to the endpoint's signing secret, {WHERE_TO_FIND}"
            ) from None
    keep = " (Enter keeps the one the stack holds)" if already_set else ""
    for attempt in range(1, PROMPT_ATTEMPTS + 1):
        try:
            answer = prompt(f"Signing secret of the endpoint, hidden as you type{keep}: ")
        except (EOFError, KeyboardInterrupt) as exc:
            raise DeployStepError(
                "no signing secret was given",
                f"run make deploy again and paste it, or set {SECRET_ENV}; it is {WHERE_TO_FIND}",
            ) from exc
        if not answer.strip() and already_set:
            return None
        try:
            return check_signing_secret(answer)
        except InvalidSigningSecretError as exc:
            say(f"  {exc}. Copy it {WHERE_TO_FIND}. ({PROMPT_ATTEMPTS - attempt} tries left)")
    raise DeployStepError(
        "no valid signing secret after three tries", f"run make deploy again (or set {SECRET_ENV}); {WHERE_TO_FIND}"
    )


def put_signing_secret(secretsmanager: Any, secret_arn: str, value: str) -> None:
    """Put ``value`` into the stack's secret: the function reads it within its cache's lifetime."""
    try:
        secretsmanager.put_secret_value(SecretId=secret_arn, SecretString=value)
    except (ClientError, BotoCoreError) as exc:
        raise _secret_error("write", secret_arn, exc) from exc


def _secret_error(verb: str, secret_arn: str, exc: Exception) -> DeployStepError:
    code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else type(exc).__name__
    action = "GetSecretValue" if verb == "read" else "PutSecretValue"
    return DeployStepError(
        f"could not {verb} the webhook secret {secret_arn} ({code})",
        f"your credentials need secretsmanager:{action} on it and kms:Decrypt/GenerateDataKey on the stack's key "
        "(EncryptionKeyArn); then run make deploy again (an unchanged stack is not redeployed)",
    )
