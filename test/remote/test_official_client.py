"""The official Kairos service client (kairos_ros/remote/official_client.py) and backend 'official',
against a real HTTP server process that reproduces the service's pickle protocol (official_service.py).

The security tests use live payloads: test_payloads_are_live shows plain pickle.loads of the very
same replies creates the marker file, so a client that unpickled them permissively fails the tests.
"""
import os
import pickle
import select
import subprocess
import sys
import time

import numpy as np
import pytest

from kairos_ros.backends.official_backend import OfficialBackend
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.types import JointStateData, ObservationData
from kairos_ros.remote.official_client import OfficialClient, OfficialServiceError
from kairos_ros.remote.safe_pickle import UnsafePickleError, restricted_dumps, restricted_loads

from serve_util import self_signed_certificate

HERE = os.path.dirname(os.path.abspath(__file__))
DUAL = load_embodiment("dual_arm")
DIM = len(DUAL.slot_names)


def start_service(*args):
    """(process, base url) of official_service.py once it reports its port."""
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "official_service.py"), *args],
                            stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    line = ""
    while not line.startswith("PORT ") and time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise AssertionError("official_service.py did not report its port within 30 s")
    return proc, f"{'https' if args else 'http'}://127.0.0.1:{int(line.split()[1])}"


@pytest.fixture(scope="module")
def service():
    """The test service's base url; the process ends with the module."""
    proc, url = start_service()
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def tls_service(tmp_path_factory):
    cert, key = self_signed_certificate(tmp_path_factory.mktemp("tls"))
    proc, url = start_service(cert, key)
    try:
        yield url, cert
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def client(url, **kw):
    return OfficialClient(url, allow_pickle=True, **kw)


def infer(c, prompt="pick up the cube", horizon=4, dim=DIM, **kw):
    state = np.linspace(-0.5, 0.5, dim).astype(np.float32)
    return state, c.infer(state, horizon, np.zeros((24, 32, 3), np.uint8), prompt, action_dim=dim, **kw)


def observation(t=1.0):
    q = (DUAL.lower + DUAL.upper) / 2
    frame = np.full((24, 32, 3), 7, np.uint8)
    return ObservationData(t, ["cam"], [frame], JointStateData(t, list(DUAL.joint_names), q), instruction="go",
                           composed=frame)


# -- the opt-in -----------------------------------------------------------------------------------------

def test_refused_without_the_opt_in():
    for make in (lambda: OfficialClient("http://127.0.0.1:1"),
                 lambda: OfficialClient("http://127.0.0.1:1", allow_pickle="yes"),
                 lambda: OfficialBackend(DUAL, official_url="http://127.0.0.1:1")):
        with pytest.raises(ValueError, match="official_allow_pickle: true") as err:
            make()
        assert "refused to start" in str(err.value) and "pickle" in str(err.value)


# -- round trips ----------------------------------------------------------------------------------------

def test_health_and_round_trip(service):
    c = client(service)
    assert c.health()
    state, reply = infer(c, horizon=5)
    assert reply.action.dtype == np.float32 and reply.action.shape == (5, DIM)
    np.testing.assert_allclose(reply.action, state[None] + 0.01 * np.arange(1, 6)[:, None], atol=1e-6)
    assert reply.video_path is None
    _, video = infer(c, mode="video")
    assert video.video_path == "/tmp/video.mp4"


def test_backend_maps_state_and_actions_to_slots(service):
    layout = tuple(reversed(DUAL.slot_names))  # a service whose slots are in another order
    backend = OfficialBackend(DUAL, official_url=service, official_allow_pickle=True,
                              official_state_layout=layout, official_action_layout=layout)
    obs = observation()
    pred = backend.predict([obs], 6, 0.05)
    from kairos_ros.backends.baselines import observed_slots
    expected = observed_slots(DUAL, obs)[None] + 0.01 * np.arange(1, 7)[:, None]
    assert pred.chunk.slot_names == list(DUAL.slot_names) and pred.chunk.backend == "official"
    np.testing.assert_allclose(pred.chunk.values, expected, atol=1e-5)
    assert pred.frames == [] and pred.chunk.stamp == obs.stamp and pred.chunk.step_period == 0.05


def test_registry_makes_the_official_backend(service):
    from kairos_ros.backends import make_backend

    with pytest.raises(ValueError, match="official_allow_pickle"):
        make_backend("official", DUAL, official_url=service)
    backend = make_backend("official", DUAL, official_url=service, official_allow_pickle=True)
    assert backend.predict([observation()], 3, 0.05).chunk.values.shape == (3, DIM)


# -- hostile replies ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, refused", [("evil-system", "posix.system"), ("evil-eval", "builtins.eval"),
                                           ("evil-nested", "posix.system")])
def test_malicious_reply_refused_and_nothing_executed(service, tmp_path, kind, refused):
    marker = tmp_path / "pwned"
    try:
        infer(client(service), prompt=f"{kind}:{marker}")
        error = None
    except Exception as exc:  # checked below, after the marker
        error = exc
    assert not marker.exists(), "the reply's payload ran"
    assert isinstance(error, UnsafePickleError) and f"refused global '{refused}'" in str(error), error


@pytest.mark.parametrize("kind", ["evil-system", "evil-eval"])
def test_payloads_are_live(tmp_path, kind):
    """The security tests can fail: plain pickle.loads of the same reply (in a child process) runs it."""
    sys.path.insert(0, HERE)
    try:
        from official_service import malicious
    finally:
        sys.path.remove(HERE)
    marker = tmp_path / "pwned"
    payload = malicious(kind, str(marker))
    subprocess.run([sys.executable, "-c", "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"],
                   input=payload, check=False, timeout=60)
    assert marker.exists()


