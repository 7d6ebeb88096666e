"""A scripted outage against the bundled simulator, through the framework-neutral core.

Three models behind real SDK clients (openai, anthropic) on loopback: the primary starts
returning 503s, then the backup's key is revoked (401), then everything recovers. Each
request prints who served it and after how many failed attempts; each failover decision
prints as it happens. Runs in a few seconds, offline, with no API key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import anthropic
import openai

import failover_core as fc
from failover_core.simulator import ProviderSimulator


@dataclass(frozen=True)
class OpenAIEntry:
    key: str
    client: openai.OpenAI
    model: str

    def ask(self, prompt: str) -> str:
        out = self.client.chat.completions.create(
            model=self.model, messages=[{"role": "user", "content": prompt}]
        )
        return out.choices[0].message.content or ""


@dataclass(frozen=True)
class AnthropicEntry:
    key: str
    client: anthropic.Anthropic
    model: str

    def ask(self, prompt: str) -> str:
        out = self.client.messages.create(
            model=self.model, max_tokens=256, messages=[{"role": "user", "content": prompt}]
        )
        block: Any = out.content[0]
        return str(block.text)


def show(event: fc.FailoverEvent) -> None:
    benched = f"benched {event.benched_for.total_seconds():.0f}s" if event.benched_for else "-"
    print(
        f"    ! {event.model}: {event.kind.value} (HTTP {event.status}) on attempt "
        f"{event.attempt}, {benched}, next: {event.next_model or 'none'}"
    )


def main() -> None:
    with ProviderSimulator() as sim:
        sim.set_latency("*", 0.01)
        oai = openai.OpenAI(base_url=sim.openai_base_url, api_key="sim", max_retries=0)
        claude = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="sim", max_retries=0)
        entries = [
            OpenAIEntry("openai/gpt-4o-mini", oai, "gpt-4o-mini"),
            AnthropicEntry("anthropic/claude-haiku", claude, "claude-haiku"),
            OpenAIEntry("openai/gpt-4.1-nano", oai, "gpt-4.1-nano"),
        ]
        policy = fc.FailoverPolicy.build(
            max_retries=2, cooldown=timedelta(seconds=2), backoff=lambda n: 0.05, observer=show
        )
        chain = fc.FailoverChain(entries, policy)
        script = {
            4: ("primary starts returning 503", lambda: sim.fail("gpt-4o-mini", 503, times=None)),
            9: ("backup's key revoked: 401", lambda: sim.fail("claude-haiku", 401, times=None)),
            13: ("providers recover", sim.clear),
        }
        for n in range(1, 19):
            if n in script:
                title, action = script[n]
                action()
                print(f"--- {title}")
            if n == 16:
                time.sleep(2.1)  # let the cooldowns run out
                print("--- cooldowns over")
            started = time.perf_counter()
            try:
                prompt = f"request {n}"
                answer, served = chain.invoke(lambda e, p=prompt: e.ask(p))
            except fc.AllModelsFailedError as exc:
                print(f"#{n:02d} FAILED: {exc}")
                continue
            ms = (time.perf_counter() - started) * 1000
            print(
                f"#{n:02d} served by {served.model:<24} after {served.failed_attempts} "
                f"failed attempt(s), {ms:5.0f} ms: {answer}"
            )
        benched = ", ".join(b.model for b in fc.list_benched()) or "none"
        print(f"benched now: {benched}")
        print(f"calls per model: {sim.state.call_counts()}")


if __name__ == "__main__":
    main()
