"""Instructions: the one text input of the model, checked wherever it enters (the world model's
parameter and service, the evaluation tools)."""
from __future__ import annotations

import unicodedata

MAX_INSTRUCTION = 2000  # characters


class InstructionError(ValueError):
    """An instruction that is refused; the message says why."""


def check_instruction(text: str) -> str:
    """The instruction unchanged, or InstructionError: longer than MAX_INSTRUCTION characters, or
    holding a NUL byte or another control character (tab and newline are allowed). ROS 2 strings end
    at a NUL, so a text with one would be cut silently on its way through the graph."""
    if not isinstance(text, str):
        raise InstructionError(f"must be a string, got {type(text).__name__}")
    if len(text) > MAX_INSTRUCTION:
        raise InstructionError(f"{len(text)} characters (limit {MAX_INSTRUCTION})")
    for i, ch in enumerate(text):
        if ch in "\t\n":
            continue
        if ch == "\x00" or unicodedata.category(ch) in ("Cc", "Cs"):
            raise InstructionError(f"control character {ch!r} at index {i} (a NUL ends a ROS 2 string: the text "
                                   "would be cut there)")
    return text


def instruction_set_message(text: str, shown_max: int = 80) -> str:
    """The answer to a set instruction: the text as set (cut to `shown_max` characters), so a caller
    can see what arrived: ROS 2 strings end at a NUL byte, and the caller's own client library cuts
    one off before anything is sent."""
    shown = text if len(text) <= shown_max else text[:shown_max - 3] + "..."
    return f"instruction set ({len(text)} characters): {shown!r}"
