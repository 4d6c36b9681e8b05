"""A real kairos-serve process over real sockets: the protocol's refusals and the faults of issue 14.

Every test ends by checking that the server still serves (a fresh robot gets a chunk)."""
from __future__ import annotations

import asyncio
import json
import os
import pickle
import socket
import subprocess
import sys
import threading
import urllib.request

import msgpack
import numpy as np
import pytest
from websockets.asyncio.client import connect as aconnect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import connect

from kairos_ros.backends import make_backend
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.remote import protocol as p
from serve_util import TOKEN, ServeProcess, observation, wait_for

SPEC = load_embodiment("aloha")
MAX_SESSIONS = 8
HELLO = {"type": "hello", "protocol": p.PROTOCOL, "embodiment": SPEC.name, "slot_names": list(SPEC.slot_names)}


@pytest.fixture(scope="module")
def server():
    srv = ServeProcess("--max-sessions", str(MAX_SESSIONS), "--hello-timeout", "1", "--idle-timeout", "2",
                       "--max-message-bytes", str(1 << 20))
    yield srv
    srv.stop()
    assert TOKEN not in srv.output()  # never logged


def robot(url: str, **kw):
    os.environ["KAIROS_REMOTE_TOKEN"] = TOKEN
    try:
        return make_backend("remote", SPEC, num_predicted_frames=2, horizon=32, remote_url=url,
                            remote_reply_timeout=5.0, **kw)
    finally:
        del os.environ["KAIROS_REMOTE_TOKEN"]


def serves(url: str) -> bool:
    """A fresh robot connects and gets its own hold chunk."""
    b = robot(url)
    try:
        pred = b.predict([observation(SPEC, 1.0, offset=0.05)], 32, SPEC.default_step_period)
        ref = make_backend("hold", SPEC).predict([observation(SPEC, 1.0, offset=0.05)], 32, SPEC.default_step_period)
        return bool(np.array_equal(pred.chunk.values, ref.chunk.values)) and pred.chunk.stamp == 1.0
    finally:
        b.close()


def health(srv) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/healthz", timeout=5) as r:
        return json.loads(r.read())


def raw(srv, token=TOKEN, hello=True):
    ws = connect(srv.url, additional_headers={"Authorization": f"Bearer {token}"} if token else None,
                 compression=None, proxy=None, legacy=True, open_timeout=5)
    if hello:
        ws.send(p.pack(HELLO))
        welcome = p.unpack(ws.recv(timeout=5), 1 << 20)
        assert welcome["type"] == "welcome", welcome
    return ws


def ask(ws, data) -> dict:
    ws.send(data)
    return p.unpack(ws.recv(timeout=5), 1 << 20)


def test_health_metadata_and_a_round_trip(server):
    assert health(server)["status"] == "ok"
    ws = connect(server.url, additional_headers={"Authorization": f"Bearer {TOKEN}"}, compression=None, proxy=None, legacy=True)
    ws.send(p.pack(HELLO))
    welcome = p.unpack(ws.recv(timeout=5), 1 << 20)
    ws.close()
    assert welcome["backend"] == "hold" and welcome["horizon"] == 32 and welcome["embodiment"] == "aloha"
    assert welcome["slot_names"] == list(SPEC.slot_names) and welcome["step_period"] == SPEC.default_step_period
    assert "temporal_mode" in welcome and "server_ms" in welcome["timing"]
    assert serves(server.url)


@pytest.mark.parametrize("token", [None, "", "wrong-token-0123456789abcdef", TOKEN + "x", TOKEN[:-1]])
def test_a_bad_or_missing_token_is_refused_at_the_handshake(server, token):
    headers = None if token is None else {"Authorization": f"Bearer {token}"}
    with pytest.raises(InvalidStatus) as info:
        connect(server.url, additional_headers=headers, compression=None, proxy=None, legacy=True, open_timeout=5)
    assert info.value.response.status_code == 401


def test_a_bad_hello_is_refused_and_closed(server):
    for hello, code in (({**HELLO, "protocol": 99}, p.PROTOCOL_VERSION), ({**HELLO, "embodiment": "franka_panda"},
                                                                         p.MISMATCH),
                        ({"type": "infer", "id": 1}, p.NOT_READY)):
        ws = raw(server, hello=False)
        reply = ask(ws, p.pack(hello))
        assert reply["type"] == "error" and reply["code"] == code and "Traceback" not in reply["message"]
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)


