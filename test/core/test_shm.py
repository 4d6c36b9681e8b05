"""core.shm: stale Fast DDS files are removed only when no process holds their lock file."""
import fcntl
import os
import time

from kairos_ros.core.shm import clean_stale_fastdds


def make(tmp_path, base: str, age: float = 60.0, sem: bool = False) -> None:
    files = [base, f"{base}_el"] + ([f"sem.{base}_mutex"] if sem else [])
    for name in files:
        (tmp_path / name).write_bytes(b"x")
        old = time.time() - age
        os.utime(tmp_path / name, (old, old))


def test_an_unheld_old_segment_is_removed_with_its_lock_and_mutex(tmp_path):
    make(tmp_path, "fastdds_0123456789abcdef")
    make(tmp_path, "fastdds_port7011", sem=True)
    removed = clean_stale_fastdds(str(tmp_path))
    assert sorted(removed) == sorted(["fastdds_0123456789abcdef", "fastdds_0123456789abcdef_el",
                                      "fastdds_port7011", "fastdds_port7011_el", "sem.fastdds_port7011_mutex"])
    assert os.listdir(tmp_path) == []


def test_a_held_lock_means_a_live_owner(tmp_path):
    make(tmp_path, "fastdds_00000000000000aa")
    fd = os.open(tmp_path / "fastdds_00000000000000aa_el", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_SH)  # as a live participant holds it
    try:
        assert clean_stale_fastdds(str(tmp_path)) == []
    finally:
        os.close(fd)
    assert sorted(os.listdir(tmp_path)) == ["fastdds_00000000000000aa", "fastdds_00000000000000aa_el"]


def test_a_young_file_is_left_for_a_participant_still_starting(tmp_path):
    make(tmp_path, "fastdds_00000000000000bb", age=1.0)
    assert clean_stale_fastdds(str(tmp_path), min_age=10.0) == []
    assert clean_stale_fastdds(str(tmp_path), min_age=0.5) != []


def test_other_files_are_never_touched(tmp_path):
    for name in ("other_el", "fastdds", "my_segment", "sem.other_mutex"):
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (0, 0))
    assert clean_stale_fastdds(str(tmp_path)) == []
    assert len(os.listdir(tmp_path)) == 4


def test_a_missing_directory_is_nothing_to_clean(tmp_path):
    assert clean_stale_fastdds(str(tmp_path / "absent")) == []
