"""Drives Patchbay's MCP server with the official MCP Python SDK, as an agent would.

Usage:
  client.py http <mcp-url> <api-key> <tool> <arguments-json> <bad-arguments-json> [<patchbay-url> <connection-to-disconnect> <webhook-path> <webhook-token> <webhook-body-file>]
  client.py stdio <patchbay-binary> <user> <tool> <arguments-json> <bad-arguments-json>

Lists the tools and resources (and stops there when <tool> is `-`), calls <tool> with the arguments and with arguments it refuses, lists and reads the resources, and, over HTTP when a connection is
given, disconnects it through the JSON API and waits for tools/list_changed, then
subscribes to patchbay://alerts, delivers the webhook and waits for
resources/updated.
Prints one JSON object with what it saw.
"""

import asyncio
import json
import os
import sys

import httpx
import mcp.types as types
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamablehttp_client


def tool_summary(tool):
    hints = tool.annotations
    return {
        "name": tool.name,
        "description": tool.description,
        "input_schema": tool.inputSchema,
        "read_only": None if hints is None else hints.readOnlyHint,
    }


def call_summary(result):
    return {
        "is_error": bool(result.isError),
        "structured": result.structuredContent,
        "text": [block.text for block in result.content if block.type == "text"],
    }


async def exercise(session, tool, arguments, bad_arguments, changed, disconnect, updated, deliver):
    await session.initialize()
    seen = {"tools": [tool_summary(t) for t in (await session.list_tools()).tools]}
    seen["resources"] = [str(r.uri) for r in (await session.list_resources()).resources]
    if tool == "-":
        return seen
    seen["call"] = call_summary(await session.call_tool(tool, arguments))
    seen["bad_call"] = call_summary(
        await session.call_tool(tool, bad_arguments)
    )
    try:
        await session.call_tool("no_such_tool__anything", {})
        seen["unknown_tool"] = "answered"
    except Exception as error:  # the protocol error a client raises
        seen["unknown_tool"] = str(error)
    alerts = await session.read_resource("patchbay://alerts")
    seen["alerts"] = json.loads(alerts.contents[0].text)
    if disconnect is not None:
        await disconnect()
        await asyncio.wait_for(changed.wait(), 20)
        seen["tools_after_disconnect"] = [
            t.name for t in (await session.list_tools()).tools
        ]
    if deliver is not None:
        await session.subscribe_resource("patchbay://alerts")
        await deliver()
        seen["updated_uri"] = await asyncio.wait_for(updated, 20)
        after = await session.read_resource("patchbay://alerts")
        seen["alerts_after_update"] = json.loads(after.contents[0].text)
    return seen


async def main():
    mode = sys.argv[1]
    changed = asyncio.Event()
    updated = asyncio.get_running_loop().create_future()

    async def on_message(message):
        if isinstance(message, types.ServerNotification):
            if isinstance(message.root, types.ToolListChangedNotification):
                changed.set()
            if isinstance(message.root, types.ResourceUpdatedNotification):
                if not updated.done():
                    updated.set_result(str(message.root.params.uri))

    if mode == "http":
        url, key, tool = sys.argv[2], sys.argv[3], sys.argv[4]
        arguments, bad_arguments = json.loads(sys.argv[5]), json.loads(sys.argv[6])
        disconnect = deliver = None
        if len(sys.argv) > 8:
            base, connection = sys.argv[7], sys.argv[8]
            path, token, body_file = sys.argv[9], sys.argv[10], sys.argv[11]

            async def deliver():
                with open(body_file, "rb") as body:
                    content = body.read()
                async with httpx.AsyncClient() as http:
                    answer = await http.post(
                        f"{base}{path}",
                        content=content,
                        headers={
                            "content-type": "application/json",
                            "x-patchbay-token": token,
                        },
                    )
                    answer.raise_for_status()

            async def disconnect():
                async with httpx.AsyncClient() as http:
                    answer = await http.delete(
                        f"{base}/api/connections/{connection}",
                        headers={"authorization": f"Bearer {key}"},
                    )
                    answer.raise_for_status()

        headers = {"authorization": f"Bearer {key}"}
        async with streamablehttp_client(url, headers=headers) as (read, write, _):
            async with ClientSession(read, write, message_handler=on_message) as session:
                seen = await exercise(
                    session, tool, arguments, bad_arguments, changed, disconnect,
                    updated, deliver,
                )
    else:
        binary, user, tool = sys.argv[2], sys.argv[3], sys.argv[4]
        arguments, bad_arguments = json.loads(sys.argv[5]), json.loads(sys.argv[6])
        server = StdioServerParameters(
            command=binary, args=["mcp", "--user", user], env=dict(os.environ)
        )
        async with stdio_client(server) as (read, write):
            async with ClientSession(read, write, message_handler=on_message) as session:
                seen = await exercise(
                    session, tool, arguments, bad_arguments, changed, None, updated, None
                )
    print(json.dumps(seen))


asyncio.run(main())
