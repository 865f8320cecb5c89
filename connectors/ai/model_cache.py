"""Fitted local models by label-set digest, and refits in the background for label sets that learn.

A label set is identified by its digest (``label_set_key``); a model is fitted once per
digest and kept in a small LRU. A *family* (``ClassifyRequest.model_family``, e.g.
``workflow:step``) is a label set that changes as people correct it. When a family's set
changes, the new model is fitted on one background thread while requests keep being
answered: each waits at most ``refit_wait_s`` for the new model, then is answered by the
family's previous one (and says so: the answer carries the digest of the model that gave
it). Only the newest wanted set of a family is fitted; sets superseded before their fit
started are skipped, so a burst of corrections costs one or two fits, not one each.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Generic, TypeVar

M = TypeVar("M")

REFIT_WAIT_S = 1.0
"""How long a request waits for its family's new model before the previous one answers."""


class Superseded(Exception):
    """A newer label set of the same family was asked for before this one's fit started."""


class ModelCache(Generic[M]):
    def __init__(self, *, max_models: int = 32, refit_wait_s: float | None = REFIT_WAIT_S) -> None:
        self._models: OrderedDict[str, M] = OrderedDict()
        self._max_models = max_models
        self._wait = refit_wait_s
        self._lock = threading.Lock()
        self._fitting: dict[str, Future[M]] = {}
        self._latest: dict[str, str] = {}
        """family → digest of its newest fitted model."""
        self._wanted: dict[str, str] = {}
        """family → digest most recently asked for."""
        self._refits = ThreadPoolExecutor(max_workers=1, thread_name_prefix="switchboard-refit")
        self.fits = 0
        """Models fitted (cache misses)."""

    def get(self, key: str, fit: Callable[[], M], family: str | None = None) -> tuple[str, M]:
        """(digest, model) answering for ``key``: its own model, fitted now if it is new, or,
        for a family whose new model is still being fitted, the family's previous one."""
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
                if family is not None:
                    self._latest[family] = key
                return key, model
            previous = self._latest.get(family) if family is not None else None
            old = self._models.get(previous) if previous is not None else None
            future = self._fitting.get(key)
            start = future is None
            if future is None:
                future = self._fitting[key] = Future()
            if family is not None:
                self._wanted[family] = key
        if old is None or previous is None:
            # Nothing to answer with meanwhile: fit here (or wait for the fit under way).
            if start:
                self._run(key, fit, family, future, check_wanted=False)
            return key, future.result()
        if start:
            self._refits.submit(self._run, key, fit, family, future, check_wanted=True)
        try:
            return key, future.result(timeout=self._wait)
        except (FutureTimeout, Exception):  # noqa: BLE001 - any fit failure is answered alike
            # Still fitting, superseded, or the fit failed (tried again next time).
            return previous, old

    def _run(
        self,
        key: str,
        fit: Callable[[], M],
        family: str | None,
        future: Future[M],
        *,
        check_wanted: bool,
    ) -> None:
        try:
            with self._lock:
                if check_wanted and family is not None and self._wanted.get(family) != key:
                    raise Superseded(key)
            model = fit()
        except Exception as exc:  # noqa: BLE001 - handed to every waiter through the future
            with self._lock:
                self._fitting.pop(key, None)
            future.set_exception(exc)
            return
        with self._lock:
            self.fits += 1
            self._models[key] = model
            while len(self._models) > self._max_models:
                self._models.popitem(last=False)
            if family is not None:
                self._latest[family] = key
            self._fitting.pop(key, None)
        future.set_result(model)

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
            self._latest.clear()
        self._refits.shutdown(wait=False, cancel_futures=True)
