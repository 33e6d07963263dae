"""Loading and validating OpenSpiel games.

The engine handles two-player zero-sum (or constant-sum) games with explicit chance
and information-state strings. Simultaneous-move games are converted to their
turn-based equivalent, which has the same equilibria and exploitability.
"""

from __future__ import annotations

import difflib
import functools
import logging
import re
from importlib import metadata

import pyspiel

from fusion_psro.errors import GameNotSupportedError

log = logging.getLogger(__name__)

_SUPPORTED_UTILITIES = (pyspiel.GameType.Utility.ZERO_SUM, pyspiel.GameType.Utility.CONSTANT_SUM)
_UNSUPPORTED_UTILITIES = {
    pyspiel.GameType.Utility.GENERAL_SUM: "general-sum",
    pyspiel.GameType.Utility.IDENTICAL: "general-sum (identical interests: both players get the same payoff)",
}


@functools.lru_cache(maxsize=1)
def openspiel_version() -> str:
    """Version of the installed ``open_spiel`` package (part of the compiled-game cache key)."""
    try:
        return metadata.version("open_spiel")
    except metadata.PackageNotFoundError:  # pragma: no cover - pyspiel built from source
        return "unknown"


def load_openspiel_game(game: str | pyspiel.Game) -> pyspiel.Game:
    """Load ``game`` and check that the engine can handle it.

    Parameters
    ----------
    game:
        An OpenSpiel game string such as ``"leduc_poker"`` or
        ``"goofspiel(num_cards=4,imp_info=True,points_order=descending)"``, or an
        already loaded ``pyspiel.Game``.

    Returns
    -------
    pyspiel.Game
        The game itself, or its turn-based conversion if it has simultaneous moves.

    Raises
    ------
    GameNotSupportedError
        If the game string is unknown or malformed, or the game is not a two-player
        zero-sum / constant-sum game with explicit chance and information-state strings.
    """
    if isinstance(game, str):
        game = _load_game_string(game)
    elif not isinstance(game, pyspiel.Game):
        raise GameNotSupportedError(
            f"expected an OpenSpiel game string or a pyspiel.Game, got {type(game).__name__}"
        )
    game_type = game.get_type()
    name = str(game)
    if game.num_players() != 2:
        raise GameNotSupportedError(
            f"{name} has {game.num_players()} players; fusion-psro handles two-player games only"
        )
    if game_type.utility not in _SUPPORTED_UTILITIES:
        raise GameNotSupportedError(
            f"{name} is {_UNSUPPORTED_UTILITIES[game_type.utility]}; fusion-psro accepts two-player "
            "zero-sum or constant-sum games only (exploitability is defined for those)"
        )
    if game_type.dynamics == pyspiel.GameType.Dynamics.MEAN_FIELD:
        raise GameNotSupportedError(f"{name} is a mean-field game; only two-player games are handled")
    if game_type.chance_mode == pyspiel.GameType.ChanceMode.SAMPLED_STOCHASTIC:
        raise GameNotSupportedError(
            f"{name} samples chance outcomes without listing their probabilities, so it cannot be "
            "enumerated exactly; games with explicit chance (EXPLICIT_STOCHASTIC) or none are accepted"
        )
    _check_has_moves(game, name)
    if game_type.dynamics == pyspiel.GameType.Dynamics.SIMULTANEOUS:
        log.info("converting simultaneous-move game %s to turn-based", name)
        game = pyspiel.convert_to_turn_based(game)
    if not game.get_type().provides_information_state_string:
        raise GameNotSupportedError(
            f"{name} does not provide information-state strings, which identify the states a "
            "policy must act in; choose a game (or game parameters) that provides them"
        )
    return game


def _check_has_moves(game: pyspiel.Game, name: str) -> None:
    """Refuse parameters that leave a game without moves (``goofspiel(num_cards=0)`` loads, then
    fails deep inside OpenSpiel or the engine)."""
    try:
        actions, length = game.num_distinct_actions(), game.max_game_length()
    except (pyspiel.SpielError, RuntimeError, ValueError) as exc:
        raise GameNotSupportedError(f"OpenSpiel cannot describe {name}: {str(exc).strip() or repr(exc)}") from None
    if actions < 1 or length < 1:
        raise GameNotSupportedError(
            f"{name} has no moves ({actions} distinct actions, games at most {length} moves long): its parameters "
            "are out of range. Accepted: parameters that give the players at least one action, e.g. "
            "goofspiel(num_cards=4,imp_info=True,points_order=descending) with num_cards >= 1"
        )


def _load_game_string(game_string: str) -> pyspiel.Game:
    if not game_string or not game_string.strip():
        raise GameNotSupportedError("empty game string; pass e.g. 'kuhn_poker' or 'leduc_poker'")
    short_name = game_string.split("(", 1)[0].strip()
    registered = pyspiel.registered_names()
    if short_name not in registered:
        close = _suggestions(short_name, registered)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise GameNotSupportedError(
            f"unknown game {short_name!r}.{hint} Examples of games fusion-psro handles: "
            "kuhn_poker, leduc_poker, liars_dice, "
            "goofspiel(num_cards=4,imp_info=True,points_order=descending); "
            "`python -c 'import pyspiel; print(pyspiel.registered_names())'` lists all "
            "OpenSpiel games"
        )
    try:
        return pyspiel.load_game(game_string.strip())
    except (pyspiel.SpielError, RuntimeError, ValueError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise GameNotSupportedError(f"OpenSpiel could not load {game_string!r}: {message}") from None


def _suggestions(name: str, registered: list[str], count: int = 3) -> list[str]:
    """Registered game names ``name`` may stand for, most likely first (at most ``count``).

    The same name up to case and separators (``Kuhn-Poker``); else names that contain it,
    those starting with it first (``leduc`` -> ``leduc_poker``), and names spelled alike
    (``liar_dice`` -> ``liars_dice``); failing those, names with one of its words
    (``kuhn_game`` -> ``kuhn_poker``). A name sharing only a generic word or a few letters
    is no suggestion (``card_game`` is not ``chat_game``).
    """
    query = re.sub(r"[\s-]+", "_", name.strip().lower())
    if not query:
        return []
    if query in registered:
        return [query]

    def names_with(matches) -> list[str]:
        return sorted((n for n in registered if matches(n)), key=lambda n: (not n.startswith(query), len(n), n))

    candidates = names_with(lambda n: query in n) + difflib.get_close_matches(query, registered, n=count, cutoff=0.8)
    if not candidates:
        words = {word for word in query.split("_") if len(word) >= 3} - _GENERIC_WORDS
        candidates = names_with(lambda n: not words.isdisjoint(n.split("_")))
    return list(dict.fromkeys(candidates))[:count]


#: Words of game names too common to suggest a game by.
_GENERIC_WORDS = frozenset({"game", "games", "python", "repeated", "matrix"})
