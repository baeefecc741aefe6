"""Drives `agentsec mcp` with the real Python MCP client (PyPI `mcp` 2.3.0).

Reads a plan (JSON) on stdin, prints what the client saw (JSON) on stdout:
  {"mode": "session" | "auto", "command": [ARGV...], "env": {...},
   "calls": [{"name": TOOL, "arguments": {...}}, ...]}
"session": `ClientSession` over `stdio_client` with the initialize handshake (2025-11-25);
"auto": `Client` in auto mode (2026-07-28 `server/discover`, falling back to initialize).
"""

import asyncio
import json
import sys

from mcp import Client, ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def result(r):
    return {
        "is_error": bool(getattr(r, "is_error", False)),
        "text": [c.text for c in r.content if getattr(c, "type", "") == "text"],
        "structured": getattr(r, "structured_content", None),
    }


def tools(listed):
    return [
        {"name": t.name, "description": t.description, "input_schema": t.input_schema}
        for t in listed.tools
    ]


async def session_mode(plan, params):
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            listed = await session.list_tools()
            results = [
                result(await session.call_tool(c["name"], c.get("arguments")))
                for c in plan["calls"]
            ]
            return {
                "protocol": init.protocol_version,
                "tools": tools(listed),
                "results": results,
            }


async def auto_mode(plan, params):
    async with Client(params, mode="auto") as client:
        listed = await client.list_tools()
        results = [
            result(await client.call_tool(c["name"], c.get("arguments")))
            for c in plan["calls"]
        ]
        return {
            "protocol": client.protocol_version,
            "tools": tools(listed),
            "results": results,
        }


def main():
    plan = json.load(sys.stdin)
    params = StdioServerParameters(
        command=plan["command"][0], args=plan["command"][1:], env=plan.get("env")
    )
    run = session_mode if plan["mode"] == "session" else auto_mode
    out = asyncio.run(asyncio.wait_for(run(plan, params), timeout=60))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
