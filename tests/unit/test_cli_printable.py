from app.cli.common import printable


def test_terminal_escapes_from_agent_output_are_shown_not_run():
    hostile = "done\x1b]0;pwned\x07\x1b[2J\rfake line\x9b1m"
    shown = printable(hostile)
    assert "\x1b" not in shown
    assert "\x07" not in shown
    assert "\r" not in shown
    assert "\x9b" not in shown
    assert shown.startswith("done\\x1b]0;pwned\\x07")
    assert printable("plain text → ok\ttab") == "plain text → ok\ttab"
    assert printable("two\nlines") == "two\\x0alines"
