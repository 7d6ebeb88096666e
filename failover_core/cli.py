"""llm-failover: list, bench and unbench models in the fleet's shared health store.

    llm-failover list                       # the benched models, as a table
    llm-failover list --json
    llm-failover bench openai/gpt-4o --for 30m
    llm-failover unbench openai/gpt-4o

The store is the Redis at ``--redis-url`` (before or after the subcommand) or
``LLM_FAILOVER_REDIS_URL``. Unlike the library, the CLI does not fail open: an operator
wants to know when Redis is not there. Chains key their models ``provider/model``
(``openai/gpt-4o``): a key without a provider is refused unless ``--force`` insists (it
would bench nothing a chain uses). Keys are printed escaped (anyone who may write to Redis
chooses them), and a bad argument is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn, TextIO

from .config.durations import as_duration
from .health.default import REDIS_URL_ENV
from .health.records import BenchedModel
from .health.registry import HealthRegistry
from .telemetry.printable import printable

_DESCRIPTION = "List, bench and unbench models in the fleet's shared health store."


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``1d``, ``1h30m`` or plain seconds: the library's parser."""
    try:
        return as_duration(text, "duration", positive=True)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _Parser(argparse.ArgumentParser):
    """An argument error is one line on stderr (with where to find the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def model_key(text: str) -> str:
    """A model key as the CLI takes it: non-empty, trimmed."""
    key = text.strip()
    if not key:
        raise argparse.ArgumentTypeError("a model key must not be empty")
    return key


def _has_provider(key: str) -> bool:
    provider, _, model = key.partition("/")
    return bool(provider.strip() and model.strip())


def redis_url(text: str) -> str:
    """A Redis URL (``redis://``, ``rediss://`` or ``unix://``), checked before connecting."""
    try:
        from redis.connection import parse_url
    except ImportError:  # said plainly when the store is built
        return text
    try:
        parse_url(text)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(
            f"not a Redis URL: {printable(text)!s:.80} ({exc}); e.g. redis://127.0.0.1:6379/0"
        ) from None
    return text


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
    cells = [[printable(row[h]) for h in headers] for row in rows]
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
    try:
        store = RedisHealthStore.from_url(url, timeout=5.0, cache=False)
    except (ValueError, TypeError) as exc:
        raise SystemExit(f"llm-failover: not a Redis URL: {printable(exc)}") from None
    return HealthRegistry(store)


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = _Parser(prog="llm-failover", description=_DESCRIPTION)
    url_help = f"the fleet's Redis, e.g. redis://127.0.0.1:6379/0 (default: ${REDIS_URL_ENV})"
    parser.add_argument(
        "--redis-url", type=redis_url, default=os.environ.get(REDIS_URL_ENV), help=url_help
    )
    json_help = "print JSON instead of text"
    parser.add_argument("--json", action="store_true", help=json_help)
    # --json and --redis-url are taken after the subcommand too (llm-failover list --json),
    # as the README shows; SUPPRESS keeps the subcommand from resetting one given before it.
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=json_help)
    common.add_argument("--redis-url", type=redis_url, default=argparse.SUPPRESS, help=url_help)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.add_parser("list", help="list benched models", parents=[common])
    bench = commands.add_parser("bench", help="bench a model by hand for a while", parents=[common])
    bench.add_argument("model", type=model_key, help="the model's key, e.g. openai/gpt-4o")
    bench.add_argument(
        "--force",
        action="store_true",
        help="take a key without a provider prefix as it is (chains key models provider/model)",
    )
    bench.add_argument(
        "--for",
        dest="duration",
        type=parse_duration,
        required=True,
        help="how long: 90s, 30m, 2h, 1d or seconds (at most 3650d)",
    )
    unbench = commands.add_parser("unbench", help="bring a model back now", parents=[common])
    unbench.add_argument("model", type=model_key, help="the model's key, e.g. openai/gpt-4o")
    args = parser.parse_args(argv)
    if args.command == "bench" and not args.force and not _has_provider(args.model):
        parser.error(
            f"{printable(args.model)!s} has no provider: chains key models provider/model "
            f"(e.g. openai/{printable(args.model)!s}); --force benches it as it is"
        )

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
                else f"{printable(args.model)} benched until {until.isoformat()}",
                file=out,
            )
        else:
            was = registry.unbench(args.model)
            result = {"model": args.model, "was_benched": was}
            hint = ""
            if not was and not _has_provider(args.model):
                hint = " (chains key models provider/model, e.g. openai/gpt-4o)"
            print(
                json.dumps(result)
                if args.json
                else f"{printable(args.model)} {'unbenched' if was else 'was not benched'}{hint}",
                file=out,
            )
    except Exception as exc:  # the store is down or refused: say so plainly
        print(f"llm-failover: {type(exc).__name__}: {printable(exc)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
