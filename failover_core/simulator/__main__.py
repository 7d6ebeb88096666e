"""``llm-failover-sim`` / ``python -m failover_core.simulator``: run the simulator.

Faults are given as ``MODEL=STATUS[,option=value...]`` (or ``MODEL=option=value,...``),
for example::

    llm-failover-sim --port 8099 --fail "gpt-4o-mini=503,times=5" --latency "*=0.05"
    llm-failover-sim --latency "gpt-4o-mini=0.1,p99=1.5"   # a heavy tail: p50 100 ms, p99 1.5 s
    llm-failover-sim --fail "gpt-4o-mini=hang=30,times=forever"
    llm-failover-sim --fail "claude-haiku=stall_after_chunks=2,stall=20"

and changed while it runs through its control endpoints (``POST /_sim/faults`` with a JSON
body such as ``{"model": "gpt-4o-mini", "status": 429, "times": 2, "retry_after": 1}``,
``POST /_sim/latency``, ``POST /_sim/reset``, ``GET /_sim/state``).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from .._extras import missing_extra
from ._faults import Fault

_INT = {"status", "times", "after_chunks", "stall_after_chunks"}
_FLOAT = {"latency", "retry_after", "hang", "stall_first_token", "stall", "keepalive"}
_BOOL = {"disconnect", "malformed"}


def parse_fault(text: str) -> tuple[str, Fault]:
    """``MODEL=STATUS[,key=value...]`` → (model, fault). ``times=forever`` means no limit.

    The status may be left out when an option comes first (``MODEL=hang=30``).
    """
    model, sep, rest = text.partition("=")
    if not sep or not model.strip() or not rest.strip():
        raise argparse.ArgumentTypeError(f"expected MODEL=STATUS[,key=value...], got {text!r}")
    pairs = rest.split(",")
    options: dict[str, Any] = {}
    try:
        if "=" not in pairs[0]:
            options["status"] = int(pairs.pop(0))
        for pair in pairs:
            key, _, value = pair.partition("=")
            key = key.strip()
            if key == "times" and value in ("forever", "none", "None"):
                options["times"] = None
            elif key in _INT:
                options[key] = int(value)
            elif key in _FLOAT:
                options[key] = float(value)
            elif key in _BOOL:
                options[key] = value.lower() in ("1", "true", "yes")
            else:
                options[key] = value
        return model.strip(), Fault.from_dict(options)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad fault {text!r}: {exc}") from exc


def parse_latency(text: str) -> tuple[str, float, dict[str, float]]:
    """``MODEL=SECONDS``, or ``MODEL=P50,p99=P99[,seed=N]`` for a heavy-tailed delay."""
    model, _, value = text.partition("=")
    first, *rest = value.split(",")
    try:
        options = {k.strip(): float(v) for k, _, v in (part.partition("=") for part in rest)}
        if set(options) - {"p99", "seed"}:
            raise ValueError(f"unknown option {sorted(set(options) - {'p99', 'seed'})[0]!r}")
        return model.strip(), float(first), options
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected MODEL=SECONDS or MODEL=P50,p99=SECONDS, got {text!r}"
        ) from exc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="llm-failover-sim",
        description="Fault-injecting OpenAI/Anthropic-compatible server on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=8099, help="port (0: any free port)")
    parser.add_argument(
        "--fail",
        type=parse_fault,
        action="append",
        default=[],
        metavar="MODEL=STATUS[,k=v]",
        help="plan a fault (repeatable)",
    )
    parser.add_argument(
        "--latency",
        type=parse_latency,
        action="append",
        default=[],
        metavar="MODEL=SECONDS[,p99=SECONDS]",
        help="added latency per model; with p99, heavy-tailed (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        from ._server import ProviderSimulator
    except ModuleNotFoundError as exc:  # installed without the [sim] extra
        clearer = missing_extra(
            exc, "sim", ("uvicorn", "starlette", "httpx"), what="llm-failover-sim"
        )
        if clearer is None:
            raise
        print(clearer, file=sys.stderr)
        return 2
    sim = ProviderSimulator(args.host, args.port).start()
    for model, fault in args.fail:
        sim.state.add_fault(model, fault)
    for model, seconds, tail in args.latency:
        seed = tail.get("seed")
        sim.set_latency(
            model, seconds, p99=tail.get("p99"), seed=None if seed is None else int(seed)
        )
    print(f"llm-failover simulator on {sim.base_url}", flush=True)
    print(f"  OpenAI base URL:    {sim.openai_base_url}", flush=True)
    print(f"  Anthropic base URL: {sim.anthropic_base_url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
