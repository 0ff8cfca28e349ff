"""``python -m infra.compose.topics BOOTSTRAP``: create every topic the services use.

The one-shot job of compose and of Kubernetes. Topic names and partition
counts come from the event contracts (``services.chassis.events.TOPICS``),
the table the local stack reads too, so no environment can drift from it.
The broker refuses to create topics on first use (auto-create is off), so a
typo in a topic name fails loudly instead of making a new, empty topic.
Topics that exist already are left as they are: the job can run at every start.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from infra.devstack.processes import create_topics
from services.chassis.events import TOPICS

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.compose.topics")
    parser.add_argument("bootstrap", help="host:port of a broker, e.g. kafka:9092")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for it")
    args = parser.parse_args(argv)
    create_topics(args.bootstrap, TOPICS, timeout=args.timeout)
    print(", ".join(f"{name} ({parts} partitions)" for name, parts in TOPICS.items()))


if __name__ == "__main__":
    main()
