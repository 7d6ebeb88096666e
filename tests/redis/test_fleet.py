"""Fleet-wide health on a real Redis: shared benches, one probe, fail-open, the CLI."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis

import failover_core as fc
from failover_core.redis_store import RedisHealthStore
from tests.core.fakes import FakeEntry, HTTPError
from tests.redis.conftest import RedisServer

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str, **env: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
        env={**os.environ, **env},
    )
    return out.stdout.strip()


def lifted_within(seconds: float, registry: fc.HealthRegistry, key: str) -> bool:
    """Whether ``registry`` sees ``key`` unbenched within ``seconds``: another worker's
    change reaches each worker's cached copy in milliseconds, not at the same instant."""
    deadline = time.monotonic() + seconds
    while registry.is_benched(key):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def test_records_round_trip_with_a_ttl(redis_url: str) -> None:
    store = RedisHealthStore.from_url(redis_url)
    registry = fc.HealthRegistry(store)
    until = registry.bench_now("openai/gpt-4o", timedelta(seconds=30))
    other = fc.HealthRegistry(RedisHealthStore.from_url(redis_url))
    assert other.is_benched("openai/gpt-4o")
    assert other.benched_until("openai/gpt-4o") == until
    ttl_ms = redis.Redis.from_url(redis_url).pttl("llm-failover:health:openai/gpt-4o")
    assert 30_000 < ttl_ms <= 30_000 + store.retention * 1000
    assert [b.model for b in other.list()] == ["openai/gpt-4o"]
    assert other.unbench("openai/gpt-4o")
    assert lifted_within(0.05, registry, "openai/gpt-4o"), "the other worker's unbench"


def test_two_processes_share_a_bench(redis_url: str) -> None:
    run_python(
        """
        from datetime import timedelta
        import failover_core as fc
        fc.bench_model("anthropic/claude", timedelta(minutes=5))
        """,
        LLM_FAILOVER_REDIS_URL=redis_url,
    )
    fc.set_health_store(RedisHealthStore.from_url(redis_url))
    assert fc.is_benched("anthropic/claude")
    fc.bench_model("openai/gpt-4o", timedelta(minutes=5))
    seen = run_python(
        "import failover_core as fc; print(fc.is_benched('openai/gpt-4o'))",
        LLM_FAILOVER_REDIS_URL=redis_url,
    )
    assert seen == "True"


