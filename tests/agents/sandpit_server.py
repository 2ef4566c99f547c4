"""Starting `sandpit mcp` for the agent tests, over stdio or HTTP.

The Rust harness (tests/agents.rs) sets SANDPIT_BIN, SANDPIT_CONFIG and
SANDPIT_WORKSPACE_ROOT, and removes the sandboxes of the users it names.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from fastmcp.client import Client
from fastmcp.client.transports import StdioTransport, StreamableHttpTransport
from pydantic_ai.mcp import MCPToolset

BIN = os.environ["SANDPIT_BIN"]
COMMON = [
    "--config",
    os.environ["SANDPIT_CONFIG"],
    "--workspace-root",
    os.environ["SANDPIT_WORKSPACE_ROOT"],
]


def stdio_toolset(user: str, **kwargs) -> MCPToolset:
    """An MCP toolset that runs `sandpit mcp --user USER` over stdio."""
    transport = StdioTransport(
        command=BIN, args=[*COMMON, "mcp", "--user", user], env=dict(os.environ)
    )
    return MCPToolset(Client(transport, timeout=300), **kwargs)


@contextmanager
def http_server(tokens: dict[str, str]) -> Iterator[str]:
    """`sandpit mcp --listen` with one token per user; yields the /mcp URL.

    `tokens` maps token to user. The server is stopped with SIGTERM after.
    """
    path = os.path.join(os.environ["SANDPIT_WORKSPACE_ROOT"], "..", "tokens.toml")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
        for token, user in tokens.items():
            file.write(f'[[token]]\ntoken = "{token}"\nuser = "{user}"\n\n')
    server = subprocess.Popen(
        [BIN, *COMMON, "mcp", "--listen", "127.0.0.1:0", "--tokens", path],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        deadline = time.monotonic() + 600
        url = None
        while url is None:
            line = server.stderr.readline()
            if not line:
                raise RuntimeError("sandpit mcp --listen exited before listening")
            print("[server]", line.rstrip(), flush=True)
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                url = match.group(1)
            if time.monotonic() > deadline:
                raise RuntimeError("sandpit mcp did not listen within 10 minutes")
        # Keep reading its log so it never blocks on a full pipe.
        threading.Thread(
            target=lambda: [print("[server]", l.rstrip(), flush=True) for l in server.stderr],
            daemon=True,
        ).start()
        yield url
    finally:
        server.terminate()
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise RuntimeError("sandpit mcp did not stop within 30 s of SIGTERM")
        assert code == 0, f"sandpit mcp exited with {code} after SIGTERM"


def http_toolset(url: str, token: str, **kwargs) -> MCPToolset:
    """An MCP toolset over streamable HTTP with a bearer token."""
    transport = StreamableHttpTransport(url, headers={"Authorization": f"Bearer {token}"})
    return MCPToolset(Client(transport, timeout=300), **kwargs)
