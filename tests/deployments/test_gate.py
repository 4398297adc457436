"""The Gate in front of each batched role method: calls that come while a batch runs wait, and go in together
when it ends (plain asyncio, no Ray cluster)."""
import asyncio
import threading

from deployments.roles import Gate


def test_calls_wait_while_a_batch_runs_and_enter_together():
    async def main():
        gate, release, entered = Gate(), threading.Event(), []

        def work(items):
            release.wait(5)  # the batch runs until the test lets it finish
            return [x * 10 for x in items]

        running = asyncio.create_task(gate.run(work, [1, 2]))
        await asyncio.sleep(0.05)
        assert not gate.open.is_set()

        async def caller(i):
            await gate.enter()
            entered.append(i)

        callers = [asyncio.create_task(caller(i)) for i in range(5)]
        await asyncio.sleep(0.05)
        assert entered == []  # held at the gate while the batch runs
        release.set()
        assert await running == [10, 20]
        await asyncio.gather(*callers)
        assert sorted(entered) == list(range(5)) and gate.open.is_set()
        assert await gate.run(lambda items: items, [7, 8, 9]) == [7, 8, 9]
        st = gate.stats()
        assert st["batches"] == 2 and st["batched_calls"] == 5 and st["largest_batch"] == 3
        assert st["batch_sizes"] == {2: 1, 3: 1} and st["call_weighted_batch"] == (2 * 2 + 3 * 3) / 5
        assert st["busy_s"] >= 0.05

    asyncio.run(main())


def test_the_gate_reopens_when_a_batch_fails():
    async def main():
        gate = Gate()

        def boom(items):
            raise ValueError("bad batch")

        try:
            await gate.run(boom, [1])
        except ValueError:
            pass
        assert gate.open.is_set() and gate.stats()["batches"] == 1

    asyncio.run(main())
