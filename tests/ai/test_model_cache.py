"""Learning label sets refit in the background: a request waits a bounded time for its
family's new model, else the previous one answers and says so (its digest)."""

from __future__ import annotations

import threading
import time

from connectors.ai.model_cache import ModelCache


def test_a_new_label_set_is_fitted_once_and_cached() -> None:
    cache: ModelCache[str] = ModelCache()
    calls: list[str] = []
    for _ in range(3):
        assert cache.get("k1", lambda: calls.append("k1") or "model-1") == ("k1", "model-1")
    assert calls == ["k1"] and cache.fits == 1


def test_a_slow_refit_leaves_the_previous_model_answering_until_it_is_ready() -> None:
    cache: ModelCache[str] = ModelCache(refit_wait_s=0.05)
    assert cache.get("v1", lambda: "old", family="wf:step") == ("v1", "old")
    release = threading.Event()

    def slow() -> str:
        release.wait(10)
        return "new"

    started = time.perf_counter()
    assert cache.get("v2", slow, family="wf:step") == ("v1", "old")
    assert time.perf_counter() - started < 5, "the wait for a refit is bounded"
    release.set()
    deadline = time.monotonic() + 10
    while cache.get("v2", slow, family="wf:step") != ("v2", "new"):
        assert time.monotonic() < deadline, "the background refit never finished"
        time.sleep(0.01)
    assert cache.fits == 2


def test_without_a_family_a_changed_set_waits_for_its_own_fit() -> None:
    cache: ModelCache[str] = ModelCache(refit_wait_s=0.0)
    cache.get("v1", lambda: "old")
    assert cache.get("v2", lambda: "new") == ("v2", "new")


def test_a_failed_refit_keeps_the_previous_model_and_is_tried_again() -> None:
    cache: ModelCache[str] = ModelCache(refit_wait_s=5)
    cache.get("v1", lambda: "old", family="f")

    def broken() -> str:
        raise RuntimeError("embedding failed")

    assert cache.get("v2", broken, family="f") == ("v1", "old")
    assert cache.get("v2", lambda: "new", family="f") == ("v2", "new")


def test_sets_superseded_before_their_fit_starts_are_skipped() -> None:
    cache: ModelCache[str] = ModelCache(refit_wait_s=0.0)
    cache.get("v1", lambda: "old", family="f")
    gate = threading.Event()
    fitted: list[str] = []

    def fit(name: str, wait: bool) -> str:
        if wait:
            gate.wait(10)
        fitted.append(name)
        return name

    cache.get("v2", lambda: fit("v2", True), family="f")  # occupies the refit thread
    cache.get("v3", lambda: fit("v3", False), family="f")  # queued, then superseded
    cache.get("v4", lambda: fit("v4", False), family="f")
    gate.set()
    deadline = time.monotonic() + 10
    while "v4" not in fitted:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert fitted == ["v2", "v4"]
