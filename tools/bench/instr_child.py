"""Warm path in instructions, for a figure the machine's noise cannot move: ``instr_child.py <job.json>``.

Run by ``measure.py`` (``make bench``) under ``valgrind --tool=callgrind --collect-atstart=no
--toggle-collect=functools_reduce``: callgrind counts only the instructions executed inside ``functools.reduce``, and
the measured loop is the only thing this script runs through ``reduce``. The setup is ``warm_child.py``'s (the same
``before-call`` answers, the same recorded calls); ``loop`` picks what runs per event:

- ``handler``: ``lambda_handler(event)`` of fresh signed events;
- ``calls``: the three AWS calls with the handler's recorded parameters, on clients with the same hook;
- ``bare``: HMAC-SHA256 verify + ``json.loads``.

Instruction counts of the same code, inputs and interpreter repeat exactly whatever else the machine is doing.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
import sys
from typing import Any

import job_json
from stack_webhook_fanout_tools.devkit.local_gateway import LocalContext
from stack_webhook_fanout_tools.devkit.samples import sample_api_event
from warm_child import Answers, direct_calls, load_app

from stack_webhook_fanout.bootstrap import aws_session


def main() -> None:
    with open(sys.argv[1]) as handle:
        job = job_json.load(handle)
    secret, n, loop = job["secret"], int(job["events"]), job["loop"]
    session = aws_session()  # the session build_service takes its clients from
    session.register("before-call", Answers(secret, job["secret_arn"]))
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1)
    os.dup2(devnull, 1)  # the handler's logs and metrics: written, then dropped by the kernel
    try:
        module = load_app(job["app_path"])
        context = LocalContext()
        calls = direct_calls(session, job)
        key = base64.b64decode(secret.removeprefix("whsec_"))

        def handler(event: dict[str, Any]) -> None:
            module.lambda_handler(event, context)

        def aws_calls(_: dict[str, Any]) -> None:
            for call, params in calls:
                call(**params)

        def bare(event: dict[str, Any]) -> None:
            headers, raw = event["headers"], event["body"].encode()
            digest = hmac.new(key, f"{headers['svix-id']}.{headers['svix-timestamp']}.".encode() + raw, hashlib.sha256)
            expected = "v1," + base64.b64encode(digest.digest()).decode()
            if not any(hmac.compare_digest(expected, s) for s in headers["svix-signature"].split(" ")):
                raise RuntimeError("bare verification failed")
            json.loads(raw)

        work = {"handler": handler, "calls": aws_calls, "bare": bare}[loop]
        events = [sample_api_event(job["event_type"], secret) for _ in range(n + 20)]
        for event in events[:20]:  # warm: the secret, lazily built state, the first log and metric lines
            work(event)
        functools.reduce(lambda _, event: work(event), events[20:], None)
    finally:
        os.dup2(saved, 1)


if __name__ == "__main__":
    main()
