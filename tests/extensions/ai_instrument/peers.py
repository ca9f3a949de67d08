"""Test peers: a real llama.cpp OpenAI-compatible server, and a scripted stdlib HTTP server.

The scripted server is a peer, not a mock of the product: it speaks HTTP on loopback, and the
provider talks to it over real sockets exactly as it would to any server.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from symphony.extensions.ai_instrument.providers.embedded import model_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LlamaServer:
    base_url: str
    model: str
    api_key: str
    proc: subprocess.Popen[bytes]
    log_path: Path


@contextmanager
def llama_server(api_key: str, log_path: Path, timeout: float = 180.0) -> Iterator[LlamaServer]:
    """``python -m llama_cpp.server`` serving the bundled GGUF on loopback, with ``--api_key``."""
    port = free_port()
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model_path()),
            "--model_alias",
            "smollm2",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "1024",
            "--n_threads",
            "1",
            "--api_key",
            api_key,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama server exited: {log_path.read_text(errors='replace')}")
            req = urllib.request.Request(
                base + "/models", headers={"Authorization": f"Bearer {api_key}"}
            )
            try:
                with urllib.request.urlopen(req, timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("llama server did not start")
            time.sleep(0.3)
        yield LlamaServer(base, "smollm2", api_key, proc, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


@dataclass
class Scripted:
    """One scripted answer: status, headers, body, and a delay before answering."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0


def sse(*texts: str, model: str = "peer-model") -> bytes:
    events = [
        {"model": model, "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}]}
        for t in texts
    ]
    events.append({"model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + (
        b"data: [DONE]\n\n"
    )


class ScriptedServer:
    """A loopback HTTP server answering POSTs from a script; records what it received."""

    def __init__(self, script: list[Scripted]) -> None:
        self.script = list(script)
        self.received: list[dict[str, str]] = []
        self.times: list[float] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                self.do_POST()

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                self.rfile.read(length)
                outer.received.append(dict(self.headers.items()))
                outer.times.append(time.monotonic())
                step = outer.script.pop(0) if outer.script else Scripted(500, b"script ended")
                time.sleep(step.delay)
                try:
                    self.send_response(step.status)
                    for k, v in step.headers:
                        self.send_header(k, v)
                    if step.status == 200 and not any(
                        k.lower() == "content-type" for k, _ in step.headers
                    ):
                        self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Content-Length", str(len(step.body)))
                    self.end_headers()
                    self.wfile.write(step.body)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
