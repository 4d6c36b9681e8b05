"""core.text.instruction_set_message: the set_instruction service's answer shows the text as set."""
from kairos_ros.core.text import instruction_set_message


def test_the_text_is_shown_as_set():
    assert instruction_set_message("pick up the cup") == "instruction set (15 characters): 'pick up the cup'"
    assert instruction_set_message("") == "instruction set (0 characters): ''"


def test_a_long_text_is_cut_for_display_but_counted_whole():
    text = "x" * 81
    assert instruction_set_message(text) == f"instruction set (81 characters): {'x' * 77 + '...'!r}"
    assert instruction_set_message("y" * 80).endswith(f"{'y' * 80!r}")
