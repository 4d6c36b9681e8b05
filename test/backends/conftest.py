"""Fixtures of the backend tests (helpers in kairos_helpers.py)."""
import pytest

from kairos_helpers import ROBOTWIN_SLOTS, make_spec


@pytest.fixture(scope="session")
def specs():
    return {"dual": make_spec(ROBOTWIN_SLOTS, "dual"),
            "arm": make_spec([f"arm.joint_{k}" for k in range(1, 8)] + ["arm.gripper"], "arm")}
