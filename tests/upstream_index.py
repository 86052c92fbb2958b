"""A small upstream index for the proxy's tests: PEP 691 JSON and PEP 503 HTML pages and the
files of locally built distributions, served by a thread of the test process over real HTTP.

It counts requests per path, honours ``If-None-Match``, and can be told to fail (``down``), to
be slow (``delay``) or to serve other bytes than its pages announce (``corrupt``).
"""

import hashlib
import html
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from dists import dist_name, wheel_bytes

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


@dataclass
class UpstreamDist:
    filename: str
    content: bytes
    metadata: str
    upload_time: datetime | None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass
class UpstreamIndex:
    projects: dict[str, list[UpstreamDist]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    down: bool = False
    delay: float = 0.0
    corrupt: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def add(
        self, name: str, version: str, *, age: timedelta | None = timedelta(days=100), **args
    ) -> UpstreamDist:
        filename, content, metadata = wheel_bytes(name, version, **args)
        uploaded = None if age is None else datetime.now(UTC) - age
        dist = UpstreamDist(filename, content, metadata, uploaded)
        self.projects.setdefault(dist_name(name).replace("_", "-"), []).append(dist)
        return dist

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/simple/"

    def count(self, path: str) -> int:
        with self.lock:
            return self.counts.get(path, 0)

    def file_requests(self) -> int:
        with self.lock:
            return sum(n for path, n in self.counts.items() if path.startswith("/files/"))

    def page_json(self, name: str) -> bytes:
        files = [
            {
                "filename": d.filename,
                "url": f"../../files/{name}/{d.filename}",
                "hashes": {"sha256": d.sha256},
                "requires-python": ">=3.8",
                "size": len(d.content),
                "upload-time": d.upload_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                if d.upload_time
                else None,
                "yanked": False,
                "core-metadata": {"sha256": hashlib.sha256(d.metadata.encode()).hexdigest()},
            }
            for d in self.projects[name]
        ]
        versions = sorted({d.filename.split("-")[1] for d in self.projects[name]})
        page = {"meta": {"api-version": "1.1"}, "name": name, "versions": versions, "files": files}
        return json.dumps(page).encode()

    def page_html(self, name: str) -> bytes:
        links = "".join(
            f'<a href="../../files/{name}/{d.filename}#sha256={d.sha256}" '
            f'data-requires-python="{html.escape(">=3.8")}" '
            f'data-core-metadata="sha256={hashlib.sha256(d.metadata.encode()).hexdigest()}">'
            f"{d.filename}</a><br>\n"
            for d in self.projects[name]
        )
        return f"<!DOCTYPE html><html><body>{links}</body></html>".encode()

    def start(self) -> "UpstreamIndex":
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def send(self, status: int, body: bytes = b"", headers: dict | None = None):
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if upstream.server is None:  # stopped: kept-alive connections die too
                    self.close_connection = True
                    return
                path = self.path.split("?")[0]
                with upstream.lock:
                    upstream.counts[path] = upstream.counts.get(path, 0) + 1
                if upstream.delay:
                    time.sleep(upstream.delay)
                if upstream.down:
                    self.send(503, b"down for maintenance")
                    return
                parts = path.strip("/").split("/")
                if parts[0] == "simple" and len(parts) == 2:
                    name = parts[1]
                    if name not in upstream.projects:
                        self.send(404, b"no such project")
                        return
                    wants_json = JSON_TYPE in self.headers.get("Accept", "")
                    body = upstream.page_json(name) if wants_json else upstream.page_html(name)
                    etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                    if self.headers.get("If-None-Match") == etag:
                        self.send(304, b"", {"ETag": etag})
                        return
                    content_type = JSON_TYPE if wants_json else "text/html"
                    self.send(200, body, {"Content-Type": content_type, "ETag": etag})
                    return
                if parts[0] == "files" and len(parts) == 3:
                    name, filename = parts[1], parts[2]
                    for dist in upstream.projects.get(name, []):
                        if filename == dist.filename:
                            body = dist.content
                        elif filename == dist.filename + ".metadata":
                            body = dist.metadata.encode()
                        else:
                            continue
                        if filename in upstream.corrupt:
                            body = body[:-1] + bytes([body[-1] ^ 1])
                        self.send(200, body, {"Content-Type": "application/octet-stream"})
                        return
                self.send(404, b"not found")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
