"""services/chassis/coalesce.py: calls of one loop turn go together, each gets its own result."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from services.chassis.coalesce import Coalescer


class Recorder:
    """A ``send`` that records its batches and answers each item as told."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    async def send(self, batch: list[int]) -> list[int | Exception]:
        self.batches.append(batch)
        await asyncio.sleep(0)  # a round trip
        return [ValueError(f"bad {n}") if n < 0 else n * 10 for n in batch]


async def test_calls_of_one_turn_go_together_and_get_their_own_results() -> None:
    sent = Recorder()
    call = Coalescer("test_together", sent.send)
    assert await asyncio.gather(*(call(n) for n in range(5))) == [0, 10, 20, 30, 40]
    assert sent.batches == [[0, 1, 2, 3, 4]]


async def test_a_lone_call_goes_by_itself_on_the_next_turn() -> None:
    sent = Recorder()
    call = Coalescer("test_lone", sent.send)
    assert await asyncio.wait_for(call(7), timeout=1) == 70
    assert await call(8) == 80
    assert sent.batches == [[7], [8]]


async def test_an_item_s_error_goes_to_its_caller_only() -> None:
    call = Coalescer("test_item_error", Recorder().send)
    results = await asyncio.gather(call(1), call(-1), call(2), return_exceptions=True)
    assert results[0] == 10
    assert results[2] == 20
    assert isinstance(results[1], ValueError)


async def test_a_failed_send_fails_every_caller_of_the_batch() -> None:
    async def broken(batch: list[int]) -> list[int | Exception]:
        raise ConnectionError("away")

    call = Coalescer("test_failed", broken)
    results = await asyncio.gather(call(1), call(2), return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]


async def test_a_send_that_answers_the_wrong_count_leaves_nobody_waiting() -> None:
    async def short(batch: list[int]) -> Sequence[int | Exception]:
        return batch[:-1]

    call = Coalescer("test_short", short)
    results = await asyncio.wait_for(
        asyncio.gather(call(1), call(2), return_exceptions=True), timeout=1
    )
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]


async def test_a_caller_that_goes_away_leaves_the_others_results() -> None:
    sent = Recorder()
    call = Coalescer("test_cancelled", sent.send)
    gone = asyncio.ensure_future(call(1))
    stays = asyncio.ensure_future(call(2))
    await asyncio.sleep(0)  # both queued
    gone.cancel()
    assert await stays == 20
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert sent.batches == [[1, 2]]