def test_malformed_unknown_and_badly_typed_messages_get_error_codes_and_the_session_goes_on(server):
    ws = raw(server)
    obs = p.observation_to_wire(observation(SPEC, 1.0))
    wrong_dtype = {**obs, "positions": {**obs["positions"], "dtype": "object"}}
    wrong_shape = {**obs, "positions": {"dtype": "float64", "shape": [3], "data": b"\0" * 24}}
    lying_shape = {**obs, "frame": {"encoding": "raw", "data": {"dtype": "uint8", "shape": [100000, 100000, 3],
                                                                "data": b"\0" * 30}}}
    cases = [(b"\xc1\xc1\xc1", p.BAD_MESSAGE), (b"", p.BAD_MESSAGE), (msgpack.packb([1, 2, 3]), p.BAD_MESSAGE),
             (pickle.dumps({"type": "infer"}), p.BAD_MESSAGE),
             (p.pack({"type": "launch_missiles", "id": 1}), p.UNKNOWN_TYPE),
             (p.pack({"type": "infer", "id": 2, "observations": [wrong_dtype]}), p.BAD_ARRAY),
             (p.pack({"type": "infer", "id": 3, "observations": [wrong_shape]}), p.BAD_ARRAY),
             (p.pack({"type": "infer", "id": 4, "observations": [lying_shape]}), p.BAD_ARRAY),
             (p.pack({"type": "infer", "id": 5, "observations": []}), p.BAD_MESSAGE),
             (p.pack({"type": "infer", "id": -1, "observations": [obs]}), p.BAD_MESSAGE),
             (p.pack({"type": "instruction", "id": 6, "text": "a\x00b"}), p.BAD_MESSAGE)]
    for data, code in cases:
        reply = ask(ws, data)
        assert reply["type"] == "error" and reply["code"] == code, (data[:40], reply)
        assert len(reply["message"]) <= 300 and "Traceback" not in reply["message"] and "timing" in reply
    assert ask(ws, p.pack({"type": "ping", "id": 9}))["type"] == "pong"
    assert ask(ws, p.pack({"type": "infer", "id": 10, "observations": [obs]}))["type"] == "result"
    ws.close()
    assert serves(server.url)


def test_an_oversize_message_closes_that_connection_only(server):
    ws = raw(server)
    ws.send(p.pack({"type": "infer", "id": 1, "pad": b"\0" * (2 << 20)}))
    with pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009  # message too big
    assert serves(server.url)


def test_newest_observation_wins_and_every_request_gets_one_reply(server):
    ws = raw(server)
    ids = list(range(100, 140))
    for i in ids:  # no waiting between them: the server answers each, running only the newest it has
        ws.send(p.pack({"type": "infer", "id": i, "observations": [p.observation_to_wire(observation(SPEC, i))]}))
    replies = {}
    while len(replies) < len(ids):
        r = p.unpack(ws.recv(timeout=5), 1 << 20)
        if r["type"] == "frames":
            continue
        assert r["id"] not in replies and r["id"] in ids
        replies[r["id"]] = r
    ws.close()
    assert replies[ids[-1]]["type"] == "result" and replies[ids[-1]]["stamp"] == ids[-1]
    assert all(r["type"] == "result" or r["code"] == p.SUPERSEDED for r in replies.values())


def test_a_silent_client_is_closed(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)  # TCP, never a handshake
    assert sock.recv(1) == b""  # closed by the server after hello_timeout (1 s)
    sock.close()
    ws = raw(server, hello=False)  # handshake, never a hello
    with pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=10)
    assert info.value.rcvd.code == p.CLOSE_NO_HELLO
    ws = raw(server)  # a session that goes quiet
    with pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=10)
    assert info.value.rcvd.code == p.CLOSE_IDLE
    assert wait_for(lambda: health(server)["sessions"] == 0, 10.0)


