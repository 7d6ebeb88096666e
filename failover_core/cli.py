"""llm-failover: list, bench and unbench models in the fleet's shared health store.

    llm-failover list                       # the benched models, as a table
    llm-failover list --json
    llm-failover bench openai/gpt-4o --for 30m
    llm-failover unbench openai/gpt-4o

The store is the Redis at ``--redis-url`` or ``LLM_FAILOVER_REDIS_URL``. Unlike the
library, the CLI does not fail open: an operator wants to know when Redis is not there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, TextIO

from .config.durations import as_duration
from .health.default import REDIS_URL_ENV
from .health.records import BenchedModel
from .health.registry import HealthRegistry

_DESCRIPTION = "List, bench and unbench models in the fleet's shared health store."


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``1d``, ``1h30m`` or plain seconds: the library's parser."""
    try:
        return as_duration(text, "duration", positive=True)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _as_dict(b: BenchedModel, now: datetime) -> dict[str, Any]:
    return {
        "model": b.model,
        "until": b.until.isoformat(),
        "remaining_seconds": round(max((b.until - now).total_seconds(), 0.0), 1),
        "consecutive_fails": b.consecutive_fails,
        "manual": b.manual,
    }


def _table(rows: list[dict[str, Any]], out: TextIO) -> None:
    if not rows:
        print("no model is benched", file=out)
        return
    headers = ["model", "until", "remaining_seconds", "consecutive_fails", "manual"]
    cells = [[str(row[h]) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)), file=out)
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)), file=out)


def _registry(url: str | None) -> HealthRegistry:
    if not url:
        raise SystemExit(
            f"llm-failover: no shared health store: pass --redis-url or set {REDIS_URL_ENV}"
        )
    try:
        from .health.redis.store import RedisHealthStore
    except ImportError:
        raise SystemExit(
            "llm-failover: needs the redis package: pip install 'llm-failover[redis]'"
        ) from None
    return HealthRegistry(RedisHealthStore.from_url(url, timeout=5.0, cache=False))


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="llm-failover", description=_DESCRIPTION)
    parser.add_argument(
        "--redis-url",
        default=os.environ.get(REDIS_URL_ENV),
        help=f"the fleet's Redis (default: ${REDIS_URL_ENV})",
    )
    json_help = "print JSON instead of text"
    parser.add_argument("--json", action="store_true", help=json_help)
    # --json is taken after the subcommand too (llm-failover list --json), as the README
    # shows; SUPPRESS keeps the subcommand from resetting a --json given before it.
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=json_help)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list benched models", parents=[as_json])
    bench = commands.add_parser(
        "bench", help="bench a model by hand for a while", parents=[as_json]
    )
    bench.add_argument("model", help="the model's key, e.g. openai/gpt-4o")
    bench.add_argument(
        "--for",
        dest="duration",
        type=parse_duration,
        required=True,
        help="how long: 90s, 30m, 2h, 1d or seconds (at most 3650d)",
    )
    unbench = commands.add_parser("unbench", help="bring a model back now", parents=[as_json])
    unbench.add_argument("model")
    args = parser.parse_args(argv)

    registry = _registry(args.redis_url)
    now = datetime.now(timezone.utc)
    try:
        if args.command == "list":
            rows = [_as_dict(b, now) for b in registry.list()]
            if args.json:
                print(json.dumps(rows, indent=2), file=out)
            else:
                _table(rows, out)
        elif args.command == "bench":
            until = registry.bench(args.model, args.duration)
            result = {"model": args.model, "benched": True, "until": until.isoformat()}
            print(
                json.dumps(result)
                if args.json
                else f"{args.model} benched until {until.isoformat()}",
                file=out,
            )
        else:
            was = registry.unbench(args.model)
            result = {"model": args.model, "was_benched": was}
            print(
                json.dumps(result)
                if args.json
                else f"{args.model} {'unbenched' if was else 'was not benched'}",
                file=out,
            )
    except Exception as exc:  # the store is down or refused: say so plainly
        print(f"llm-failover: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
