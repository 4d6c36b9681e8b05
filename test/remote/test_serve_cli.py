"""kairos-serve's secure defaults and TLS, and the client's URL and certificate checks."""
from __future__ import annotations

import os

import pytest

from kairos_ros.backends import make_backend
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.remote.client import check_url
from serve_util import CONFIG, TOKEN, ServeProcess, observation, self_signed_certificate, wait_for

SPEC = load_embodiment("aloha")


def refused(*args, env=None) -> str:
    srv = ServeProcess(*args, token=None, wait=False, env=env)
    try:
        assert wait_for(lambda: not srv.alive(), 30.0), f"kairos-serve started: {srv.output()}"
    finally:
        srv.stop()  # a server that started anyway is not left running
    out = srv.output()
    assert srv.proc.returncode == 2, out
    return out


def test_no_token_no_start_unless_insecure_is_explicit():
    assert "no token" in refused()
    assert "at least 16 characters" in refused(env={"KAIROS_SERVE_TOKEN": "short"})
    srv = ServeProcess("--insecure-no-auth", token=None)
    try:
        assert "NO AUTHENTICATION" in srv.output()
    finally:
        srv.stop()


def test_non_loopback_bind_needs_tls_or_an_explicit_plaintext_flag():
    out = refused("--host", "0.0.0.0", env={"KAIROS_SERVE_TOKEN": TOKEN})
    assert "not a loopback address" in out and TOKEN not in out
    assert "--certfile and --keyfile go together" in refused("--certfile", "x.pem", env={"KAIROS_SERVE_TOKEN": TOKEN})
    assert "out of range" in refused("--max-sessions", "0", env={"KAIROS_SERVE_TOKEN": TOKEN})
    assert "--embodiment is needed" in refused("--config", os.devnull, env={"KAIROS_SERVE_TOKEN": TOKEN})


def test_the_profile_is_validated_with_the_nodes_schema(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("world_model:\n  ros__parameters:\n    horizon: 0\n")
    out = refused("--config", str(bad), "--embodiment", "aloha", env={"KAIROS_SERVE_TOKEN": TOKEN})
    assert "'horizon'" in out and "out of range" in out


def test_the_profile_is_cross_checked_as_the_node_checks_it(tmp_path):
    """history_length below history_frames in the official mode: the node refuses to start, so does kairos-serve."""
    bad = tmp_path / "short.yaml"
    bad.write_text(open(CONFIG).read().replace("history_length: 8", "history_length: 2"))
    out = refused("--config", str(bad), "--embodiment", "aloha", "--backend", "kairos",
                  env={"KAIROS_SERVE_TOKEN": TOKEN})
    assert "'history_length' = 2 must be >= history_frames 4" in out


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    cert, key = self_signed_certificate(tmp_path_factory.mktemp("tls"))
    return cert, key


def test_tls_serves_wss_to_a_client_that_trusts_the_certificate_only(certificate):
    cert, key = certificate
    srv = ServeProcess("--certfile", cert, "--keyfile", key)
    assert srv.url.startswith("wss://")
    os.environ["KAIROS_REMOTE_TOKEN"] = TOKEN
    trusting = untrusting = None
    try:
        trusting = make_backend("remote", SPEC, horizon=32, remote_url=srv.url, remote_ca_file=cert)
        pred = trusting.predict([observation(SPEC, 3.0)], 32, SPEC.default_step_period)
        assert pred.chunk.stamp == 3.0 and trusting.diagnostics()["remote.state"] == "connected"
        untrusting = make_backend("remote", SPEC, horizon=32, remote_url=srv.url, remote_connect_timeout=1.0)
        with pytest.raises(RuntimeError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            untrusting.predict([observation(SPEC, 3.0)], 32, SPEC.default_step_period)
        plain = make_backend("remote", SPEC, horizon=32, remote_url=srv.url.replace("wss:", "ws:"),
                             remote_connect_timeout=1.0)
        with pytest.raises(RuntimeError):
            plain.predict([observation(SPEC, 3.0)], 32, SPEC.default_step_period)
        plain.close()
        for b in (trusting, untrusting):
            assert TOKEN not in str(b.diagnostics())
    finally:
        del os.environ["KAIROS_REMOTE_TOKEN"]
        for b in (trusting, untrusting):
            if b is not None:
                b.close()
        srv.stop()
    assert TOKEN not in srv.output()


@pytest.mark.parametrize("url", ["http://127.0.0.1:1", "ws://", "ws://user:pw@127.0.0.1:1", "ws://10.0.0.5:8765",
                                 "ws://robot-server.example:8765"])
def test_client_urls_that_would_leak_are_refused(url):
    with pytest.raises(ValueError):
        check_url(url, allow_plaintext=False)


def test_plain_ws_to_another_host_needs_the_explicit_flag():
    check_url("ws://10.0.0.5:8765", allow_plaintext=True)
    check_url("wss://robot-server.example:8765", allow_plaintext=False)
    check_url("ws://localhost:8765", allow_plaintext=False)
