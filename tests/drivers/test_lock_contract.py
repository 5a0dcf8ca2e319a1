"""Every lock driver passes the same scenarios."""

from __future__ import annotations

import threading

import pytest

from app.core.errors import LockConflict
from app.drivers.locks.base import LockDriver

INFO_A = '{"ID":"a","Operation":"OperationTypeApply","Who":"alice@host"}'
INFO_B = '{"ID":"b","Operation":"OperationTypePlan","Who":"bob@host"}'


def test_acquire_and_release(locks: LockDriver) -> None:
    held = locks.acquire("ws-1", "a", INFO_A)
    assert (held.lock_id, held.info) == ("a", INFO_A)
    assert locks.get("ws-1").info == INFO_A
    assert locks.release("ws-1", "a").lock_id == "a"
    assert locks.get("ws-1") is None


def test_conflict_returns_the_holder_exactly(locks: LockDriver) -> None:
    locks.acquire("ws-1", "a", INFO_A)
    with pytest.raises(LockConflict) as caught:
        locks.acquire("ws-1", "b", INFO_B)
    assert caught.value.holder.lock_id == "a"
    assert caught.value.holder.info == INFO_A


def test_reacquire_with_same_id_succeeds(locks: LockDriver) -> None:
    locks.acquire("ws-1", "a", INFO_A)
    assert locks.acquire("ws-1", "a", INFO_A).lock_id == "a"


def test_release_by_other_id_conflicts_and_keeps_lock(locks: LockDriver) -> None:
    locks.acquire("ws-1", "a", INFO_A)
    with pytest.raises(LockConflict) as caught:
        locks.release("ws-1", "b")
    assert caught.value.holder.lock_id == "a"
    assert locks.get("ws-1").lock_id == "a"


def test_release_when_unlocked_is_not_an_error(locks: LockDriver) -> None:
    assert locks.release("ws-1", "a") is None
    assert locks.release("ws-1", None) is None


def test_force_release_clears_any_holder(locks: LockDriver) -> None:
    locks.acquire("ws-1", "a", INFO_A)
    assert locks.release("ws-1", None).lock_id == "a"
    assert locks.acquire("ws-1", "b", INFO_B).lock_id == "b"


def test_keys_are_independent(locks: LockDriver) -> None:
    locks.acquire("ws-1", "a", INFO_A)
    locks.acquire("ws-2", "b", INFO_B)
    assert locks.get("ws-1").lock_id == "a"
    assert locks.get("ws-2").lock_id == "b"


def test_racing_acquirers_have_exactly_one_winner(locks: LockDriver) -> None:
    winners, losers = [], []
    barrier = threading.Barrier(8)

    def contend(n: int) -> None:
        barrier.wait()
        try:
            locks.acquire("ws-race", f"id-{n}", f'{{"ID":"id-{n}"}}')
            winners.append(n)
        except LockConflict as exc:
            losers.append(exc.holder.lock_id)

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    assert losers == [f"id-{winners[0]}"] * 7


def test_check_passes_when_reachable(locks: LockDriver) -> None:
    locks.check()


def test_get_many_returns_the_holders_of_the_locked_keys_only(locks: LockDriver) -> None:
    locks.acquire("ws-1", "a", INFO_A)
    locks.acquire("ws-3", "b", INFO_B)
    found = locks.get_many(["ws-1", "ws-2", "ws-3"])
    assert {key: (held.lock_id, held.info) for key, held in found.items()} == {
        "ws-1": ("a", INFO_A),
        "ws-3": ("b", INFO_B),
    }
    assert locks.get_many([]) == {}
    locks.release("ws-1", "a")
    assert set(locks.get_many(["ws-1", "ws-3"])) == {"ws-3"}
