"""`parley` as a person uses it, in a pseudo-terminal: `chat` with tokens and tool calls shown
as they happen, Ctrl-C cancelling the turn in flight (on the server too) and the session
going on, Ctrl-D ending it; `deploy` drawing a canary's stages, split and health live. And
`chat -m` for scripts, one JSON line per frame."""

import asyncio
import fcntl
import json
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from cli_runner import PARLEY
from cli_runner import Cli
from cli_runner import cli_for
from e2e_support import World
from e2e_support import call

from parley.devstack.stack import Stack

_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
"""Terminal control sequences (styles, cursor moves): not what a person reads."""

# Makes the terminal on stdin the controlling terminal of a new session, so that Ctrl-C typed
# into it reaches the program as SIGINT, then becomes the program. SIGINT goes back to its
# default first: a test run started in the background of a shell has it ignored, the program
# would inherit that, and Python leaves an ignored SIGINT ignored (no KeyboardInterrupt).
_SESSION = (
    "import fcntl, os, signal, sys, termios; os.setsid(); fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
)


class Terminal:
    """A program running in a pseudo-terminal: what it printed, and keys typed into it."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.fd, slave = os.openpty()
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
        self.process = subprocess.Popen(
            [sys.executable, "-c", _SESSION, *argv],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
        )
        os.close(slave)
        self.raw = ""
        self._mark = 0

    @property
    def screen(self) -> str:
        """Everything printed so far, without control sequences."""
        return _ESCAPES.sub("", self.raw)

    def _read(self, wait: float) -> str:
        ready, _, _ = select.select([self.fd], [], [], wait)
        if not ready:
            return ""
        try:
            return os.read(self.fd, 65536).decode(errors="replace")
        except OSError:  # the program ended
            return ""

    async def expect(self, text: str, within: float = 60) -> None:
        """Wait until ``text`` is printed after what was last expected."""
        deadline = time.monotonic() + within
        while (found := self.screen.find(text, self._mark)) < 0:
            assert time.monotonic() < deadline, f"{text!r} not shown; screen: {self.screen!r}"
            self.raw += await asyncio.to_thread(self._read, 0.2)
        self._mark = found + len(text)

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def stop(self) -> None:
        """Kill the program if it still runs, and reap it."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    async def exit_code(self, within: float = 30) -> int:
        code = await asyncio.to_thread(self.process.wait, within)
        os.close(self.fd)
        return code


@pytest.fixture
def cli(stack: Stack, namespace: str, tmp_path: Path) -> Cli:
    return cli_for(stack, namespace, tmp_path)


def _agent(cli: Cli, name: str) -> str:
    tools = [
        {"name": "calculator"},
        {"name": "http_request", "config": {"allowed_hosts": ["127.0.0.1"]}},
    ]
    spec = json.dumps({"name": name, "tools": tools})
    agent: dict[str, str] = cli.json("agents", "create", "-f", "-", "--start", stdin=spec)
    return agent["id"]


async def test_chat_streams_tool_calls_as_they_happen_and_ctrl_c_cancels_the_turn(
    cli: Cli, world: World
) -> None:
    agent_id = await asyncio.to_thread(_agent, cli, "talker")
    term = Terminal([str(PARLEY), "chat", "talker"], cli.env)
    try:
        await term.expect("you> ")
        term.type(call("calculator", expression="6*7") + "\r")
        await term.expect("⚙ calculator")
        await term.expect("↳ 42")
        await term.expect("results: calculator: 42")
        await term.expect("completed")
        await term.expect("you> ")

        world.reset()
        term.type(call("http_request", url=world.url("slow-chat")) + "\r")
        await term.expect("⚙ http_request")
        await asyncio.wait_for(world.was_held("slow-chat").wait(), 30)
        term.type("\x03")  # Ctrl-C, while the tool call is in flight
        await term.expect("cancelled")
        await term.expect("you> ")

        term.type("still there?\r")  # the session goes on, in the same conversation
        await term.expect("echo: still there?")
        await term.expect("you> ")
        term.type("\x04")  # Ctrl-D
        assert await term.exit_code() == 0
    finally:
        world.release.set()
        term.stop()

    cancelled = await asyncio.to_thread(
        cli.ok,
        "events",
        "tail",
        "--type",
        "turn.cancelled",
        "--agent",
        "talker",
        "--from",
        "0",
        "--count",
        "1",
        "-o",
        "json",
        timeout=30,
    )
    [event] = cancelled.lines()
    assert event["data"]["agent_id"] == agent_id
    turns = await asyncio.to_thread(
        cli.ok,
        "events",
        "tail",
        "--type",
        "turn.started",
        "--agent",
        "talker",
        "--from",
        "0",
        "--count",
        "3",
        "-o",
        "json",
        timeout=30,
    )
    sessions = {e["data"]["session_id"] for e in turns.lines()}
    assert len(sessions) == 1  # one conversation, continued after the cancelled turn


def test_chat_with_a_message_prints_every_frame_as_a_json_line(cli: Cli) -> None:
    _agent(cli, "scripted")
    frames = cli.ok(
        "chat", "scripted", "-m", call("calculator", expression="2**10"), "-o", "json"
    ).lines()
    kinds = [f["event"] for f in frames]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert kinds.index("tool_call") < kinds.index("tool_result") < kinds.index("token")
    call_frame = frames[kinds.index("tool_call")]["data"]
    assert (call_frame["name"], call_frame["arguments"]) == ("calculator", {"expression": "2**10"})
    assert frames[-1]["data"]["response"] == "results: calculator: 1024"
    conversation = frames[0]["data"]["conversation_id"]
    again = cli.ok("chat", "scripted", "-m", "more", "-c", conversation, "-o", "json").lines()
    assert again[-1]["data"]["conversation_id"] == conversation
    cli.fails(3, "AGENT_NOT_FOUND", "chat", "nobody", "-m", "hi")
    cli.json("agents", "stop", "scripted")
    cli.fails(5, "AGENT_NOT_RUNNING", "chat", "scripted", "-m", "hi")


async def test_a_canary_is_drawn_live_in_a_terminal_stage_by_stage(cli: Cli) -> None:
    await asyncio.to_thread(_agent, cli, "rolled")
    (cli.cwd / "v2.json").write_text(json.dumps({"name": "rolled", "system_prompt": "Brief."}))
    argv = [
        str(PARLEY),
        "deploy",
        "rolled",
        "-f",
        str(cli.cwd / "v2.json"),
        "--canary",
        "10:2s,50:2s",
    ]
    term = Terminal(argv, cli.env)
    try:
        await term.expect("v2 of rolled: rolling_out")
        await term.expect("new 10%")
        await term.expect("health: 0 samples, 0 errors")
        await term.expect("new 50%")
        await term.expect("completed")
        await term.expect("new 100%")
        assert await term.exit_code() == 0
    finally:
        term.stop()
    assert "STAGE" in term.screen and "SPLIT %" in term.screen
