"""The main job: the offline demo runs end to end and tells the outage's story."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_offline_demo_survives_the_scripted_outage() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "outage_demo.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "40 requests served, none failed" in out
    served = dict(re.findall(r"#(\d\d) \w+\s+served by (\S+)", out))
    assert served["01"] == "openai/gpt-4o-mini"
    assert served["09"] == "anthropic/claude-haiku-4-5", "LangChain fails over to Anthropic"
    assert served["10"] == "openai/gpt-4.1-nano", "LlamaIndex skips the model LangChain benched"
    assert served["17"] == "openai/gpt-4.1-nano", "the 401 benches the backup too"
    assert served["33"] == served["40"] == "openai/gpt-4o-mini", "back after the cooldown"
    assert "auth_dead (HTTP 401)" in out and "transient (HTTP 503)" in out