def test_200_connections_at_once_keep_the_server_serving_with_bounded_memory(server):
    held = robot(server.url)  # a robot connected before the flood keeps being served through it
    assert held.predict([observation(SPEC, 1.0)], 32, SPEC.default_step_period).chunk.stamp == 1.0
    rss_before = server.rss_kib()

    async def one(i):
        try:
            ws = await aconnect(server.url, additional_headers={"Authorization": f"Bearer {TOKEN}"},
                                compression=None, proxy=None, open_timeout=20)
        except InvalidStatus as exc:
            return exc.response.status_code
        except (OSError, asyncio.TimeoutError, InvalidHandshake):
            return "dropped"  # the server's hello_timeout (1 s) ended a handshake it had no time for
        await ws.send(p.pack(HELLO))
        try:
            reply = p.unpack(await ws.recv(), 1 << 20)
        except ConnectionClosed:
            return "closed"
        return ws if reply["type"] == "welcome" else reply["code"]

    async def flood():
        results = await asyncio.gather(*(one(i) for i in range(200)), return_exceptions=True)
        served = [r for r in results if not isinstance(r, (int, str, BaseException))]
        during = await asyncio.to_thread(held.predict, [observation(SPEC, 2.0)], 32, SPEC.default_step_period)
        for ws in served:
            await ws.close()
        return results, served, during

    results, served, during = asyncio.run(flood())
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    assert len(served) <= MAX_SESSIONS - 1 and len(served) >= 1
    assert all(r in (503, p.BUSY, "dropped", "closed") for r in results if isinstance(r, (int, str))), \
        sorted({str(r) for r in results if isinstance(r, (int, str))})
    assert during.chunk.stamp == 2.0
    assert wait_for(lambda: health(server)["sessions"] == 1, 10.0)
    assert server.rss_kib() - rss_before < 64 * 1024  # bounded: well under 64 MiB for 200 connections
    held.close()
    assert serves(server.url)


CLIENT = """
import os, sys, time
sys.path[:0] = [sys.argv[2], os.path.dirname(sys.argv[2])]  # serve_util, and waiting.py beside it
from kairos_ros.backends import make_backend
from kairos_ros.core.embodiment import load_embodiment
from serve_util import observation
spec = load_embodiment("aloha")
b = make_backend("remote", spec, horizon=32, remote_url=sys.argv[1])
i = 0
while True:
    i += 1
    b.predict([observation(spec, float(i))], 32, spec.default_step_period)
    if i == 3:
        print("predicting", flush=True)
"""


def test_a_client_killed_mid_session_frees_its_session(server):
    before = health(server)["sessions"]
    proc = subprocess.Popen([sys.executable, "-c", CLIENT, server.url, os.path.dirname(__file__)],
                            stdout=subprocess.PIPE, env={**os.environ, "KAIROS_REMOTE_TOKEN": TOKEN})
    try:
        assert proc.stdout.readline().strip() == b"predicting"
        assert health(server)["sessions"] == before + 1
    finally:
        proc.kill()
        proc.wait()
    assert wait_for(lambda: health(server)["sessions"] == before, 10.0)
    assert serves(server.url)


def test_a_server_killed_mid_request_fails_fast_and_the_robot_reconnects():
    srv = ServeProcess()
    b = robot(srv.url, remote_backoff_max=0.2)
    outcomes, stop = [], threading.Event()

    def loop():
        i = 0
        while not stop.is_set():
            i += 1
            try:
                b.predict([observation(SPEC, float(i))], 32, SPEC.default_step_period)
                outcomes.append("ok")
            except RuntimeError as exc:
                outcomes.append(str(exc))
    t = threading.Thread(target=loop, daemon=True)
    t.start()
    second = None
    try:
        assert wait_for(lambda: outcomes.count("ok") >= 5, 10.0)
        srv.kill()  # the robot is mid-request most of the time: it predicts back to back
        n = len(outcomes)
        assert wait_for(lambda: any(o != "ok" for o in outcomes[n - 1:]), 10.0)
        assert wait_for(lambda: b.link.state != "connected", 5.0)
        second = ServeProcess(port=srv.port)
        m = len(outcomes)
        assert wait_for(lambda: "ok" in outcomes[m:], 15.0)
        assert b.link.reconnects == 1 and b.diagnostics()["remote.state"] == "connected"
    finally:
        stop.set()
        t.join(10.0)
        b.close()
        for s in (srv, second):
            if s is not None:
                s.stop()
    assert not t.is_alive()


def test_a_session_closed_for_idleness_reconnects_on_the_next_prediction(server):
    before = health(server)["sessions"]
    b = robot(server.url)
    try:
        assert b.predict([observation(SPEC, 1.0)], 32, SPEC.default_step_period).chunk.stamp == 1.0
        assert wait_for(lambda: health(server)["sessions"] == before + 1, 5.0)
        assert wait_for(lambda: health(server)["sessions"] == before, 10.0)  # idle_timeout is 2 s
        assert b.predict([observation(SPEC, 9.0)], 32, SPEC.default_step_period).chunk.stamp == 9.0
        assert b.link.reconnects == 1 and b.failures == 0
    finally:
        b.close()
