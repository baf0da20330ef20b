"""JSON text as the proxy writes it: to the upstream, to the client and to the log.

Compact (no spaces after ``,`` and ``:``) and with non-ASCII characters kept as they are, as
Kong's cjson writes them. Text, not bytes: a caller that writes to the network encodes it.
"""

from __future__ import annotations

import json
from typing import Any


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
