"""Run every benchmark, print the tables, write benchmarks/RESULTS.md and docs/benchmarks.md.

python -m benchmarks.run            # the full run (a few minutes; LiteLLM's retries are slow)
python -m benchmarks.run --quick    # smaller counts, for a look
"""

from __future__ import annotations

import argparse
import logging
import re
import time
from pathlib import Path

from . import faults, fleet, fleet_cache, hang, hedge, memory, outage, overhead, perf, pools
from ._common import Table, machine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
PAGE = ROOT / "docs" / "benchmarks.md"  # the docs site's benchmarks page, between the markers
START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts")
    args = parser.parse_args()
    logging.getLogger("llm_failover").setLevel(logging.ERROR)  # decisions are counted, not logged

    started = time.perf_counter()
    tables: list[Table] = [overhead.run(calls=500 if args.quick else 2000)]
    tables += outage.run(n=8, m=20, herd=50) if args.quick else outage.run()
    tables.append(hang.run(n=4 if args.quick else 8))
    tables.append(fleet.run())
    tables += [
        fleet_cache.per_request(requests=300 if args.quick else 2000),
        fleet_cache.fleet(rounds=4 if args.quick else 12),
        fleet_cache.event_loop(),
    ]
    tables.append(hedge.run(n=300 if args.quick else 1000))
    tables.append(pools.run(n=300 if args.quick else 1000))
    tables.append(memory.run(requests=20_000 if args.quick else 100_000))
    tables.append(faults.run())  # about four minutes: a silent provider, a minute's outage
    tables += perf.run(quick=args.quick)

    body = "\n".join(t.markdown() for t in tables)
    header = (
        f"Measured on {machine()}; "
        f"{'quick run' if args.quick else 'full run'} in {time.perf_counter() - started:.0f} s "
        "with `python -m benchmarks.run`.\n"
    )
    print(header + "\n" + body)
    RESULTS.write_text("# Benchmark results\n\n" + header + "\n" + body)
    text = PAGE.read_text()
    if START in text and END in text:
        block = f"{START}\n{header}\n{body}{END}"
        PAGE.write_text(re.sub(f"{START}.*?{END}", lambda _: block, text, flags=re.DOTALL))
    print(f"wrote {RESULTS.relative_to(ROOT)} and {PAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
