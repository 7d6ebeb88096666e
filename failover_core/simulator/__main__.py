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
import ipaddress
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import fields
from typing import Any, NoReturn

from .._extras import missing_extra
from ._faults import Fault, SimulatorState

_FIELD_HELP = {
    "status": "HTTP status, 400-599 (default 503)",
    "times": "requests it hits (default 1; forever: every request until cleared)",
    "code": "the provider's error code (a default suits the status and the API)",
    "type": "the provider's error type",
    "message": "the provider's error message",
    "latency": "seconds added before answering",
    "retry_after": "seconds in the Retry-After header",
    "after_chunks": "a stream sends this many content chunks, then the error",
    "disconnect": "with after_chunks: drop the connection instead (true/false)",
    "hang": "seconds of silence, then the status (a proxy giving up)",
    "stall_first_token": "a stream sends only keep-alives for this many seconds",
    "stall_after_chunks": "a stream stalls after this many chunks, for stall seconds",
    "stall": "seconds of keep-alives (with stall_after_chunks)",
    "keepalive": "seconds between keep-alives (default 0.1)",
}


def fault_fields_help() -> str:
    """Every field of :class:`Fault`, for ``--help`` (read from the class: never stale)."""
    lines = ["fault fields (--fail MODEL=STATUS,field=value,... or POST /_sim/faults):"]
    for f in fields(Fault):
        lines.append(f"  {f.name:<20}{_FIELD_HELP.get(f.name, '')}".rstrip())
    return "\n".join(lines) + "\n"


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
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(f"bad fault {text!r}: {exc}") from exc


def parse_latency(text: str) -> tuple[str, float, dict[str, float]]:
    """``MODEL=SECONDS``, or ``MODEL=P50,p99=P99[,seed=N]`` for a heavy-tailed delay."""
    model, _, value = text.partition("=")
    first, *rest = value.split(",")
    try:
        options = {k.strip(): float(v) for k, _, v in (part.partition("=") for part in rest)}
        if set(options) - {"p99", "seed"}:
            raise ValueError(f"unknown option {sorted(set(options) - {'p99', 'seed'})[0]!r}")
        if not model.strip():
            raise ValueError("no model")
        seconds = float(first)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected MODEL=SECONDS or MODEL=P50,p99=SECONDS, got {text!r}"
        ) from exc
    try:  # the simulator's own checks, before it starts (negative, NaN, a p99 below p50)
        seed = options.get("seed")
        SimulatorState().set_latency(
            "check", seconds, p99=options.get("p99"), seed=None if seed is None else int(seed)
        )
    except (ValueError, OverflowError) as exc:
        raise argparse.ArgumentTypeError(f"bad latency {text!r}: {exc}") from exc
    return model.strip(), seconds, options


def port(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535 (0: any free port), got {text!r}")
    return value


def host(text: str) -> str:
    """An IP address to bind (a name such as localhost is taken as it is)."""
    looks_numeric = text.replace(".", "").isdigit() or ":" in text
    if looks_numeric:
        try:
            ipaddress.ip_address(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an IP address: {text!r}") from None
    elif not text.strip():
        raise argparse.ArgumentTypeError("the host must not be empty")
    return text


class _Parser(argparse.ArgumentParser):
    """An argument error is one line on stderr (with where to find the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(
        prog="llm-failover-sim",
        description="Fault-injecting OpenAI/Anthropic-compatible server on loopback.",
        epilog=fault_fields_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", type=host, default="127.0.0.1", help="address to bind (default: loopback)"
    )
    parser.add_argument("--port", type=port, default=8099, help="port (0: any free port)")
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
    try:
        sim = ProviderSimulator(args.host, args.port).start()
    except (OSError, OverflowError, RuntimeError) as exc:  # in use, not an address here
        print(f"llm-failover-sim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
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
