"""Rebuild ``../kong-lua-exchanges.json``: run the cases (``cases.py``) through Kong's own Lua
with ``driver.lua`` and record what it answered, with the deviations the proxy keeps on purpose.

usage: python build.py KONG_LUA_DIR   (needs ``luajit`` on PATH; see README.md)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from cases import CASES

HERE = Path(__file__).parent
OUT = HERE.parent / "kong-lua-exchanges.json"
SOURCE = (
    "Kong/kong kong/llm/drivers/llama2.lua and openai.lua as at 39654d6c2, shared.lua as at "
    "007d34e64 (the newest copies readable), run under OpenResty's LuaJIT with lua-cjson as Kong "
    "configures it (precision 16, array_mt for client bodies, int64 integer tokens)"
)
LUA_ERROR_SURFACED = (
    "The copy of Kong's drivers that was run answers a Lua error inside a transformer with "
    "'unexpected_error'; Kong at 22246ef28c puts the pcall's error in the 500, location first "
    "(issue 11's measurement; there llama2.lua's from_raw is one line lower). The proxy follows "
    "22246ef28c, with Kong's install path in front."
)
OLLAMA_TOOLS = (
    "The copy of to_ollama that was run drops `tools` and `tool_choice`; Kong at 22246ef28c "
    "passes them to Ollama (shared/reference/kong_semantics.md section 3.4). The proxy follows "
    "22246ef28c."
)
KONG_LUA = "/usr/local/share/lua/5.1/"


def surfaced(reply: str, lua_error: str) -> str:
    """Kong's 500 with the Lua error in place of 'unexpected_error', as 22246ef28c writes it."""
    error = re.sub(r"llama2\.lua:(\d+):", lambda m: f"llama2.lua:{int(m[1]) + 1}:", lua_error)
    error = re.sub(r"^/usr/share/lua/5\.1/", KONG_LUA, error)  # Penlight, where Kong installs it
    message = json.loads(reply)["error"]["message"].replace("unexpected_error", error)
    text = json.dumps({"error": {"message": message}}, ensure_ascii=False, separators=(",", ":"))
    return text.replace("/", "\\/")


def exchange(case: dict[str, Any], kong: dict[str, Any]) -> dict[str, Any]:
    options = json.loads(case["options_json"])
    if case["name"] != "llama2":
        options["name"] = case["name"]
    recorded: dict[str, Any] = {
        "case": case["case"],
        "source": SOURCE,
        "format": case["format"],
        "route_type": case["route_type"],
        "options": options,
        "request": case["request"],
        "upstream_reply": case["upstream_reply"],
        "upstream": kong.get("upstream"),
        "status": kong["status"],
        "reply": kong["reply"],
    }
    if kong.get("lua_error"):
        recorded["lua_error"] = kong["lua_error"]
    if kong["status"] == 500 and kong.get("lua_error") and "unexpected_error" in kong["reply"]:
        recorded["deviation"] = {
            "reason": LUA_ERROR_SURFACED,
            "reply": surfaced(kong["reply"], kong["lua_error"]),
        }
    request = json.loads(case["request"])
    if case["format"] == "ollama" and {"tools", "tool_choice"} & set(request):
        added = "".join(
            f",{json.dumps(name)}:{json.dumps(request[name])}"
            for name in ("tools", "tool_choice")
            if name in request
        )
        upstream = kong["upstream"][:-1] + added + "}"  # JSON text without slashes or numbers
        recorded["deviation"] = {"reason": OLLAMA_TOOLS, "upstream": upstream}
    return recorded


def main(kong_lua_dir: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        cases_file = Path(scratch) / "cases.json"
        cases_file.write_text(json.dumps(CASES))
        ran = subprocess.run(
            ["luajit", str(HERE / "driver.lua"), kong_lua_dir, str(cases_file)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    results = json.loads(ran.stdout)
    exchanges = [exchange(case, kong) for case, kong in zip(CASES, results, strict=True)]
    OUT.write_text(json.dumps(exchanges, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(exchanges)} exchanges written to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
