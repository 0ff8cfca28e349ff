"""A realistic mix of traffic for Locust, against a running stack (``make load``).

At test start, ``--accounts`` users register through the gateway, each gets
an API key, and together they shorten ``--links`` URLs. Then every simulated
client, in a proportion set by the weights:

- follows a link (not the redirect itself: ``allow_redirects=False``), the
  link drawn from a Zipf distribution (rank k is followed in proportion to
  1/k^s), so a few links are hot and most are cold, as on a real shortener;
- shortens a new URL with one of the API keys;
- reads the stats of a link as its owner.

Every option is also an environment variable (``LOAD_LINKS=1000``, ...).

A 429 is the gateway's rate limiter doing its job, not a failure: it is
recorded under its own name ("... [429 rate limited]") so that it neither
counts as a failure nor hides among the answers that did the work, and the
end of the run says how many there were. The defaults of ``make dev`` (6,000
redirects a minute per client address, 120 creations a minute per user)
throttle a test from one address within seconds; raise them for a capacity
test: ``GATEWAY_RATELIMIT_REDIRECT=1000000/minute make dev``.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, cast

import httpx
from locust import FastHttpUser, between, events, task
from locust.contrib.fasthttp import ResponseContextManager
from locust.env import Environment
from locust.stats import CSV_STATS_INTERVAL_SEC

from loadtests.accounts import Account, create_link, open_account
from loadtests.load import LIMITED

log = logging.getLogger(__name__)
_F = TypeVar("_F", bound=Callable[..., None])


def _on(hook: Any) -> Callable[[_F], _F]:
    """``@hook.add_listener``, typed: Locust's event hooks are not."""
    return cast(Callable[[_F], _F], hook.add_listener)


@_on(events.init_command_line_parser)
def _options(parser: Any) -> None:
    def option(name: str, kind: type, default: object, help: str) -> None:
        variable = "LOAD_" + name.upper().replace("-", "_")
        parser.add_argument(f"--{name}", type=kind, default=default, env_var=variable, help=help)

    option("links", int, 200, "links created at test start")
    option("accounts", int, 2, "users that own them (each under its own creation limit)")
    option("zipf", float, 1.0, "Zipf exponent s of link popularity")
    option("weight-redirect", int, 90, "relative share of redirects")
    option("weight-create", int, 8, "relative share of link creation")
    option("weight-stats", int, 2, "relative share of stats reads")
    option("wait-seconds", float, 0.2, "each client waits 0..this between requests")
    option("max-fail-ratio", float, 0.01, "exit non-zero above this share of failures")


@dataclass(frozen=True)
class Seeded:
    """The links made at test start, each with its owner, most popular first."""

    links: list[tuple[str, Account]]
    accounts: list[Account]
    cumulative: list[float]  # cumulative Zipf weights, by rank

    def pick(self) -> tuple[str, Account]:
        drawn = random.random() * self.cumulative[-1]  # noqa: S311 - load, not secrets
        return self.links[bisect.bisect_left(self.cumulative, drawn)]


@_on(events.test_start)
def _seed(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    assert options is not None
    assert environment.host is not None
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per seeded link
    try:
        Shortener.seeded = _seed_links(
            environment.host, options.accounts, options.links, options.zipf
        )
    except (RuntimeError, httpx.HTTPError) as exc:
        log.error("could not set up the test through %s (the gateway?): %s", environment.host, exc)
        environment.process_exit_code = 1
        if environment.runner is not None:
            environment.runner.quit()


def _seed_links(host: str, n_accounts: int, n_links: int, zipf: float) -> Seeded:
    with httpx.Client(base_url=host, timeout=30, trust_env=False) as http:
        accounts = [open_account(http, f"load{i}") for i in range(n_accounts)]
        owners = itertools.cycle(accounts)
        links = []
        for i in range(n_links):
            owner = next(owners)
            links.append((create_link(http, owner, f"https://example.com/load/{i}"), owner))
    weights = [1 / rank**zipf for rank in range(1, len(links) + 1)]
    log.info("seeded %d links owned by %d accounts", len(links), len(accounts))
    return Seeded(links, accounts, list(itertools.accumulate(weights)))


class Shortener(FastHttpUser):
    seeded: ClassVar[Seeded | None] = None

    def wait_time(self) -> float:
        options = self.environment.parsed_options
        assert options is not None
        return float(between(0, options.wait_seconds)(self))

    @task
    def act(self) -> None:
        options = self.environment.parsed_options
        assert options is not None
        assert self.seeded is not None
        weights = [options.weight_redirect, options.weight_create, options.weight_stats]
        action = random.choices([self.follow, self.create, self.stats], weights)[0]  # noqa: S311
        action(self.seeded)

    def follow(self, seeded: Seeded) -> None:
        code, _ = seeded.pick()
        with self.client.get(
            f"/{code}", name="/{code}", allow_redirects=False, catch_response=True
        ) as response:
            _judge(response, expected=302)

    def create(self, seeded: Seeded) -> None:
        owner = random.choice(seeded.accounts)  # noqa: S311
        with self.client.post(
            "/api/v1/links",
            json={"url": f"https://example.com/new/{uuid.uuid4().hex}"},
            headers=owner.headers,
            catch_response=True,
        ) as response:
            _judge(response, expected=201)

    def stats(self, seeded: Seeded) -> None:
        code, owner = seeded.pick()
        with self.client.get(
            f"/api/v1/links/{code}/stats",
            name="/api/v1/links/{code}/stats",
            headers=owner.headers,
            catch_response=True,
        ) as response:
            _judge(response, expected=200)


def _judge(response: ResponseContextManager, expected: int) -> None:
    if response.status_code == 429:
        response.request_meta["name"] += LIMITED
    # Locust's response methods are untyped.
    if response.status_code in (expected, 429):
        response.success()  # type: ignore[no-untyped-call]
    else:
        response.failure(f"expected {expected}, got {response.status_code}")  # type: ignore[no-untyped-call]


@_on(events.quitting)
def _final_csv(environment: Environment, **_: Any) -> None:
    # Locust rewrites its --csv files once a second and not again at the end;
    # one more tick, so the files (which `make load` reports) hold every request.
    # Locust has patched time.sleep to yield to its other greenlets.
    time.sleep(CSV_STATS_INTERVAL_SEC + 0.2)


@_on(events.quitting)
def _verdict(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    assert options is not None
    stats = environment.stats
    limited = sum(e.num_requests for e in stats.entries.values() if e.name.endswith(LIMITED))
    if limited:
        log.warning(
            "%d answers were 429: the rate limiter working, not failures; "
            "raise GATEWAY_RATELIMIT_* for `make dev` to measure capacity",
            limited,
        )
    ratio = stats.total.fail_ratio
    if environment.process_exit_code is not None:
        return  # decided already: the test could not be set up
    if stats.total.num_requests == 0:
        log.error("no request was made: nothing was measured")
        environment.process_exit_code = 1
    elif ratio > options.max_fail_ratio:
        log.error("failure ratio %.2f%% is above %.2f%%", 100 * ratio, 100 * options.max_fail_ratio)
        environment.process_exit_code = 1
    elif environment.runner is not None and not environment.runner.exceptions:
        # Locust fails a run with any failure at all; under the threshold is a pass.
        # Exceptions in our own code still fail it (the code is left to Locust).
        environment.process_exit_code = 0
