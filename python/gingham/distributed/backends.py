"""Where the shards of an open ShardedIndex run: in this process, or one Ray actor per shard.

Both backends answer ``call(method, args)``: ``args`` maps shard number -> positional arguments
of ``Shard.<method>``; the result maps shard number -> return value. Every shard named is
called at once. The Ray backend bounds each round by ``timeout`` seconds: a shard whose actor
died or did not answer in time has its actor killed (Ray restarts it, up to ``max_restarts``)
and its call retried, ``retries`` times; then the call raises ShardUnavailableError naming the
shards, or, with ``allow_partial=True``, returns without them (the caller marks the result).
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .shard import Shard


class ShardUnavailableError(RuntimeError):
    """One or more shards did not answer (after the retries)."""

    def __init__(self, shards: list[int], reason: str):
        self.shards = sorted(shards)
        super().__init__(f"shard(s) {self.shards} unavailable: {reason}")


class LocalBackend:
    """Every shard opened in this process; calls run on a thread pool (the kernels release
    the GIL)."""

    name = "local"

    def __init__(self, paths: list[str], threads: int | None = None):
        self.shards = [Shard(p, threads) for p in paths]
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(paths)))

    def call(self, method: str, args: dict[int, tuple], *, allow_partial: bool = False,
             write: bool = False) -> dict[int, Any]:
        if len(args) == 1:
            (s, a), = args.items()
            return {s: getattr(self.shards[s], method)(*a)}
        futures = {s: self._pool.submit(getattr(self.shards[s], method), *a)
                   for s, a in args.items()}
        return {s: f.result() for s, f in futures.items()}

    def missing(self) -> list[int]:
        return []

    def close(self) -> None:
        for shard in self.shards:
            shard.close()
        self._pool.shutdown()


def ensure_ray(address: str | None = None, **init_options) -> Any:
    """Import ray and connect: to ``address`` if given, else to the running session or a new
    local one. ImportError naming the extra when ray is missing."""
    try:
        import ray
    except ImportError:
        raise ImportError("the distributed layer needs Ray: pip install 'gingham[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 **init_options)
    return ray


class RayBackend:
    """One actor per shard holding its open (memory-mapped) Index.

    threads: OpenMP threads per actor (set in the actor's environment and in gingham);
    num_cpus: CPUs reserved per actor (placement); timeout: seconds per round of calls;
    retries: rounds after the first; max_restarts: Ray restarts of a dead actor."""

    name = "ray"

    def __init__(self, paths: list[str], *, address: str | None = None, threads: int = 1,
                 num_cpus: float | None = None, timeout: float = 30.0, retries: int = 1,
                 max_restarts: int = 3):
        ray = ensure_ray(address)
        self._ray = ray
        if num_cpus is None:
            total = float(ray.cluster_resources().get("CPU", 1.0))
            num_cpus = min(1.0, total / max(1, len(paths)))
        actor = ray.remote(Shard).options(
            num_cpus=num_cpus, max_restarts=max_restarts, max_task_retries=0,
            runtime_env={"env_vars": {"OMP_NUM_THREADS": str(threads),
                                      "PYTHONPATH": os.environ.get("PYTHONPATH", "")}})
        self.actors = [actor.remote(p, threads) for p in paths]
        self.timeout = float(timeout)
        self.retries = int(retries)
        self._missing: list[int] = []
        self.call("size", {s: () for s in range(len(paths))})  # fail now if a shard cannot open

    def _submit(self, method: str, shard: int, args: tuple):
        return getattr(self.actors[shard], method).remote(*args)

    def call(self, method: str, args: dict[int, tuple], *, allow_partial: bool = False,
             write: bool = False) -> dict[int, Any]:
        """write=True (a commit): no deadline and no retry, since a killed commit may or may
        not have landed; a dead actor raises ShardUnavailableError saying so."""
        ray = self._ray
        from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError
        started = time.monotonic()
        refs = {self._submit(method, s, a): s for s, a in args.items()}
        if write:
            out, lost = {}, []
            for ref, s in refs.items():
                try:
                    out[s] = ray.get(ref)
                except RayTaskError as exc:
                    raise exc.as_instanceof_cause() from None
                except RayActorError:
                    lost.append(s)
            if lost:
                raise ShardUnavailableError(lost, f"its actor died during {method}; each shard "
                                                  "commit is atomic: rerun with upsert=True")
            return out
        try:  # the common case: every shard answers in time
            values = ray.get(list(refs), timeout=self.timeout)
        except RayTaskError as exc:  # the shard raised: the caller's error, not a fault
            raise exc.as_instanceof_cause() from None
        except (RayActorError, GetTimeoutError):
            pass
        else:
            self._missing = []
            return dict(zip(refs.values(), values))
        return self._recover(method, args, refs, allow_partial, started + self.timeout)

    def _recover(self, method: str, args: dict[int, tuple], refs: dict, allow_partial: bool,
                 first_deadline: float) -> dict[int, Any]:
        """Collect shard by shard: a dead actor's call is resubmitted until Ray has restarted
        it; a shard past its deadline has its actor killed (and restarted) and gets a new
        deadline, ``retries`` times; then it counts as unavailable."""
        ray = self._ray
        from ray.exceptions import RayActorError, RayTaskError
        deadline = {s: first_deadline for s in args}
        retries = {s: self.retries for s in args}
        results: dict[int, Any] = {}
        failed: dict[int, str] = {}
        while refs:
            wait = max(0.0, min(deadline[s] for s in refs.values()) - time.monotonic())
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=wait)
            for ref in ready:
                s = refs.pop(ref)
                try:
                    results[s] = ray.get(ref)
                except RayTaskError as exc:
                    raise exc.as_instanceof_cause() from None
                except RayActorError as exc:
                    failed[s] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
                    time.sleep(0.05)  # the actor is restarting: ask again shortly
                    refs[self._submit(method, s, args[s])] = s
            now = time.monotonic()
            for ref, s in list(refs.items()):
                if now < deadline[s]:
                    continue
                if retries[s] == 0:
                    refs.pop(ref)
                    failed.setdefault(s, f"no answer within {self.timeout:g} s")
                    continue
                retries[s] -= 1
                deadline[s] = now + self.timeout
                if s not in failed:  # alive but not answering: restart it
                    ray.kill(self.actors[s], no_restart=False)
                refs.pop(ref)
                refs[self._submit(method, s, args[s])] = s
                failed.pop(s, None)
        missing = sorted(s for s in args if s not in results)
        self._missing = missing
        if missing and not allow_partial:
            raise ShardUnavailableError(missing, f"{failed[missing[0]]} (after {self.retries} "
                                                 "retries)")
        return results

    def missing(self) -> list[int]:
        """Shards left out of the last call (allow_partial=True)."""
        return list(self._missing)

    def close(self) -> None:
        for a in self.actors:
            self._ray.kill(a, no_restart=True)
        self.actors = []
