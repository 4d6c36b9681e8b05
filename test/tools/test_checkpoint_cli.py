"""kairos-checkpoint on the bundled kairos-nano weights (issue 10): verify judges a nano checkpoint by
its own metadata exactly as the backend does (kairos.state_velocity doubles the proprio width), and
hash writes the sidecars the backend checks."""
import json
import os
import shutil
import struct
import subprocess
import sys

import pytest

from kairos_ros.model.checkpoint import file_sha256, read_header
from kairos_ros.tools.checkpoint_cli import main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(REPO, "data", "models", "kairos-nano-aloha")
DIT = os.path.join(MODEL, "dit.safetensors")
EXE = os.path.join(os.path.dirname(sys.executable), "kairos-checkpoint")


def cli(*args):
    command = [EXE] if os.path.exists(EXE) else [sys.executable, "-m", "kairos_ros.tools.checkpoint_cli"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120)


def test_verify_accepts_the_bundled_nano_files():
    assert read_header(DIT).metadata["kairos.state_velocity"] == "3"  # proprio 28 = 14 slots + 14 velocities
    res = cli("verify", DIT, "--preset", "kairos-nano")
    assert res.returncode == 0, res.stderr
    assert "fits preset kairos-nano exactly" in res.stdout and "state_dim 28" in res.stdout
    for name, what in (("codec.safetensors", "codec"), ("text.safetensors", "text encoder")):
        res = cli("verify", os.path.join(MODEL, name), "--preset", "kairos-nano")
        assert res.returncode == 0 and f"({what})" in res.stdout, res.stderr


def test_verify_refuses_what_the_backend_refuses(capsys):
    assert main(["verify", DIT, "--preset", "kairos-test"]) == 1
    assert "holds a 'kairos-nano' model but model_preset is 'kairos-test'" in capsys.readouterr().err
    assert main(["verify", os.path.join(MODEL, "text.safetensors"), "--preset", "kairos-test"]) == 1
    assert "text width 128 but the model's text_dim is" in capsys.readouterr().err


def test_verify_uses_the_nano_metadata_not_the_preset_defaults(tmp_path, capsys):
    """The same weights with kairos.state_velocity removed no longer fit: 28 proprio values are 14
    slots + velocities only when the metadata says so (what the backend decides too)."""
    raw = open(DIT, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    del header["__metadata__"]["kairos.state_velocity"]
    text = json.dumps(header).encode()
    out = tmp_path / "dit.safetensors"
    out.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n:])
    assert main(["verify", str(out), "--preset", "kairos-nano"]) == 1
    assert "kairos.state_slots lists 14 slots but the weights take 28 state values" in capsys.readouterr().err


def test_hash_writes_sidecars_the_loader_checks(tmp_path, capsys):
    copy = tmp_path / "text.safetensors"
    shutil.copy(os.path.join(MODEL, "text.safetensors"), copy)
    assert main(["hash", str(copy)]) == 0
    assert capsys.readouterr().out.split()[:2] == [file_sha256(str(copy)), str(copy)]
    assert not os.path.exists(f"{copy}.sha256")
    assert main(["hash", "--write-sidecar", str(copy)]) == 0
    assert open(f"{copy}.sha256").read() == f"{file_sha256(str(copy))}  text.safetensors\n"
    assert open(f"{copy}.sha256").read() == open(os.path.join(MODEL, "text.safetensors.sha256")).read()
    data = bytearray(copy.read_bytes())
    data[-7] ^= 1
    copy.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["verify", str(copy), "--preset", "kairos-nano"]) == 2
    assert "is corrupt or not the expected file" in capsys.readouterr().err
    assert main(["hash", str(tmp_path / "nope")]) == 2


@pytest.mark.parametrize("name", ["dit.safetensors", "codec.safetensors", "text.safetensors"])
def test_bundled_sidecars_are_sha256sum_lines(name):
    line = open(os.path.join(MODEL, name + ".sha256")).read()
    assert line == f"{file_sha256(os.path.join(MODEL, name))}  {name}\n"
