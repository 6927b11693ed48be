"""AWS cost per million Stack webhooks, from prices given as inputs and the figures of the last ``make bench``.

Usage (from the repository root)::

    .venv/bin/python tools/cost.py                         # Markdown table, figures from .local/bench/last.json
    .venv/bin/python tools/cost.py --memory-mb 256 --aws-ms-per-call 9 --duplicate-share 0.01
    .venv/bin/python tools/cost.py --compare-memory 128,256,512,1024   # the memory table of docs/cost.md

Every price is a flag. The defaults are us-east-1 list prices as the author knew them (late 2025), without free tiers
or volume discounts: CHECK THEM against the AWS pricing pages before relying on the result. The usage side comes from
the benchmark (``.local/bench/last.json``: bytes stored per event, SNS message bytes, log bytes per event, AWS calls
per event, CPU per event) or from the flags that override it.

The Lambda duration is a model, not a measurement of Lambda: ``calls x --aws-ms-per-call`` (time spent waiting for
DynamoDB and SNS, which no memory size changes) plus the CPU the invocation needs on a full vCPU, stretched by the
share of a vCPU the memory size buys (Lambda gives one full vCPU at 1,769 MB, proportionally less below). After a
deployment, replace it with the ``Duration`` of the function's REPORT log lines (``--duration-ms``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stack_webhook_fanout_tools.dynamodb_item_size import write_units

REPO = Path(__file__).resolve().parents[1]
BENCH_RESULTS = REPO / ".local" / "bench" / "last.json"
FULL_VCPU_MB = 1769
GIB = 1024**3
DAYS_PER_MONTH = 365.25 / 12

#: What the benchmark measures, for when there is no ``.local/bench/last.json`` yet (a run of 2026-11-27 on this
#: project's code, user.created; the item sizes of 2026-12-07, body compressed): see docs/benchmarks.md.
FALLBACK_FIGURES: dict[str, float] = {
    "bytes_stored_per_event": 816,
    "bytes_claimed_per_event": 752,
    "sns_message_bytes": 1050,
    "log_bytes_per_event": 957,
    "aws_calls_new_event": 3,
    "cpu_ms_per_warm_event_with_http": 2.5,
}


@dataclass(frozen=True)
class Line:
    service: str
    what: str
    quantity: float
    unit: str
    price: float
    price_unit: str

    @property
    def cost(self) -> float:
        return self.quantity * self.price


def load_figures(path: Path) -> tuple[dict[str, float], str]:
    if path.exists():
        document: dict[str, Any] = json.loads(path.read_text())
        return {**FALLBACK_FIGURES, **document.get("figures", {})}, f"{path.relative_to(REPO)} ({document['started']})"
    return dict(FALLBACK_FIGURES), "built-in figures (no benchmark results found)"


def cpu_ms_per_event(figures: dict[str, float]) -> float:
    """CPU one warm invocation needs on a full vCPU: the benchmark's process CPU time per warm new event, the
    handler making its three calls over HTTP to the emulator one event at a time (an upper bound for AWS: the
    emulator closes every connection, so each call also pays a TCP connect that keep-alive would save)."""
    return figures["cpu_ms_per_warm_event_with_http"]


def duration_ms(args: argparse.Namespace, figures: dict[str, float], memory_mb: int) -> float:
    if args.duration_ms is not None:
        return float(args.duration_ms)
    cpu_share = min(1.0, memory_mb / FULL_VCPU_MB)
    return figures["aws_calls_new_event"] * args.aws_ms_per_call + cpu_ms_per_event(figures) / cpu_share


def lines(args: argparse.Namespace, figures: dict[str, float], memory_mb: int) -> list[Line]:
    million = 1_000_000
    new = 1 - args.duplicate_share
    item_bytes = args.item_bytes if args.item_bytes is not None else figures["bytes_stored_per_event"]
    sns_bytes = args.sns_bytes if args.sns_bytes is not None else figures["sns_message_bytes"]
    log_bytes = args.log_bytes if args.log_bytes is not None else figures["log_bytes_per_event"]
    billed_ms = math.ceil(duration_ms(args, figures, memory_mb))  # Lambda bills in 1 ms steps
    # A new event: the claim (an UpdateItem that creates the item: billed on the claimed item) and the mark (an
    # UpdateItem: billed on the larger of the item before and after it). A duplicate: one claim whose condition
    # fails, which still consumes the units of the existing (published) item.
    claimed_bytes = 0.0 if args.item_bytes is not None else figures.get("bytes_claimed_per_event", 0.0)
    units = write_units(math.ceil(max(item_bytes, claimed_bytes)))
    wru = million * (new * 2 * units + args.duplicate_share * units)
    stored_gib = million * new * (args.retention_days / DAYS_PER_MONTH) * (item_bytes + 100) / GIB
    result = [
        Line("API Gateway", "HTTP API requests (up to 512 KB each)", 1, "million", args.apigw_per_million, "/million"),
        Line("Lambda", "requests", 1, "million", args.lambda_requests_per_million, "/million"),
        Line(
            "Lambda",
            f"arm64 compute: {memory_mb} MB x {billed_ms} ms",
            million * memory_mb / 1024 * billed_ms / 1000,
            "GB-s",
            args.lambda_gb_second,
            "/GB-s",
        ),
        Line(
            "DynamoDB",
            f"on-demand writes: claim + mark, {units} WRU each ("
            + (f"{claimed_bytes:.0f} B claimed, " if claimed_bytes else "")
            + f"{item_bytes:.0f} B published item)",
            wru / million,
            "million WRU",
            args.dynamodb_per_million_wru,
            "/million WRU",
        ),
        Line(
            "DynamoDB",
            f"storage: {args.retention_days} days kept, {item_bytes:.0f} + 100 B per item",
            stored_gib,
            "GB-month",
            args.dynamodb_gb_month,
            "/GB-month",
        ),
        Line(
            "DynamoDB",
            "point-in-time recovery of that storage",
            stored_gib,
            "GB-month",
            args.pitr_gb_month,
            "/GB-month",
        ),
        Line(
            "SNS",
            f"publishes ({math.ceil(sns_bytes / 65536)} x 64 KB chunk for {sns_bytes:.0f} B)",
            new * math.ceil(sns_bytes / 65536),
            "million",
            args.sns_per_million,
            "/million",
        ),
    ]
    if not args.issue_rows_only:
        log_gb = million * (log_bytes + args.platform_log_bytes + args.access_log_bytes) / 1e9
        result += [
            Line(
                "CloudWatch Logs",
                f"ingestion: {log_bytes:.0f} B function + {args.platform_log_bytes} B START/END/REPORT"
                f" + {args.access_log_bytes} B access log per request",
                log_gb,
                "GB",
                args.logs_per_gb,
                "/GB",
            ),
            Line(
                "X-Ray",
                f"traces recorded (TracingMode Active; {args.xray_traced_share:.0%} of requests sampled)"
                if args.tracing_mode == "Active"
                else "traces recorded (TracingMode Disabled, the default: none)",
                args.xray_traced_share if args.tracing_mode == "Active" else 0.0,
                "million",
                args.xray_per_million,
                "/million",
            ),
        ]
    return result


def number(value: float) -> str:
    """Plain notation with at most four significant digits: 20,000 / 1.247 / 0.0000133334 (prices keep theirs)."""
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    digits = max(4, -math.floor(math.log10(abs(value))) + 5) if abs(value) < 0.001 else 4
    return text if abs(value) < 0.001 else f"{value:.{digits}g}"


def table(args: argparse.Namespace, figures: dict[str, float], memory_mb: int) -> str:
    rows = lines(args, figures, memory_mb)
    out = [
        "| service | what | quantity per million webhooks | price | cost per million webhooks |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for line in rows:
        out.append(
            f"| {line.service} | {line.what} | {number(line.quantity)} {line.unit} | ${number(line.price)}"
            f"{line.price_unit} | ${line.cost:,.3f} |"
        )
    core = sum(line.cost for line in rows if line.service in ("API Gateway", "Lambda", "DynamoDB", "SNS"))
    out.append(f"| **total** | API Gateway, Lambda, DynamoDB, SNS | | | **${core:,.2f}** |")
    if not args.issue_rows_only:
        everything = sum(line.cost for line in rows)
        out.append(f"| **total** | with CloudWatch Logs and X-Ray | | | **${everything:,.2f}** |")
    return "\n".join(out)


def memory_table(args: argparse.Namespace, figures: dict[str, float], sizes: list[int]) -> str:
    cold_cpu_ms = figures.get("cold_start_handler_cpu_ms")
    out = [
        "| memory | vCPU share | modelled warm duration | Lambda cost per million | total per million "
        "| cold start if init CPU scales with memory |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for memory_mb in sizes:
        rows = lines(args, figures, memory_mb)
        lambda_cost = sum(line.cost for line in rows if line.service == "Lambda")
        total = sum(line.cost for line in rows)
        share = min(1.0, memory_mb / FULL_VCPU_MB)
        cold = f"{cold_cpu_ms / share / 1000:.1f} s" if cold_cpu_ms else "n/a"
        out.append(
            f"| {memory_mb} MB | {share:.2f} | {duration_ms(args, figures, memory_mb):.1f} ms | ${lambda_cost:.3f} "
            f"| ${total:.2f} | {cold} |"
        )
    return "\n".join(out)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--bench", type=Path, default=BENCH_RESULTS, help="benchmark results (default: %(default)s)")
    prices = p.add_argument_group("prices (us-east-1 list prices as last known to the author: check them)")
    prices.add_argument("--apigw-per-million", type=float, default=1.00, help="HTTP API, per million requests")
    prices.add_argument("--lambda-requests-per-million", type=float, default=0.20, help="Lambda, per million requests")
    prices.add_argument("--lambda-gb-second", type=float, default=0.0000133334, help="Lambda arm64, per GB-second")
    prices.add_argument("--dynamodb-per-million-wru", type=float, default=0.625, help="on-demand, per million WRU")
    prices.add_argument("--dynamodb-per-million-rru", type=float, default=0.125, help="on-demand, per million RRU")
    prices.add_argument("--dynamodb-gb-month", type=float, default=0.25, help="DynamoDB standard storage, per GB-month")
    prices.add_argument("--pitr-gb-month", type=float, default=0.20, help="continuous backups (PITR), per GB-month")
    prices.add_argument("--sns-per-million", type=float, default=0.50, help="SNS standard publishes, per million")
    prices.add_argument("--logs-per-gb", type=float, default=0.50, help="CloudWatch Logs ingestion, per GB")
    prices.add_argument("--xray-per-million", type=float, default=5.00, help="X-Ray traces recorded, per million")
    usage = p.add_argument_group("usage (defaults from the benchmark results)")
    usage.add_argument("--memory-mb", type=int, default=512, help="function memory (template default %(default)s)")
    usage.add_argument("--duration-ms", type=float, help="billed duration per invocation; default: the model above")
    usage.add_argument(
        "--aws-ms-per-call",
        type=float,
        default=7.0,
        help="waiting time per DynamoDB/SNS call in the function's region (assumption: %(default)s ms)",
    )
    usage.add_argument("--item-bytes", type=float, help="DynamoDB item size (default: measured, user.created)")
    usage.add_argument("--sns-bytes", type=float, help="SNS message size with attributes (default: measured)")
    usage.add_argument("--log-bytes", type=float, help="function log bytes per event (default: measured)")
    usage.add_argument("--platform-log-bytes", type=int, default=330, help="Lambda START/END/REPORT lines")
    usage.add_argument("--access-log-bytes", type=int, default=330, help="one HTTP API access log line")
    usage.add_argument("--retention-days", type=float, default=30, help="RetentionDays (template default 30)")
    usage.add_argument("--duplicate-share", type=float, default=0.0, help="share of deliveries that are retries")
    usage.add_argument(
        "--tracing-mode",
        choices=("Disabled", "Active"),
        default="Disabled",
        help="the template's TracingMode parameter (default %(default)s: no traces recorded)",
    )
    usage.add_argument(
        "--xray-traced-share",
        type=float,
        default=1.0,
        help="with --tracing-mode Active, share of requests traced: the default rule records 1 request/s\n"
        "plus 5%% of the rest, so below "
        "about 1 request/s (2.6 million a month) nearly every request is traced",
    )
    p.add_argument("--issue-rows-only", action="store_true", help="only API Gateway, Lambda, DynamoDB and SNS")
    p.add_argument("--compare-memory", help="comma-separated memory sizes: print the memory table instead")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    figures, source = load_figures(args.bench)
    if args.compare_memory:
        sizes = [int(x) for x in args.compare_memory.split(",")]
        print(memory_table(args, figures, sizes))
    else:
        print(table(args, figures, args.memory_mb))
    print(
        f"\nUsage figures from {source}; Lambda duration "
        + (
            f"{args.duration_ms} ms as given."
            if args.duration_ms is not None
            else f"modelled: {figures['aws_calls_new_event']:.0f} calls x {args.aws_ms_per_call} ms waiting + "
            f"{cpu_ms_per_event(figures):.2f} ms of CPU on a full vCPU, stretched below {FULL_VCPU_MB} MB."
        )
        + " Prices are inputs (see --help): check them against the AWS pricing pages.",
        file=sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
