"""Test double of the official Kairos inference service (benchmarks/common/wam_service), from its
published description: `GET /health`; `POST /infer` whose body is a pickled dict of
infer(robot_state, robot_action_horizon, input_image, prompt, wam_infer_mode, num_inference_steps)
and whose reply is the pickled `(video_path, action)`, action float32 (horizon, action_dim).

Like the real service it unpickles requests with plain pickle.loads (it is the trusted side here).
A real HTTP server process (stdlib http.server), started with `python official_service.py` (https
with `python official_service.py CERT KEY`); it prints `PORT <n>` once it listens on 127.0.0.1.

The reply is chosen by the request's prompt, so one process serves every test:
  "<anything>"             normal: action[k] = robot_state + 0.01 * (k + 1)
  "evil-system:<path>"     a pickle whose reduce calls os.system('touch <path>')
  "evil-eval:<path>"       a pickle whose reduce calls builtins.eval(open(<path>, 'w') ...)
  "evil-nested:<path>"     the os.system pickle inside an otherwise correct reply tuple
  "oversize:<n>"           Content-Length n, then a few bytes
  "stream:<n>"             n bytes without a Content-Length (connection-close framing)
  "slow:<s>"               a normal reply after s seconds
  "trickle:<s>"            headers, then one byte of the body every 0.2 s for s seconds
  "shape" / "float64" / "object" / "list"   a wrong action (extra row / float64 / object dtype / a list)
  "status500"              HTTP 500 with a pickled body
"""
from __future__ import annotations

import os
import pickle
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np


class _Reduce:
    """Pickles as `func(*args)`: what a hostile service can put in a reply."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def malicious(kind: str, marker: str) -> bytes:
    if kind == "evil-system":
        return pickle.dumps(_Reduce(os.system, (f"touch '{marker}'",)))
    if kind == "evil-eval":
        return pickle.dumps(_Reduce(eval, (f"open({marker!r}, 'w').write('pwned')",)))
    action = np.zeros((2, 2), np.float32)
    return pickle.dumps((_Reduce(os.system, (f"touch '{marker}'",)), action))


def normal_action(request: dict) -> np.ndarray:
    state = np.asarray(request["robot_state"], np.float32)
    steps = np.arange(1, int(request["robot_action_horizon"]) + 1, dtype=np.float32)[:, None]
    return (state[None, :] + 0.01 * steps).astype(np.float32)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _send(self, body: bytes, status: int = 200, length: int | None = None):
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            self._send(b'{"status":"ok"}')
        else:
            self._send(b"not found", 404)

    def do_POST(self):
        if self.path != "/infer":
            self._send(b"not found", 404)
            return
        request = pickle.loads(self.rfile.read(int(self.headers["Content-Length"])))  # as the real service does
        prompt = request["prompt"]
        kind, _, arg = prompt.partition(":")
        action = normal_action(request)
        if kind.startswith("evil-"):
            self._send(malicious(kind, arg))
        elif kind == "oversize":
            self._send(b"x" * 16, length=int(arg))
        elif kind == "stream":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            self.wfile.write(b"y" * int(arg))
        elif kind == "slow":
            time.sleep(float(arg))
            self._send(pickle.dumps((None, action)))
        elif kind == "trickle":
            body = pickle.dumps((None, action))
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            end = time.monotonic() + float(arg)
            for i in range(len(body)):
                if time.monotonic() > end:
                    break
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                time.sleep(0.2)
        elif kind == "shape":
            self._send(pickle.dumps((None, np.concatenate([action, action[-1:]]))))
        elif kind == "float64":
            self._send(pickle.dumps((None, action.astype(np.float64))))
        elif kind == "object":
            self._send(pickle.dumps((None, action.astype(object))))
        elif kind == "list":
            self._send(pickle.dumps((None, action.tolist())))
        elif kind == "status500":
            self._send(pickle.dumps("engine failed"), 500)
        else:
            mode = request["wam_infer_mode"]
            self._send(pickle.dumps(("/tmp/video.mp4" if mode == "video" else None, action)))


def main() -> int:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if len(sys.argv) == 3:  # official_service.py CERT KEY: https
        import ssl

        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(sys.argv[1], sys.argv[2])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
