import pytest

from app.domain.selection import Choice, EngineChoice, choose_engine

DEFAULT = EngineChoice("codex", "gpt-5.1-codex")


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        ([], EngineChoice("codex", "gpt-5.1-codex")),
        ([Choice(), Choice(), Choice()], EngineChoice("codex", "gpt-5.1-codex")),
        ([Choice(model="gpt-5.1")], EngineChoice("codex", "gpt-5.1")),
        ([Choice(), Choice("claude", "sonnet")], EngineChoice("claude", "sonnet")),
        ([Choice("claude"), Choice(), Choice(None, "gpt-5.1")], EngineChoice("claude", None)),
        ([Choice("claude"), Choice("claude", "opus")], EngineChoice("claude", "opus")),
        ([Choice(model="haiku"), Choice("claude", "opus")], EngineChoice("claude", "haiku")),
        ([Choice("codex"), Choice("claude", "opus")], EngineChoice("codex", "gpt-5.1-codex")),
        ([Choice("command", "./agent.sh")], EngineChoice("command", "./agent.sh")),
    ],
)
def test_choose_engine(layers, expected):
    assert choose_engine(layers, DEFAULT) == expected
