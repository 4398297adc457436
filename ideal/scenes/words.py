"""English word forms shared by every writer and reader of scene text: room words, articles, plurals, counts.

No wording of any role lives here (the simulated user's is `ideal.scenes.memory` and `ideal.dialog.answerer`;
the system's is `ideal.dialog.knowledge`, `ideal.dialog.questioner` and `ideal.dialog.summary`).
"""
from __future__ import annotations

from .rooms import ROOM_WORDS

NUMBERS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
OPENINGS = ("window", "door")  # the room's openings: objects, but not furniture one describes by colour or place


def room_word(scene_type: str) -> str:
    """'Bedroom / Hotel' -> 'bedroom'; unknown types are lower-cased up to the first '/'."""
    return ROOM_WORDS.get(scene_type) or (scene_type.split("/")[0].strip().lower() or "room")


def article(noun: str) -> str:
    return f"{'an' if noun[:1] in tuple('aeiou') else 'a'} {noun}"


def plural(noun: str) -> str:
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es" if not noun.endswith("s") else noun
    if noun.endswith("y") and noun[-2:-1] not in tuple("aeiou"):
        return noun[:-1] + "ies"
    return noun + "s"


def count_phrase(n: int, noun: str) -> str:
    if n == 1:
        return article(noun)
    return f"{NUMBERS[n] if n < len(NUMBERS) else n} {plural(noun)}"


def join_words(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
