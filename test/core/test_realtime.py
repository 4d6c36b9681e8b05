"""core.realtime: the allocator, garbage-collector and thread settings every node applies.

Each check runs in a fresh interpreter so the test process keeps its own settings."""
import subprocess
import sys

import pytest


def run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_allocator_settings_are_accepted_by_glibc():
    out = run("from kairos_ros.core.realtime import tune_allocator; print(tune_allocator())")
    assert out == "{'mmap_threshold': True, 'trim_threshold': True}"


def test_thresholds_outside_a_c_int_are_refused():
    with pytest.raises(ValueError, match="mmap_threshold"):
        from kairos_ros.core.realtime import tune_allocator
        tune_allocator(mmap_threshold=1 << 40)


def test_freeze_moves_startup_objects_out_of_collection():
    out = run("import gc; from kairos_ros.core.realtime import freeze_startup_objects; "
              "before = gc.get_freeze_count(); freeze_startup_objects(); print(before, gc.get_freeze_count() > 1000)")
    assert out == "0 True"


def test_torch_threads_are_capped():
    out = run("import torch; torch.set_num_threads(2); from kairos_ros.core.realtime import limit_torch_threads; "
              "print(limit_torch_threads(1), torch.get_num_threads())")
    assert out == "True 1"


def test_thaw_returns_frozen_objects_to_the_collector():
    out = run("import gc; from kairos_ros.core.realtime import freeze_startup_objects, thaw_objects; "
              "freeze_startup_objects(); thaw_objects(); print(gc.get_freeze_count())")
    assert out == "0"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_a_worker_thread_lowers_only_its_own_priority():
    out = run("import os, threading; from kairos_ros.core.realtime import lower_thread_priority\n"
              "seen = {'before': os.getpriority(os.PRIO_PROCESS, 0)}\n"
              "def work():\n"
              "    seen['ok'] = lower_thread_priority(10)\n"
              "    seen['nice'] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())\n"
              "t = threading.Thread(target=work); t.start(); t.join()\n"
              "print(seen['ok'], seen['nice'], seen['before'], os.getpriority(os.PRIO_PROCESS, 0))")
    ok, thread_nice, before, after = out.split()
    assert before == after  # the main thread keeps its priority
    if int(before) <= 10:  # a process niced above 10 may not raise a thread's priority back
        assert (ok, thread_nice) == ("True", "10")
