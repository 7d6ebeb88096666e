"""mkdocs hook: every docs/guides/*.md is in the nav, listed or not.

Guides are added by whoever writes a feature; a guide missing from ``nav`` would build
but be unreachable. Those not listed are appended to the Guides section, so the nav in
mkdocs.yml only orders the ones it names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def on_config(config: Any) -> Any:
    guides_dir = Path(config["docs_dir"]) / "guides"
    nav = config["nav"] or []
    section = next(item["Guides"] for item in nav if isinstance(item, dict) and "Guides" in item)
    listed = {entry if isinstance(entry, str) else next(iter(entry.values())) for entry in section}
    for path in sorted(guides_dir.glob("*.md")):
        name = f"guides/{path.name}"
        if name not in listed:
            section.append(name)
    return config
