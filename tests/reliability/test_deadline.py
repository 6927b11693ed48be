"""An answer before every timeout: a dependency that accepts the connection and never answers, for each of the four
calls of a delivery (the secret, the claim, the publish, the mark).

The dependency is a real socket server started by the test (:class:`StallingProxy`): it accepts every connection
and reads every request, forwards to the emulator the requests it is not told to stall, and never answers the
others. The function's endpoint for that service points at it (``AWS_ENDPOINT_URL_<SERVICE>``). The invocation's
context tells a remaining time as Lambda's does; the function must answer before it ends, with its outcome line,
and leave the record in a state that is safe for the retry and says what happened.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
from stack_webhook_fanout_tools.devkit.local_gateway import LocalContext

from .support import client_events, header, invoke, outcome

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from .support import Deployment

pytestmark = pytest.mark.integration

#: The template's function Timeout (10 s), and a shorter remaining time, as a late retry inside one would see.
REMAINING_MS = (10_000, 4_000)


class DeadlineContext(LocalContext):
    """A Lambda context whose remaining time runs down from ``remaining_ms`` as the real one does."""

    def __init__(self, remaining_ms: int) -> None:
        super().__init__()
        self.deadline = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class StallingProxy:
    """An HTTP server on a free loopback port that never answers the requests ``stall(body)`` picks and forwards
    the others to ``target`` (the emulator). Stalled requests hold their connection until :meth:`stop`."""

    def __init__(self, target: str, stall: Callable[[bytes], bool]) -> None:
        released = threading.Event()
        self.stalled = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if stall(body):
                    proxy.stalled += 1
                    released.wait(60)  # never answers while the test runs
                    self.close_connection = True
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "content-length"}}
                request = urllib.request.Request(target + self.path, data=body, headers=headers, method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=10) as answer:
                        status, payload, answer_headers = answer.status, answer.read(), answer.headers
                except urllib.error.HTTPError as error:
                    status, payload, answer_headers = error.code, error.read(), error.headers
                self.send_response(status)
                for name, value in answer_headers.items():
                    if name.lower() not in {"content-length", "transfer-encoding", "connection", "date", "server"}:
                        self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_: Any) -> None:
                pass

        self._released = released
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


@pytest.fixture
def stalling(deployment: Deployment) -> Iterator[Callable[[Callable[[bytes], bool]], StallingProxy]]:
    proxies: list[StallingProxy] = []

    def start(stall: Callable[[bytes], bool]) -> StallingProxy:
        proxy = StallingProxy(deployment.stack.endpoint_url, stall)
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


def _every_request(_: bytes) -> bool:
    return True


def _the_mark(body: bytes) -> bool:
    return b'":published"' in body  # the UpdateItem that records the publication


class _TwoInThree:
    """Stalls the first two of every three requests: each call succeeds on botocore's last attempt, after two
    read timeouts. Four such calls in a row take longer than the function's 10 s."""

    def __init__(self) -> None:
        self.seen = 0

    def __call__(self, _: bytes) -> bool:
        self.seen += 1
        return self.seen % 3 != 0


# service endpoint variable, which requests stall, the answer, whether the record exists and is published
CASES: dict[str, tuple[str, Callable[[bytes], bool], tuple[int, str], str]] = {
    "secret": ("AWS_ENDPOINT_URL_SECRETS_MANAGER", _every_request, (503, "dependency_unavailable"), "absent"),
    "claim": ("AWS_ENDPOINT_URL_DYNAMODB", _every_request, (503, "dependency_unavailable"), "absent"),
    "publish": ("AWS_ENDPOINT_URL_SNS", _every_request, (503, "dependency_unavailable"), "publication_unknown"),
    "mark": ("AWS_ENDPOINT_URL_DYNAMODB", _the_mark, (200, "published"), "publication_unknown"),
}
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SNS")
DEPENDENCY = {"secret": "secretsmanager", "claim": "dynamodb", "publish": "sns"}