@pytest.mark.parametrize("prompt, message", [
    ("oversize:1000000000", "exceeds max_reply_bytes 65536; not read"),
    ("stream:200000", "exceeds max_reply_bytes 65536; stopped reading"),
])
def test_oversize_reply_refused(service, prompt, message):
    with pytest.raises(OfficialServiceError, match=message):
        infer(client(service, max_reply_bytes=65536), prompt=prompt)


@pytest.mark.parametrize("prompt, message", [
    ("shape", r"action of shape \(5, 14\), expected \(4, 14\)"),
    ("float64", "action dtype float64, expected float32"),
    ("object", "numpy.dtype object: not admitted"),
    ("list", "action of type list, not a numpy array"),
    ("status500", "HTTP 500"),
])
def test_wrong_reply_refused(service, prompt, message):
    with pytest.raises((OfficialServiceError, UnsafePickleError), match=message):
        infer(client(service), prompt=prompt)


@pytest.mark.parametrize("prompt", ["slow:60", "trickle:60"])
def test_timeout(service, prompt):
    """A reply that never completes (or arrives a byte every 0.2 s for a minute) ends at the deadline."""
    c = client(service, timeout=0.8)
    start = time.monotonic()
    with pytest.raises(OfficialServiceError, match="within 0.8 s"):
        infer(c, prompt=prompt)
    assert time.monotonic() - start < 30  # ended by the deadline, long before the service would have finished


def test_https_verified_against_the_given_ca(tls_service):
    url, cert = tls_service
    state, reply = infer(client(url, ca_file=cert))
    np.testing.assert_allclose(reply.action[0], state + 0.01, atol=1e-6)
    with pytest.raises(OfficialServiceError, match="CERTIFICATE_VERIFY_FAILED"):
        client(url).health()  # a self-signed certificate nobody said to trust


def test_unreachable_service():
    with pytest.raises(OfficialServiceError, match="/health"):
        client("http://127.0.0.1:9", timeout=1.0).health()


# -- the unpickler itself -------------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_arrays_and_builtins_round_trip(protocol):
    value = {"a": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.ones((2, 3), np.uint8)[:, ::2],
             "c": [1, 2.5, "x", b"y", None, True, (3, 4)]}
    back = restricted_loads(pickle.dumps(value, protocol=protocol))
    np.testing.assert_array_equal(back["a"], value["a"])
    np.testing.assert_array_equal(back["b"], value["b"])
    assert back["c"] == value["c"]


def test_numpy_1_module_names_admitted():
    data = pickle.dumps(np.arange(3, dtype=np.float32), protocol=3)
    assert b"numpy._core.multiarray" in data
    old = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    np.testing.assert_array_equal(restricted_loads(old), np.arange(3, dtype=np.float32))


def test_unpickler_refusals():
    import collections

    with pytest.raises(UnsafePickleError, match="refused global 'collections.OrderedDict'"):
        restricted_loads(pickle.dumps(collections.OrderedDict(a=1)))
    with pytest.raises(UnsafePickleError, match="_reconstruct"):  # numpy.ndarray is a marker, not a constructor
        restricted_loads(b"\x80\x04cnumpy\nndarray\n(I1000000000\ntR.")
    with pytest.raises(UnsafePickleError, match="refused global '_codecs.encode'"):  # protocol 2 bytes
        restricted_loads(pickle.dumps(b"abc", protocol=2))
    with pytest.raises(UnsafePickleError, match="nested deeper"):
        nested = []
        for _ in range(40):
            nested = [nested]
        restricted_loads(pickle.dumps(nested))
    with pytest.raises(pickle.UnpicklingError, match="malformed"):
        restricted_loads(b"\x80\x05garbage")
    with pytest.raises(UnsafePickleError):  # nothing is sent that this side would refuse
        restricted_dumps({"x": np.float32(1.0)})


def test_void_dtype_with_object_flags_refused_before_any_array_exists():
    """A void dtype whose pickled state sets numpy's 'items are object pointers' flags would make
    numpy decref attacker bytes: it is refused at the dtype, before an array is built."""

    class Reduce:
        def __init__(self, *parts):
            self.parts = parts

        def __reduce__(self):
            return self.parts

    from kairos_ros.remote.safe_pickle import _np_reconstruct  # numpy's own, under numpy 1 or 2

    dtype = Reduce(np.dtype, ("V8", False, True), (3, "|", None, None, None, 8, 1, 0x01))
    payload = pickle.dumps(Reduce(_np_reconstruct, (np.ndarray, (0,), b"b"),
                                  (1, (2,), dtype, False, b"\x41" * 16)))
    with pytest.raises(UnsafePickleError, match=r"numpy.dtype \|V8: not admitted"):
        restricted_loads(payload)
    for code in ("U3", "S4", "M8[s]", "c8", "f4,i4"):
        with pytest.raises(UnsafePickleError, match="not admitted"):
            restricted_loads(pickle.dumps(np.zeros(2, code)))


def test_admitted_callables_cannot_be_changed_by_a_pickle():
    """BUILD on an admitted global (its state dict or slot state) would change it for every later load."""
    for target in (b"cnumpy\nndarray\n", b"cnumpy._core.multiarray\n_reconstruct\n", b"cnumpy\ndtype\n"):
        for state in (b"}S'x'\nI1\nsb", b"(N}S'_fn'\ncbuiltins\nlist\nstb"):
            with pytest.raises(pickle.UnpicklingError):  # BUILD, then POP: the pickle itself returns None
                restricted_loads(b"\x80\x02" + target + state + b"0N.")
    np.testing.assert_array_equal(restricted_loads(pickle.dumps(np.arange(3.0))), np.arange(3.0))  # still intact
