"""sha256 digests as text: the one check of their shape, shared by the checkpoint loader and the
backend options (torch-free, so profiles can be validated without loading the model)."""
from __future__ import annotations

import re

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def valid_sha256(text: str) -> bool:
    """True for 64 hexadecimal digits (either case), the form sha256sum prints."""
    return isinstance(text, str) and bool(_HEX64.fullmatch(text))