@pytest.mark.parametrize("remaining_ms", REMAINING_MS)
@pytest.mark.parametrize("call", sorted(CASES))
def test_a_dependency_that_never_answers_gets_an_answer_and_an_outcome_line_before_the_deadline(
    deployment: Deployment,
    stalling: Callable[[Callable[[bytes], bool]], StallingProxy],
    stdout_logs: pytest.CaptureFixture[str],
    call: str,
    remaining_ms: int,
) -> None:
    # given: one call's dependency accepts the connection and never answers
    variable, stall, expected, record_state = CASES[call]
    proxy = stalling(stall)
    handler = deployment.load_handler(**{variable: proxy.url})
    event = deployment.signed("user.created")
    context = DeadlineContext(remaining_ms)
    stdout_logs.readouterr()

    # when
    status, answer = invoke(handler, event, context)
    left_ms = context.get_remaining_time_in_millis()

    # then: answered before Lambda's timeout, with time left for the runtime to send it
    assert proxy.stalled >= 1, "the stalled call was never made"
    assert left_ms > 0, f"answered {-left_ms} ms too late"
    assert (status, outcome(answer)) == expected
    if call in DEPENDENCY:
        assert answer["service"] == DEPENDENCY[call]
    # and exactly one outcome line, saying what happened
    lines = [json.loads(line) for line in stdout_logs.readouterr().out.splitlines() if line.strip().startswith("{")]
    outcomes = [line for line in lines if "outcome" in line]
    assert len(outcomes) == 1, lines
    if call in DEPENDENCY:
        assert (outcomes[0]["outcome"], outcomes[0]["dependency"]) == ("unavailable", DEPENDENCY[call])
    else:
        assert (outcomes[0]["outcome"], outcomes[0]["recorded"]) == ("published", False)
    # and the record as the retry needs it
    record = deployment.record(header(event, "svix-id"))
    if record_state == "absent":
        assert record is None  # the stalled request never reached the table: the retry starts afresh
    else:
        # SNS may hold the message: the claim stays held (publication unknown), so the retry gets 409 until the
        # lease expires instead of publishing a second copy at once
        assert record is not None
        assert (record["status"], bool(record.get("claim_token"))) == ("claimed", True)
    if call == "mark":
        assert [name for name, _ in deployment.publications()] == ["user.created"]


def test_every_dependency_slow_in_a_row_still_gets_an_answer_before_the_deadline(
    deployment: Deployment,
    stalling: Callable[[Callable[[bytes], bool]], StallingProxy],
    stdout_logs: pytest.CaptureFixture[str],
) -> None:
    # given: the secret, DynamoDB and SNS each answer only botocore's third attempt of every call
    proxies = {variable: stalling(_TwoInThree()) for variable in ENDPOINT_VARIABLES}
    handler = deployment.load_handler(**{variable: proxy.url for variable, proxy in proxies.items()})
    event = deployment.signed("user.created")
    context = DeadlineContext(10_000)
    stdout_logs.readouterr()

    # when
    status, answer = invoke(handler, event, context)

    # then: a clean, retryable answer in time (unbounded, the calls in a row would outlast the 10 s), one outcome
    # line, and nothing half-done: a 503 for the secret leaves no record behind
    assert context.get_remaining_time_in_millis() > 0
    assert (status, answer) == (503, {"error": "dependency_unavailable", "service": "secretsmanager"})
    lines = [json.loads(line) for line in stdout_logs.readouterr().out.splitlines() if line.strip().startswith("{")]
    assert [line["outcome"] for line in lines if "outcome" in line] == ["unavailable"]
    assert deployment.record(header(event, "svix-id")) is None


def test_a_publish_with_too_little_time_left_is_not_sent_and_the_claim_is_released(
    deployment: Deployment, stdout_logs: pytest.CaptureFixture[str]
) -> None:
    # given: an invocation whose claim took so long (a hook that waits after it) that too little time is left to
    # publish and still answer: the publish is refused unsent
    handler = deployment.load_handler()
    event = deployment.signed("team.updated")
    context = DeadlineContext(10_000)

    def slow_until_late(**_: Any) -> None:
        while context.get_remaining_time_in_millis() > 1_700:
            time.sleep(0.01)

    client_events(handler, "dynamodb").register("after-call.dynamodb.UpdateItem", slow_until_late, "slow")
    stdout_logs.readouterr()

    # when
    status, answer = invoke(handler, event, context)

    # then: a clean 503 in time, nothing published, and the claim given up: the retry proceeds at once
    assert context.get_remaining_time_in_millis() > 0
    assert (status, answer) == (503, {"error": "dependency_unavailable", "service": "sns"})
    lines = [json.loads(line) for line in stdout_logs.readouterr().out.splitlines() if line.strip().startswith("{")]
    assert [(line["outcome"], line["detail"]) for line in lines if "outcome" in line] == [("unavailable", "deadline")]
    assert deployment.publications() == []
    record = deployment.record(header(event, "svix-id"))
    assert record is not None
    assert (record["status"], record["lease_expires_at"]) == ("claimed", 0)
    assert "claim_token" not in record
