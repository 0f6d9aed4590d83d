"""Sharded indexes and Ray scale-out (gingham[ray]; docs/distributed.md).

``ShardedIndex`` keeps the API of ``gingham.Index`` over N shard Indexes; ``build`` writes one
in parallel on Ray. Ray itself is imported only when a Ray backend or build is used.
"""
from .backends import ShardUnavailableError
from .build import build
from .manifest import is_sharded, route
from .sharded import ShardedHits, ShardedIndex

__all__ = ["ShardUnavailableError", "ShardedHits", "ShardedIndex", "build", "is_sharded",
           "route"]
