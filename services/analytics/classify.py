"""What a click's headers say: where it came from, on what, and whether a bot sent it.

User-Agent strings are parsed with ``user-agents`` (the ua-parser rules) and
checked against ``crawlerdetect``'s list of bots, with ``user-agents``'s own
bot flag as a second opinion. Parsing one string costs about a millisecond of
pure-Python regex work, so results are remembered per string: real traffic
repeats a few thousand strings, and a cached one costs a dict lookup.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from crawlerdetect import CrawlerDetect
from user_agents import parse

__all__ = ["DIRECT", "Agent", "AgentClassifier", "referrer_domain"]

DIRECT: Final = "direct"
_MAX_FAMILY = 64
_MAX_DOMAIN = 255


@dataclass(frozen=True, slots=True)
class Agent:
    """The client behind a User-Agent. ``device`` is a type (mobile, tablet,
    desktop, bot, other), which is what a person reading stats asks about;
    the parser's device family ("iPhone", "Other" for every PC) is not."""

    device: str
    browser: str
    os: str
    bot: bool


# Every browser sends a User-Agent; a request without one is a script.
_NO_AGENT: Final = Agent("bot", "Other", "Other", bot=True)


class AgentClassifier:
    """Classifies User-Agent strings; keeps the last ``cache_size`` results."""

    def __init__(self, cache_size: int) -> None:
        self._crawlers = CrawlerDetect()
        self.classify: Callable[[str | None], Agent] = functools.lru_cache(maxsize=cache_size)(
            self._classify
        )

    def _classify(self, user_agent: str | None) -> Agent:
        if user_agent is None or not user_agent.strip():
            return _NO_AGENT
        parsed = parse(user_agent)
        bot = self._crawlers.isCrawler(user_agent) or parsed.is_bot
        if bot:
            device = "bot"
        elif parsed.is_tablet:
            device = "tablet"
        elif parsed.is_mobile:
            device = "mobile"
        elif parsed.is_pc:
            device = "desktop"
        else:
            device = "other"
        return Agent(
            device,
            parsed.browser.family[:_MAX_FAMILY] or "Other",
            parsed.os.family[:_MAX_FAMILY] or "Other",
            bot=bool(bot),
        )


def referrer_domain(referrer: str | None) -> str:
    """The host a click came from, without ``www.``; "direct" when there was none."""
    if not referrer:
        return DIRECT
    try:
        host = urlsplit(referrer.strip()).hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        host = None
    if not host:
        return "unknown"
    # www.example.com and example.com are one referrer to whoever reads stats.
    return host.removeprefix("www.")[:_MAX_DOMAIN]
