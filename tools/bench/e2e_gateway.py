"""The local HTTP endpoint in front of the real handler, for the end-to-end runs: ``e2e_gateway.py <url-file>``.

Loads ``functions/ingest/app.py`` (its environment points every client at the moto server), serves it through
``devkit.local_gateway.LocalGateway`` with ``concurrent=True`` (requests run the handler in parallel, as several
warm execution environments would) on a free loopback port, writes the URL to ``<url-file>`` and serves until it
is stopped (SIGTERM, by its pid). The handler's logs go to this process's stdout.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from stack_webhook_fanout_tools.devkit.local_gateway import LocalGateway


def main() -> None:
    url_file = Path(sys.argv[1])
    spec = importlib.util.spec_from_file_location("ingest_app", os.environ["BENCH_APP_PATH"])
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    gateway = LocalGateway(module.lambda_handler, host="127.0.0.1", port=0, concurrent=True)
    partial = url_file.with_suffix(".partial")
    partial.write_text(gateway.url)
    partial.replace(url_file)
    gateway.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
