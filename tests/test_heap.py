"""The collector is set once a service has started, not before (services/chassis/heap.py)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest

from services.chassis.heap import YOUNGEST_THRESHOLD, freeze_after


@pytest.fixture
def default_collector() -> Iterator[None]:
    before = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


@pytest.mark.usefixtures("default_collector")
async def test_the_start_up_heap_is_frozen_once_the_lifespan_has_started() -> None:
    seen: list[tuple[int, tuple[int, int, int]]] = []

    @asynccontextmanager
    async def lifespan(app: object) -> AsyncIterator[None]:
        seen.append((gc.get_freeze_count(), gc.get_threshold()))  # during start-up
        yield
        seen.append((gc.get_freeze_count(), gc.get_threshold()))  # while serving

    async with freeze_after(lifespan)(object()):
        serving = (gc.get_freeze_count(), gc.get_threshold())
    assert seen[0] == (0, (700, 10, 10))
    assert serving[0] > 0
    assert serving[1] == (YOUNGEST_THRESHOLD, 10, 10)
    assert seen[1][0] > 0
    assert seen[1][1] == serving[1]
