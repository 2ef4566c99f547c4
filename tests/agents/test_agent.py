"""A real pydantic-ai Agent, its model scripted with FunctionModel (no LLM),
driving `sandpit mcp` through MCPToolset: once over stdio, once over HTTP.

It writes a Python file, runs it with `execute`, edits it with `edit_file`,
runs it again and greps it, and the answers it got are asserted.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from pydantic_ai import Agent, DeferredToolRequests, DeferredToolResults
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from sandpit_server import BIN, COMMON, http_server, http_toolset, stdio_toolset

PREFIX = os.environ["SANDPIT_USER_PREFIX"]

APP = "def greet(name):\n    return f'Hello, {name}!'\n\nprint(greet('sandpit'))\n"

STEPS = [
    ("write_file", {"path": "app.py", "content": APP}),
    ("execute", {"command": "python3 app.py"}),
    ("edit_file", {"path": "app.py", "old_string": "Hello", "new_string": "Goodbye"}),
    ("execute", {"command": "python3 app.py; echo status $?"}),
    ("grep", {"pattern": "Goodbye", "output_mode": "content"}),
    ("execute", {"command": "python3 -c 'import sys; sys.exit(4)'"}),
]

EXPECTED = [
    "Wrote 4 lines to app.py",
    "Hello, sandpit!\n",
    "Edited app.py: replaced 1 occurrence(s)",
    "Goodbye, sandpit!\nstatus 0\n",
    "Matches for 'Goodbye':\n  ./app.py:2:     return f'Goodbye, {name}!'",
    "Command failed (exit code 4):\n",
]


def scripted(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Calls the next step's tool, or ends once every step has answered."""
    names = {tool.name for tool in info.function_tools}
    missing = {"ls", "read_file", "write_file", "edit_file", "glob", "grep", "execute"} - names
    assert not missing, f"tools missing from the MCP toolset: {missing}"
    done = sum(
        1
        for message in messages
        for part in message.parts
        if isinstance(part, ToolReturnPart)
    )
    if done < len(STEPS):
        tool, args = STEPS[done]
        return ModelResponse(parts=[ToolCallPart(tool, args)])
    return ModelResponse(parts=[TextPart("done")])


async def run(label: str, toolset) -> None:
    agent = Agent(FunctionModel(scripted), toolsets=[toolset])
    async with agent:
        result = await agent.run("Write, run, edit and grep a small Python program.")
    returns = [
        part.model_response_str()
        for message in result.all_messages()
        for part in message.parts
        if isinstance(part, ToolReturnPart)
    ]
    assert result.output == "done", result.output
    assert returns == EXPECTED, f"{label}: got\n{returns!r}\nexpected\n{EXPECTED!r}"
    print(f"{label}: {len(returns)} tool calls answered as expected")


# Exit codes the activity log must show for each step (None: no command).
EXIT_CODES = [None, 0, None, 0, None, 4]


def check_activity(label: str, user: str) -> None:
    """Every call of the run is in the activity log, in order, as `mcp`'s,
    with its exit code."""
    listed = subprocess.run(
        [BIN, *COMMON, "activity", "--user", user, "--source", "mcp", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
    got = [(row["action"], row["exit_code"], row["source"]) for row in rows]
    expected = [(tool, code, "mcp") for (tool, _), code in zip(STEPS, EXIT_CODES)]
    assert got == expected, f"{label}: activity log\n{got!r}\nexpected\n{expected!r}"
    print(f"{label}: the activity log lists all {len(rows)} calls")


async def approval(toolset) -> None:
    """The README's recipe: `execute`, and only it, waits for a human."""
    guarded = toolset.approval_required(lambda ctx, tool_def, args: tool_def.name == "execute")

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        returned = [
            part for message in messages for part in message.parts if isinstance(part, ToolReturnPart)
        ]
        if not returned:
            return ModelResponse(
                parts=[
                    ToolCallPart("ls", {}),
                    ToolCallPart("execute", {"command": "echo approved"}),
                ]
            )
        return ModelResponse(parts=[TextPart(returned[-1].model_response_str())])

    agent = Agent(FunctionModel(model), toolsets=[guarded], output_type=[str, DeferredToolRequests])
    async with agent:
        first = await agent.run("List, then run a command.")
        assert isinstance(first.output, DeferredToolRequests), first.output
        assert [call.tool_name for call in first.output.approvals] == ["execute"], first.output
        results = DeferredToolResults(
            approvals={call.tool_call_id: True for call in first.output.approvals}
        )
        second = await agent.run(
            message_history=first.all_messages(), deferred_tool_results=results
        )
    assert second.output == "approved\n", second.output
    print("approval: execute waited for approval, then ran")


async def main() -> None:
    await run("stdio", stdio_toolset(f"{PREFIX}-stdio"))
    check_activity("stdio", f"{PREFIX}-stdio")
    token = f"agent-test-token-{PREFIX}"
    with http_server({token: f"{PREFIX}-http"}) as url:
        await run("http", http_toolset(url, token))
        check_activity("http", f"{PREFIX}-http")
        await approval(http_toolset(url, token))


if __name__ == "__main__":
    asyncio.run(main())
    print("agent test passed")
    sys.exit(0)
