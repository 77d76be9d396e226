"""Replay stores: each DPoP proof id is accepted once, in one process or across replicas.

The Redis tests run against a real ``redis-server`` on 127.0.0.1 (see `redis_server`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import pytest
import redis.asyncio

from fastapi_isp_jwt.errors import (
    ConfigurationError,
    InvalidDPoPProofError,
    ReplayStoreUnavailableError,
)
from fastapi_isp_jwt.reasons import Reason
from fastapi_isp_jwt.replay import (
    DEFAULT_KEY_PREFIX,
    MemoryReplayStore,
    RedisReplayStore,
    ReplayStore,
    refuse_replay,
)
from tests.support.redis_server import RedisServer, find_redis_server, free_port

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- in memory -----------------------------------------------------------------------------------


async def test_a_key_is_new_the_first_time_and_a_replay_after() -> None:
    store = MemoryReplayStore()
    assert [await store.remember("k", 60), await store.remember("k", 60)] == [True, False]


async def test_keys_are_remembered_each_on_its_own() -> None:
    store = MemoryReplayStore()
    await store.remember("a", 60)
    assert await store.remember("b", 60) is True


async def test_a_key_is_new_again_once_its_time_to_live_is_over() -> None:
    clock = Clock()
    store = MemoryReplayStore(clock=clock)
    await store.remember("k", 60)
    clock.now += 60
    assert await store.remember("k", 60) is True


async def test_a_key_is_still_a_replay_just_before_its_time_to_live_ends() -> None:
    clock = Clock()
    store = MemoryReplayStore(clock=clock)
    await store.remember("k", 60)
    clock.now += 59.9
    assert await store.remember("k", 60) is False


async def test_expired_keys_make_room_for_new_ones() -> None:
    clock = Clock()
    store = MemoryReplayStore(2, clock=clock)
    await store.remember("a", 10)
    await store.remember("b", 10)
    clock.now += 10
    assert (await store.remember("c", 10), len(store)) == (True, 1)


async def test_expired_keys_behind_a_longer_lived_one_are_swept_when_full() -> None:
    clock = Clock()
    store = MemoryReplayStore(2, clock=clock)
    await store.remember("long", 100)
    await store.remember("short", 10)
    clock.now += 10
    assert (await store.remember("new", 10), len(store)) == (True, 2)


async def test_a_store_full_of_live_keys_answers_unavailable_rather_than_forget_one() -> None:
    clock = Clock()
    store = MemoryReplayStore(2, clock=clock)
    await store.remember("a", 30)
    clock.now += 5
    await store.remember("b", 30)
    with pytest.raises(ReplayStoreUnavailableError) as unavailable:
        await store.remember("c", 30)
    assert (unavailable.value.retry_after, unavailable.value.status_code) == (25, 503)


async def test_a_replay_is_still_refused_when_the_store_is_full() -> None:
    store = MemoryReplayStore(1)
    await store.remember("a", 30)
    assert await store.remember("a", 30) is False


def test_threads_remembering_one_key_see_it_new_exactly_once() -> None:
    store = MemoryReplayStore()
    answers: list[bool] = []
    start = threading.Barrier(8)

    def remember() -> None:
        start.wait()
        answers.extend(store.remember_sync("k", 60) for _ in range(50))

    threads = [threading.Thread(target=remember) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers.count(True) == 1


@pytest.mark.parametrize("size", [0, -1, True, 1.5])
def test_a_store_size_that_is_no_positive_integer_is_a_configuration_error(size: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_entries"):
        MemoryReplayStore(size)


def test_the_memory_store_is_a_replay_store() -> None:
    assert isinstance(MemoryReplayStore(), ReplayStore)


async def test_a_replayed_proof_is_refused_as_replayed() -> None:
    store = MemoryReplayStore()
    await refuse_replay(store, "k", 60)
    with pytest.raises(InvalidDPoPProofError) as replayed:
        await refuse_replay(store, "k", 60)
    assert replayed.value.reason is Reason.DPOP_PROOF_REPLAYED


# -- when redis-server is not installed ---------------------------------------------------------


class Stopped(Exception):
    pass


def stop(message: str) -> NoReturn:
    raise Stopped(message)


def no_redis(name: str) -> None:
    return None


def test_without_redis_server_the_redis_tests_are_skipped_with_the_install_hint() -> None:
    skips: list[str] = []

    def skip(message: str) -> NoReturn:
        skips.append(message)
        raise Stopped

    with pytest.raises(Stopped):
        find_redis_server({}, no_redis, skip=skip, fail=stop)
    assert skips == [
        "redis-server not found (apt-get install redis-server): Redis replay store tests skipped"
    ]


def test_without_redis_server_in_ci_the_redis_tests_fail() -> None:
    with pytest.raises(Stopped, match="cannot be skipped in CI"):
        find_redis_server({"CI": "true"}, no_redis, skip=lambda _: stop("skipped"), fail=stop)


# -- in Redis ------------------------------------------------------------------------------------


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis.from_url(redis_server.url, socket_timeout=2)
    await connection.flushdb()
    yield connection
    await connection.aclose()


@pytest.fixture
async def second_client(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis.from_url(redis_server.url, socket_timeout=2)
    yield connection
    await connection.aclose()


async def test_redis_sees_a_key_new_once_and_a_replay_after(client: redis.asyncio.Redis) -> None:
    store = RedisReplayStore(client)
    assert [await store.remember("k", 60), await store.remember("k", 60)] == [True, False]


async def test_two_stores_sharing_redis_refuse_each_others_replays(
    client: redis.asyncio.Redis, second_client: redis.asyncio.Redis
) -> None:
    first, second = RedisReplayStore(client), RedisReplayStore(second_client)
    await first.remember("proof", 60)
    assert await second.remember("proof", 60) is False


async def test_redis_forgets_a_key_when_its_time_to_live_ends(client: redis.asyncio.Redis) -> None:
    await RedisReplayStore(client).remember("k", 1.5)
    remaining = await client.pttl(DEFAULT_KEY_PREFIX + "k")
    assert 0 < remaining <= 1500


async def test_redis_keys_carry_the_stores_prefix(client: redis.asyncio.Redis) -> None:
    await RedisReplayStore(client, prefix="app-a:").remember("k", 60)
    assert await client.exists("app-a:k") == 1


async def test_stores_with_different_prefixes_do_not_share_keys(
    client: redis.asyncio.Redis,
) -> None:
    await RedisReplayStore(client, prefix="app-a:").remember("k", 60)
    assert await RedisReplayStore(client, prefix="app-b:").remember("k", 60) is True


def test_the_redis_store_is_a_replay_store() -> None:
    assert isinstance(RedisReplayStore(object()), ReplayStore)


async def test_redis_that_cannot_be_reached_answers_unavailable() -> None:
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    connection = redis.asyncio.Redis.from_url(nobody, socket_connect_timeout=2)
    store = RedisReplayStore(connection, retry_after=3)
    with pytest.raises(ReplayStoreUnavailableError) as unavailable:
        await store.remember("k", 60)
    await connection.aclose()
    assert (unavailable.value.retry_after, unavailable.value.reason) == (
        3,
        Reason.REPLAY_STORE_UNAVAILABLE,
    )


async def test_redis_restarting_is_unavailable_while_down_and_works_again_after(
    redis_executable: str,
) -> None:
    with RedisServer(redis_executable) as server:
        connection = redis.asyncio.Redis.from_url(server.url, socket_connect_timeout=2)
        store = RedisReplayStore(connection)
        before = await store.remember("before", 60)
        server.stop()
        with pytest.raises(ReplayStoreUnavailableError):
            await store.remember("while-down", 60)
        server.start()
        after = await store.remember("after", 60)
        await connection.aclose()
    assert (before, after) == (True, True)


async def test_redis_that_stops_answering_is_unavailable_within_the_stores_timeout(
    redis_executable: str,
) -> None:
    with RedisServer(redis_executable) as server:
        connection = redis.asyncio.Redis.from_url(server.url)  # no socket timeout of its own
        store = RedisReplayStore(connection, timeout=0.2)
        await store.remember("before", 60)
        server.pause()
        try:
            started = time.monotonic()
            with pytest.raises(ReplayStoreUnavailableError):
                await store.remember("while-frozen", 60)
            waited = time.monotonic() - started
        finally:
            server.resume()
        await connection.aclose()
    assert waited < 2


@pytest.mark.parametrize("timeout", [0, -1, math.nan, math.inf, True, "1"])
def test_a_redis_timeout_that_is_no_positive_finite_number_is_a_configuration_error(
    timeout: Any,
) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        RedisReplayStore(object(), timeout=timeout)


async def test_a_cluster_client_that_cannot_reach_a_cluster_answers_unavailable(
    redis_server: RedisServer,
) -> None:
    cluster = redis.asyncio.RedisCluster(host="127.0.0.1", port=redis_server.port)
    with pytest.raises(ReplayStoreUnavailableError):
        await RedisReplayStore(cluster).remember("k", 60)


class FailingClient:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def set(self, *args: object, **kwargs: object) -> NoReturn:
        raise self.error


@pytest.mark.parametrize(
    "error", [RuntimeError("Event loop is closed"), ValueError("bad reply"), KeyError("x")]
)
async def test_any_error_from_the_redis_client_answers_unavailable(error: Exception) -> None:
    with pytest.raises(ReplayStoreUnavailableError):
        await RedisReplayStore(FailingClient(error)).remember("k", 60)


async def test_a_redis_pipeline_given_as_client_is_unavailable_not_a_store_that_forgets(
    client: redis.asyncio.Redis,
) -> None:
    # A pipeline queues the command and answers itself: no reply says the key is new.
    store = RedisReplayStore(client.pipeline())
    with pytest.raises(ReplayStoreUnavailableError):
        await store.remember("k", 60)


class AnsweringClient:
    def __init__(self, reply: object) -> None:
        self.reply = reply

    async def set(self, *args: object, **kwargs: object) -> object:
        return self.reply


@pytest.mark.parametrize("reply", ["OK", b"OK", 1, "nil", b"", 0, [True]])
async def test_a_redis_reply_other_than_true_none_or_false_answers_unavailable(
    reply: object,
) -> None:
    with pytest.raises(ReplayStoreUnavailableError):
        await RedisReplayStore(AnsweringClient(reply)).remember("k", 60)


@pytest.mark.parametrize(("reply", "new"), [(True, True), (None, False), (False, False)])
async def test_redis_replies_true_for_a_new_key_and_none_or_false_for_a_replay(
    reply: object, new: bool
) -> None:
    assert await RedisReplayStore(AnsweringClient(reply)).remember("k", 60) is new
