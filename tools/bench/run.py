"""``make bench``: the ingest path measured side by side with what it cannot avoid, in one run, as ratios.

Usage (from the repository root; ``make bench`` runs the first)::

    .venv/bin/python tools/bench/run.py            # full run, a few minutes
    .venv/bin/python tools/bench/run.py --quick    # fewer repetitions, for a quick look
    .venv/bin/python tools/bench/run.py --skip-layer   # no sam build / pip (offline)

It starts ``moto_server`` on a free loopback port (stopped by its pid at the end), provisions a stack of its own with
``devkit.emulator.provision``, and measures, each figure against its baseline in the same run:

1. cold start (``cold_child.py``): fresh interpreters, handler / floor / tuned floor / naive build interleaved,
   median of N;
2. warm path (``warm_child.py``): the handler's own microseconds per event, AWS calls answered at once; and the same
   in instructions (``instr_child.py`` under callgrind): the handler's own against the AWS calls' client side;
3. end to end (``e2e_gateway.py`` + ``e2e_load.py``): the local HTTP endpoint and moto at concurrency 1 and 8,
   against the same AWS calls made directly;
4. AWS calls per new event and per duplicate, counted with botocore hooks, and bytes stored (``count_child.py``);
5. the layer's zipped size for arm64 against svix + Powertools + pydantic (``layer.py``).

Absolute times depend on the machine and on what else runs on it; the goals are ratios. The run ends with one
``name=value`` line per figure; the same figures go to ``.local/bench/last.json`` (read by ``tools/cost.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import (
    OUT_DIR,
    TEMPLATE_PATH,
    check_client_config,
    child_env,
    moto_server,
)
from measure import (
    log,
    measure_cold,
    measure_counts,
    measure_e2e,
    measure_instructions,
    measure_warm,
)
from report import figures, report
from stack_webhook_fanout_tools.devkit.emulator import provision


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs, {model or platform.processor()}, {platform.system()} {platform.machine()}, " + (
        f"Python {platform.python_version()}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (cold start N=7)")
    parser.add_argument("--skip-layer", action="store_true", help="skip the layer sizes (no sam build, no pip)")
    parser.add_argument(
        "--no-instructions", action="store_true", help="skip the warm path's instruction counts (callgrind)"
    )
    parser.add_argument("--output", type=Path, default=OUT_DIR / "last.json", help="where the figures are saved")
    args = parser.parse_args()
    params = (
        {"cold_runs": 7, "warm_events": 500, "warm_rounds": 5, "e2e": {1: (40, 8), 8: (96, 16)}, "e2e_rounds": 4}
        if args.quick
        else {
            "cold_runs": 11,
            "warm_events": 1000,
            "warm_rounds": 7,
            "e2e": {1: (60, 10), 8: (160, 24)},
            "e2e_rounds": 6,
        }
    )
    params["count_events"] = 20
    params["instruction_events"] = 20 if args.quick else 40
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    check_client_config()
    results: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "quick" if args.quick else "full",
        "machine": machine(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "params": {k: v for k, v in params.items() if k != "e2e"}
        | {"e2e": {f"c{c}": {"events": e, "warmup": w} for c, (e, w) in params["e2e"].items()}},
    }
    with tempfile.TemporaryDirectory(prefix="bench-") as folder, moto_server(OUT_DIR / "moto.log") as (endpoint, pid):
        tmp = Path(folder)
        stack = provision(endpoint, name_prefix=f"bench-{uuid.uuid4().hex[:8]}", template_path=TEMPLATE_PATH)
        env = child_env(stack.process_env())
        secret = stack.secret_value
        log(f"moto_server pid {pid} at {endpoint}; stack {stack.name_prefix}")
        results["counts"] = measure_counts(tmp, env, stack, secret, params["count_events"])
        log(f"calls counted: new event {results['counts']['warm']['operations']}")
        results["cold"] = measure_cold(tmp, env, stack, secret, results["counts"], params["cold_runs"])
        results["warm"] = measure_warm(
            tmp, env, stack, secret, results["counts"], params["warm_events"], params["warm_rounds"]
        )
        log(f"warm path: {results['warm']['own_us']:.1f} µs own per event")
        if not args.no_instructions:
            results["instructions"] = measure_instructions(
                tmp, env, stack, secret, results["counts"], params["instruction_events"]
            )
        results["e2e"] = measure_e2e(tmp, env, secret, results["counts"], pid, params["e2e"], params["e2e_rounds"])
    if not args.skip_layer:
        import layer

        log("layer: sam build and the naive layer (cached after the first run)")
        results["layer"] = layer.measure()
    flat = figures(results)
    results["figures"] = flat
    for part in ("warm",):
        results[part].pop("rounds_us", None)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str))
    report(results, flat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