def test_concurrent_workers_never_lose_a_strike(redis_url: str) -> None:
    registry = fc.HealthRegistry(RedisHealthStore.from_url(redis_url))
    cooldown = timedelta(minutes=5)

    def fail() -> None:
        for _ in range(20):
            registry.record_failure("m/a", cooldown, exhausted=False, strike_limit=10**6)

    threads = [threading.Thread(target=fail) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    record = registry.store.get("m/a")
    assert record is not None and record.strikes == 200


PROBE_WORKER = """
import sys, threading, time
import redis
import failover_core as fc
from failover_core.redis_store import RedisHealthStore
url, threads = sys.argv[1], int(sys.argv[2])
registry = fc.HealthRegistry(RedisHealthStore.from_url(url, timeout=5.0))
client = redis.Redis.from_url(url)
while not client.exists("go"):
    time.sleep(0.001)
answers = []
workers = [threading.Thread(target=lambda: answers.append(registry.enter("m/a")))
           for _ in range(threads)]
for w in workers: w.start()
for w in workers: w.join()
print(answers.count("probe"), answers.count("closed"))
"""


def test_fifty_threads_and_four_processes_make_exactly_one_probe(redis_url: str) -> None:
    store = RedisHealthStore.from_url(redis_url, timeout=5.0)
    registry = fc.HealthRegistry(store)
    registry.bench_now("m/a", timedelta(seconds=60))
    # The bench ended a moment ago: rewrite its end into the past (no real waiting).
    store.update("m/a", lambda r: r and fc.HealthRecord(until=time.time() - 1, cooldown=60))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PROBE_WORKER, redis_url, "10"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(4)
    ]
    time.sleep(0.3)  # let the workers start and wait on the signal
    answers: list[str] = []
    barrier = threading.Barrier(50)

    def race() -> None:
        barrier.wait()
        answers.append(registry.enter("m/a"))

    threads = [threading.Thread(target=race) for _ in range(50)]
    redis.Redis.from_url(redis_url).set("go", 1)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    totals = [tuple(map(int, p.communicate(timeout=60)[0].split())) for p in procs]
    probes = answers.count("probe") + sum(p for p, _ in totals)
    closed = answers.count("closed") + sum(c for _, c in totals)
    assert (probes, closed) == (1, 89)


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_redis_down_mid_run_then_back(
    redis_server: RedisServer, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    monotonic = Monotonic()
    store = fc.FailOpenStore(RedisHealthStore.from_url(redis_url), retry_after=5.0, clock=monotonic)
    registry = fc.HealthRegistry(store)
    a, b = FakeEntry("a/1", [HTTPError(401)]), FakeEntry("b/2")
    chain = fc.FailoverChain([a, b], fc.FailoverPolicy.build(), registry)
    chain.invoke(lambda e: e.call())  # benches a/1 in Redis
    assert fc.HealthRegistry(RedisHealthStore.from_url(redis_url)).is_benched("a/1")

    redis_server.stop()
    c = FakeEntry("c/3", [HTTPError(403)])
    other = fc.FailoverChain([c, b], fc.FailoverPolicy.build(), registry)
    with caplog.at_level(logging.WARNING, logger="llm_failover"):
        started = time.perf_counter()
        served = [other.invoke(lambda e: e.call())[1].model for _ in range(20)]
        elapsed = time.perf_counter() - started
    assert served == ["b/2"] * 20, "every request served"
    assert c.calls == 1, "benches still work, in-process"
    warnings = [r for r in caplog.records if "health store unavailable" in r.getMessage()]
    assert len(warnings) == 1
    assert elapsed < 2.0, "no request waits on the dead Redis"
    assert store.degraded

    redis_server.start()  # empty: it kept nothing on disk
    monotonic.now += 6  # past retry_after
    assert registry.is_benched("c/3")
    assert not store.degraded
    shared = fc.HealthRegistry(RedisHealthStore.from_url(redis_url))
    assert shared.is_benched("c/3"), "the bench made during the outage is shared again"


def test_cli_lists_benches_and_unbenches(redis_url: str) -> None:
    cli = [sys.executable, "-m", "failover_core.cli", "--redis-url", redis_url]

    def run(*args: str) -> str:
        return subprocess.run(
            [*cli, *args], capture_output=True, text=True, check=True, timeout=60
        ).stdout

    assert "benched until" in run("bench", "openai/gpt-4o", "--for", "30m")
    registry = fc.HealthRegistry(RedisHealthStore.from_url(redis_url))
    registry.bench_now("anthropic/claude", timedelta(minutes=5))
    [manual, auto] = sorted(
        json.loads(run("--json", "list")), key=lambda r: r["model"] == "anthropic/claude"
    )
    assert manual["model"] == "openai/gpt-4o" and manual["manual"] is True
    assert 1790 < manual["remaining_seconds"] <= 1800
    assert auto["model"] == "anthropic/claude" and auto["manual"] is False
    table = run("list")
    assert table.splitlines()[0].split()[:2] == ["MODEL", "UNTIL"] and "openai/gpt-4o" in table
    assert json.loads(run("--json", "unbench", "openai/gpt-4o")) == {
        "model": "openai/gpt-4o",
        "was_benched": True,
    }
    assert "was not benched" in run("unbench", "openai/gpt-4o")
    assert lifted_within(0.05, registry, "openai/gpt-4o")


def test_cli_says_plainly_when_redis_is_not_there() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "failover_core.cli", "--redis-url", "redis://127.0.0.1:1/0", "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "ConnectionError" in out.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "failover_core.cli", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "LLM_FAILOVER_REDIS_URL"},
    )
    assert missing.returncode != 0 and "--redis-url" in missing.stderr


def test_readme_operator_block_runs(redis_url: str) -> None:
    readme = (ROOT / "docs" / "guides" / "cli.md").read_text()  # the CLI's guide
    [block] = [b for b in readme.split("```bash\n")[1:] if "llm-failover list" in b]
    cli = Path(sys.executable).parent / "llm-failover"
    env = {**os.environ, "LLM_FAILOVER_REDIS_URL": redis_url}
    outputs = []
    for line in block.split("```")[0].splitlines():
        args = line.split("#")[0].split()
        assert args[0] == "llm-failover"
        outputs.append(
            subprocess.run(
                [str(cli), *args[1:]],
                capture_output=True,
                text=True,
                check=True,
                env=env,
                timeout=60,
            ).stdout
        )
    assert "no model is benched" in outputs[0]
    assert "openai/gpt-4o benched until" in outputs[1]
    assert outputs[2].strip() == "openai/gpt-4o unbenched"


def test_a_bad_or_dead_redis_url_never_fails_a_request() -> None:
    code = """
import warnings, failover_core as fc
from datetime import timedelta
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    fc.bench_model("m/a", timedelta(minutes=1))
print(fc.is_benched("m/a"), [str(w.message)[:40] for w in caught])
"""
    bad = run_python(code, LLM_FAILOVER_REDIS_URL="not-a-url://")
    assert bad.startswith("True") and "LLM_FAILOVER_REDIS_URL could not be used" in bad
    dead = run_python(code, LLM_FAILOVER_REDIS_URL="redis://127.0.0.1:1/0")
    assert dead.startswith("True"), "a dead Redis: in-process health, fail-open"
