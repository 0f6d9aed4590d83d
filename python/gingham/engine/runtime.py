"""Process-wide runtime settings of the compiled core: SIMD level and thread count."""
from __future__ import annotations

from .. import _core
from . import validate as _validate


def simd_level() -> str:
    """SIMD level the kernels use: 'scalar', 'avx2', 'avx512' or 'neon'.

    Detected from the CPU at import; the environment variable ``GINGHAM_SIMD_LEVEL`` (read at
    import) may force a lower supported level.
    """
    return _core.simd_level()


def set_num_threads(n_threads: int) -> None:
    """Set the number of threads every gingham kernel uses (>= 1)."""
    _core.set_num_threads(_validate.positive_int(n_threads, "n_threads"))


def get_num_threads() -> int:
    """Number of threads gingham kernels use (defaults to OpenMP's maximum)."""
    return _core.get_num_threads()
