"""Topics: AMQP topic matching, as the broker does it, for code that routes events itself.

The handler registry, the automation rules and the dead-letter filters all pick events by
an AMQP topic pattern over the event type; this is the one matcher they share. It imports
nothing but the standard library.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=4096)
def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: `*` matches one word, `#` zero or more.

    Dynamic programming over (pattern word, key word): linear in their product, so a
    pattern full of `#` cannot blow up.
    """
    words, keys = pattern.split("."), key.split(".")
    # reachable[j]: the pattern so far matches the first j key words
    reachable = [True] + [False] * len(keys)
    for word in words:
        if word == "#":
            for j in range(1, len(keys) + 1):
                reachable[j] = reachable[j] or reachable[j - 1]
            continue
        reachable = [False] + [
            reachable[j] and (word == "*" or word == keys[j]) for j in range(len(keys))
        ]
    return reachable[-1]
