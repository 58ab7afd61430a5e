"""A stand-in for OpenRouter on 127.0.0.1, answering in its wire format.

Tests queue the exact responses they need; with an empty queue every chat
completion gets a plain canned reply. It runs an asyncio server in a
background thread (or, from the command line, in the foreground), so hundreds
of concurrent connections never queue up behind a small listen backlog.

    python tests/fake_openrouter.py --port 8799 --delay 0.3
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

CANNED_REPLY = "This is a canned reply from the loopback test server, not from a model."


@dataclass
class Respond:
    """Answer with one HTTP response."""

    body: object = None  # dict/list: sent as JSON; str/bytes: sent as they are
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Stream:
    """Answer 200 with server-sent events, written one piece at a time."""

    pieces: list[str]
    delay_s: float = 0.0


@dataclass
class Drop:
    """Close the connection without answering, after an optional delay."""

    delay_s: float = 0.0


@dataclass
class Seen:
    """A request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def prompt(self) -> str:
        return self.json()["messages"][-1]["content"]


def completion(
    content: str | None = CANNED_REPLY,
    *,
    model: str = "openai/gpt-4o-mini",
    usage: dict | None = None,
    finish_reason: str = "stop",
    provider: str | None = "Loopback",
    gen_id: str = "gen-loopback-1",
) -> dict:
    """A chat completion body in OpenRouter's shape."""
    body: dict = {
        "id": gen_id,
        "object": "chat.completion",
        "created": 1791085542,
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": finish_reason,
                "message": {"role": "assistant", "content": content},
            }
        ],
    }
    if provider is not None:
        body["provider"] = provider
    if usage is not None:
        body["usage"] = usage
    return body


def canned_reply(request: Seen, number: int = 1) -> Respond | Stream:
    """The default answer: the canned text, and token counts from word counts;
    as server-sent events, word by word, when the request asks for a stream."""
    try:
        payload = request.json()
        words = sum(len(m["content"].split()) for m in payload["messages"])
        model = payload.get("model", "openai/gpt-4o-mini")
    except (ValueError, KeyError, TypeError):
        return Respond({"error": {"code": 400, "message": "bad request body"}}, 400)
    usage = {
        "prompt_tokens": words + 8,
        "completion_tokens": len(CANNED_REPLY.split()),
        "total_tokens": words + 8 + len(CANNED_REPLY.split()),
    }
    body = completion(
        model=model,
        usage=usage,
        provider="loopback-test-server",
        gen_id=f"gen-loopback-{number}",
    )
    if payload.get("stream"):
        return Stream(sse_pieces(body), delay_s=0.02)
    return Respond(body)


def sse_pieces(body: dict) -> list[str]:
    """A completion body as a stream: a keep-alive comment, a chunk per word,
    then a chunk with the usage, as OpenRouter sends them."""
    head = {key: body[key] for key in ("id", "model", "provider") if key in body}
    words = body["choices"][0]["message"]["content"].split(" ")
    texts = [word if n == 0 else " " + word for n, word in enumerate(words)]
    chunks = [
        {**head, "choices": [{"index": 0, "delta": {"content": text}}]}
        for text in texts
    ]
    last = {"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}
    chunks.append({**head, "choices": [last], "usage": body.get("usage")})
    events = [f"data: {json.dumps(chunk)}\n\n" for chunk in chunks]
    return [": OPENROUTER PROCESSING\n\n", *events, "data: [DONE]\n\n"]


class FakeOpenRouter:
    """The server. Use as a context manager; `base_url` is what the tool needs."""

    def __init__(self, delay_s: float = 0.0, models_path: str | None = None) -> None:
        self.delay_s = delay_s
        self.models_path = models_path
        self.queue: collections.deque = collections.deque()
        self.requests: list[Seen] = []
        # Answers chat requests when the queue is empty, if set.
        self.responder: Callable[[Seen], Respond | Stream | Drop] | None = None
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    @property
    def chat_requests(self) -> list[Seen]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def enqueue(self, *responses: Respond | Stream | Drop) -> None:
        """Queue answers for the next chat completion requests, in order."""
        self.queue.extend(responses)

    def __enter__(self) -> FakeOpenRouter:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(5)

    def _serve(self, ready: threading.Event) -> None:
        self._loop.run_until_complete(self._serve_until_stopped(ready))
        self._loop.close()

    async def _serve_until_stopped(self, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        server = await self.start()
        ready.set()
        await self._stopping.wait()
        server.close()
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def start(self, port: int = 0) -> asyncio.base_events.Server:
        server = await asyncio.start_server(
            self._handle, "127.0.0.1", port or self.port, backlog=1024
        )
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while await self._answer_one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        except ValueError:  # a request line the server cannot parse
            pass
        finally:
            writer.close()

    async def _answer_one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Read one request and answer it; False once the connection is done."""
        request = await read_request(reader)
        if request is None:
            return False
        self.requests.append(request)
        if request.path.endswith("/models") and request.method == "GET":
            return await self._send_models(writer)
        if self.queue:
            spec = self.queue.popleft()
        elif self.responder is not None:
            spec = self.responder(request)
        else:
            spec = canned_reply(request, len(self.chat_requests))
        await asyncio.sleep(self.delay_s + getattr(spec, "delay_s", 0.0))
        if isinstance(spec, Drop):
            return False
        if isinstance(spec, Stream):
            await send_stream(writer, spec)
            return False
        await send_response(writer, spec)
        return True

    async def _send_models(self, writer: asyncio.StreamWriter) -> bool:
        spec = self.queue.popleft() if self.queue else None
        if spec is None and self.models_path:
            with open(self.models_path, "rb") as f:
                spec = Respond(f.read(), headers={"Content-Type": "application/json"})
        if isinstance(spec, Drop) or spec is None:
            return False
        await send_response(writer, spec)
        return True


async def read_request(reader: asyncio.StreamReader) -> Seen | None:
    """Read one HTTP/1.1 request with a Content-Length body."""
    line = await reader.readline()
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Seen(method, path, headers, body)


async def send_response(writer: asyncio.StreamWriter, spec: Respond) -> None:
    if isinstance(spec.body, (dict, list)):
        body = json.dumps(spec.body).encode()
    elif isinstance(spec.body, str):
        body = spec.body.encode()
    else:
        body = spec.body or b""
    headers = {"Content-Type": "application/json", **spec.headers}
    head = f"HTTP/1.1 {spec.status} X\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(head.encode() + b"\r\n" + body)
    await writer.drain()


async def send_stream(writer: asyncio.StreamWriter, spec: Stream) -> None:
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Connection: close\r\n\r\n"
    )
    for piece in spec.pieces:
        writer.write(piece.encode())
        await writer.drain()
        if spec.delay_s:
            await asyncio.sleep(spec.delay_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per answer")
    parser.add_argument("--models", help="a /models JSON file to serve")
    args = parser.parse_args()
    server = FakeOpenRouter(args.delay, args.models)

    async def serve() -> None:
        running = await server.start(args.port)
        print(f"serving {server.base_url}", flush=True)
        async with running:
            await running.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
