"""The steps of ``make deploy`` as plain functions: the secret's form and where it comes from, samconfig.toml, the
wait for Stack's test event (on in-process moto), and the advice each failure gives. The whole command against the
emulator, in a terminal: tests/deployed/test_make_deploy.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import pytest
from stack_webhook_fanout_tools.deploy.errors import DeployStepError
from stack_webhook_fanout_tools.deploy.samconfig import DEFAULT_STACK_NAME, read_target
from stack_webhook_fanout_tools.deploy.signing_secret import (
    SECRET_ENV,
    InvalidSigningSecretError,
    check_signing_secret,
    holds_signing_secret,
    obtain_signing_secret,
    put_signing_secret,
)
from stack_webhook_fanout_tools.deploy.stack import account_id, require_updatable, stack_status
from stack_webhook_fanout_tools.deploy.stack_test_wait import (
    newest_test_delivery,
    timeout_advice,
    wait_for_test_delivery,
)
from stack_webhook_fanout_tools.devkit.signing import new_secret

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from .conftest import FakeClock

REGION = "us-east-1"


# --- the signing secret ------------------------------------------------------------------------------------------


def test_a_secret_in_svix_form_passes_and_a_rotation_pair_too() -> None:
    one, two = new_secret(), new_secret()
    assert check_signing_secret(f"  {one}\n") == one
    assert check_signing_secret(f"{one} {two}") == f"{one} {two}"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("sk_live_abcdef", "does not start with whsec_"),
        ("whsec_***not*base64***", "is not whsec_ followed by base64"),
        ("whsec_=", "is not whsec_ followed by base64"),
    ],
)
def test_a_value_of_another_form_is_refused_without_being_repeated(value: str, reason: str) -> None:
    with pytest.raises(InvalidSigningSecretError, match=reason) as raised:
        check_signing_secret(value)
    if value.strip():
        assert value.strip() not in str(raised.value)


def test_one_bad_entry_of_a_rotation_pair_is_refused() -> None:
    with pytest.raises(InvalidSigningSecretError, match="1 of its 2 entries"):
        check_signing_secret(f"{new_secret()} whsec_%%%")


def scripted(*answers: str) -> tuple[Callable[[str], str], list[str]]:
    prompts: list[str] = []
    queue = list(answers)

    def prompt(text: str) -> str:
        prompts.append(text)
        return queue.pop(0)

    return prompt, prompts


def test_the_environment_variable_wins_and_nothing_is_asked() -> None:
    secret = new_secret()
    prompt, prompts = scripted()
    assert obtain_signing_secret({SECRET_ENV: secret}, already_set=False, prompt=prompt) == secret
    assert prompts == []


def test_a_bad_environment_variable_stops_with_where_to_find_the_secret() -> None:
    with pytest.raises(DeployStepError, match="STACK_WEBHOOK_SECRET: that is not a signing secret") as raised:
        obtain_signing_secret({SECRET_ENV: "hunter2"}, already_set=False, prompt=scripted()[0])
    assert "signing secret (it starts with whsec_)" in raised.value.advice
    assert "hunter2" not in str(raised.value)


def test_the_prompt_asks_again_after_a_bad_answer_and_never_repeats_it() -> None:
    secret = new_secret()
    said: list[str] = []
    prompt, prompts = scripted("whsec_***", secret)
    assert obtain_signing_secret({}, already_set=False, prompt=prompt, say=said.append) == secret
    assert len(prompts) == 2
    assert "hidden as you type" in prompts[0]
    assert "Enter keeps" not in prompts[0]
    [complaint] = said
    assert "not whsec_ followed by base64" in complaint
    assert "2 tries left" in complaint
    assert "***" not in complaint


def test_three_bad_answers_stop_the_deploy_with_advice() -> None:
    prompt, _ = scripted("a", "b", "c")
    with pytest.raises(DeployStepError, match="no valid signing secret after three tries"):
        obtain_signing_secret({}, already_set=False, prompt=prompt, say=lambda _: None)


def test_enter_keeps_a_secret_the_stack_already_holds_but_not_the_placeholder() -> None:
    prompt, prompts = scripted("")
    assert obtain_signing_secret({}, already_set=True, prompt=prompt) is None
    assert "Enter keeps the one the stack holds" in prompts[0]
    # with only the placeholder in the stack, an empty answer is a bad answer
    prompt, prompts = scripted("", new_secret())
    assert obtain_signing_secret({}, already_set=False, prompt=prompt, say=lambda _: None) is not None
    assert len(prompts) == 2


def test_end_of_input_at_the_prompt_stops_with_advice() -> None:
    def closed(_: str) -> str:
        raise EOFError

    with pytest.raises(DeployStepError, match="no signing secret was given") as raised:
        obtain_signing_secret({}, already_set=False, prompt=closed)
    assert SECRET_ENV in raised.value.advice


def test_put_and_read_back_the_stacks_secret(aws: None) -> None:
    client = boto3.client("secretsmanager", region_name=REGION)
    arn = client.create_secret(Name="s", SecretString="NOT-CONFIGURED: placeholder")["ARN"]
    assert holds_signing_secret(client, arn) is False
    secret = new_secret()
    put_signing_secret(client, arn, secret)
    assert client.get_secret_value(SecretId=arn)["SecretString"] == secret
    assert holds_signing_secret(client, arn) is True


def test_a_refused_write_says_which_permission_is_missing(aws: None) -> None:
    client = boto3.client("secretsmanager", region_name=REGION)
    missing = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:gone-AbCdEf"
    with pytest.raises(DeployStepError, match="could not write the webhook secret") as raised:
        put_signing_secret(client, missing, new_secret())
    assert "secretsmanager:PutSecretValue" in raised.value.advice


# --- samconfig.toml ----------------------------------------------------------------------------------------------


def test_the_target_is_the_deploy_sections_then_the_global_ones(tmp_path: Path) -> None:
    config = tmp_path / "samconfig.toml"
    config.write_text(
        'version = 0.1\n[default.global.parameters]\nstack_name = "from-global"\nregion = "eu-west-1"\n'
        '[default.deploy.parameters]\nstack_name = "from-guided"\n'
        '[prod.global.parameters]\nstack_name = "prod-stack"\n'
    )
    default = read_target(config, "default")
    assert (default.stack_name, default.region) == ("from-guided", "eu-west-1")
    prod = read_target(config, "prod")
    assert (prod.stack_name, prod.region) == ("prod-stack", None)
    assert read_target(config, "staging").stack_name == DEFAULT_STACK_NAME
    assert read_target(tmp_path / "absent.toml", "default").stack_name == DEFAULT_STACK_NAME


def test_a_broken_samconfig_says_so(tmp_path: Path) -> None:
    config = tmp_path / "samconfig.toml"
    config.write_text("[default\n")
    with pytest.raises(DeployStepError, match="is not valid TOML"):
        read_target(config, "default")


# --- credentials and the stack's state ----------------------------------------------------------------------------


def test_no_credentials_stop_before_anything_with_how_to_configure_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    sts = boto3.session.Session(region_name=REGION).client("sts")
    with pytest.raises(DeployStepError, match="no usable AWS credentials") as raised:
        account_id(sts)
    assert "aws configure" in raised.value.advice


def test_a_missing_stack_means_a_first_deploy_and_a_failed_first_create_is_explained(aws: None) -> None:
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    assert stack_status(cloudformation, "never-deployed") is None
    assert account_id(boto3.client("sts", region_name=REGION)) == "123456789012"
    require_updatable("s", "UPDATE_COMPLETE")
    with pytest.raises(DeployStepError, match="is ROLLBACK_COMPLETE") as raised:
        require_updatable("s", "ROLLBACK_COMPLETE")
    assert "sam delete --stack-name s" in raised.value.advice


# --- waiting for stack.test --------------------------------------------------------------------------------------


def events_table() -> Any:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(
        TableName="events",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "event_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "event_id", "KeyType": "HASH"}],
    )
    return dynamodb


def record(dynamodb: Any, event_id: str, event_type: str, received_at: float, status: str) -> None:
    item = {"event_id": event_id, "event_type": event_type, "status": status}
    # received_at as the function writes it: epoch seconds with a fraction
    dynamodb.put_item(
        TableName="events",
        Item={**{k: {"S": v} for k, v in item.items()}, "received_at": {"N": str(received_at)}},
    )


def test_only_a_stack_test_newer_than_the_wait_counts_published_first(aws: None) -> None:
    dynamodb = events_table()
    record(dynamodb, "msg_old_test", "stack.test", 1_000, "published")
    record(dynamodb, "msg_user", "user.created", 2_000, "published")
    assert newest_test_delivery(dynamodb, "events", since=1_500) is None
    record(dynamodb, "msg_claimed", "stack.test", 2_100.25, "claimed")
    assert newest_test_delivery(dynamodb, "events", since=1_500).event_id == "msg_claimed"  # type: ignore[union-attr]
    record(dynamodb, "msg_published", "stack.test", 2_050, "published")
    delivery = newest_test_delivery(dynamodb, "events", since=1_500)
    assert delivery is not None
    assert (delivery.event_id, delivery.published) == ("msg_published", True)


def test_the_wait_polls_until_published_then_returns(aws: None, clock: FakeClock) -> None:
    dynamodb = events_table()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)
        if len(slept) == 2:  # Stack's button pressed while we wait
            record(dynamodb, "msg_test", "stack.test", 5_000, "published")

    delivery = wait_for_test_delivery(
        dynamodb, "events", since=4_000, timeout_seconds=60, interval_seconds=5, clock=clock, sleep=sleep
    )
    assert delivery is not None
    assert delivery.event_id == "msg_test"
    assert slept == [5, 5]


def test_the_wait_gives_up_at_its_timeout_with_what_it_saw(aws: None, clock: FakeClock) -> None:
    dynamodb = events_table()
    record(dynamodb, "msg_stuck", "stack.test", 5_000, "claimed")

    def sleep(seconds: float) -> None:
        clock.advance(seconds)

    delivery = wait_for_test_delivery(
        dynamodb, "events", since=4_000, timeout_seconds=12, interval_seconds=5, clock=clock, sleep=sleep
    )
    assert delivery is not None
    assert not delivery.published
    assert "msg_stuck" in timeout_advice("https://x/webhooks/stack", "s", delivery)
    assert (
        wait_for_test_delivery(
            dynamodb, "events", since=9_000, timeout_seconds=3, interval_seconds=5, clock=clock, sleep=sleep
        )
        is None
    )


def test_the_timeout_advice_names_the_url_the_secret_and_how_to_check(aws: None) -> None:
    advice = timeout_advice("https://abc.execute-api.us-east-1.amazonaws.com/webhooks/stack", "my-stack", None)
    assert "https://abc.execute-api.us-east-1.amazonaws.com/webhooks/stack" in advice
    assert "a 401 means the secret you entered is not this endpoint's signing secret" in advice
    assert "--stack-name my-stack --type stack.test" in advice


def test_an_unreadable_table_says_which_permission_is_missing(aws: None, clock: FakeClock) -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    with pytest.raises(DeployStepError, match="could not read the events table") as raised:
        wait_for_test_delivery(dynamodb, "no-such-table", since=0, timeout_seconds=1, clock=clock, sleep=lambda _: None)
    assert "dynamodb:Scan" in raised.value.advice
