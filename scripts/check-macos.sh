#!/usr/bin/env bash
# Type-checks golab for macOS, Intel and Apple Silicon, on this Linux machine:
#   bash scripts/check-macos.sh [x86_64-apple-darwin] [aarch64-apple-darwin]
# (both by default). `cargo check` only: nothing is linked, nothing runs on a Mac.
#
# rustup cannot add the Apple targets here (no download of its components), so std
# itself is built for the target from source (-Zbuild-std, allowed on a stable compiler
# by RUSTC_BOOTSTRAP=1) with a compiler and its matching std source from Debian's
# packages: rustc-web, cargo-web and rust-web-src (bookworm-security; built for this
# glibc). ring's build script compiles C for the target: zig, from PyPI's ziglang in a
# venv of its own, is that C compiler (`zig cc -target ARCH-macos`, which carries the
# macOS libc headers). The first run builds std per target: about 10-12 minutes each on
# 2 busy cores; later runs reuse the target folder.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
((${#targets[@]})) || targets=(x86_64-apple-darwin aarch64-apple-darwin)

missing=()
for p in rustc-web cargo-web rust-web-src python3-venv; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "check-macos: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
RUSTC_WEB=/usr/bin/rustc
CARGO_WEB=/usr/bin/cargo
"$RUSTC_WEB" --version >&2

work="${GOLAB_MACOS_CHECK_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/golab/macos-check}"
mkdir -p "$work"
if [ ! -x "$work/zig/bin/python" ] || ! "$work/zig/bin/python" -m ziglang version >/dev/null 2>&1; then
  echo "check-macos: installing zig (PyPI: ziglang) into $work/zig" >&2
  python3 -m venv "$work/zig"
  "$work/zig/bin/pip" install -q ziglang
fi
zig_py="$work/zig/bin/python"
echo "zig $("$zig_py" -m ziglang version)" >&2

# cc-rs speaks to an Apple clang; zig cc takes the target once, and not these flags.
cat > "$work/zcc" <<'CC'
#!/usr/bin/env bash
args=()
skip=0
for a in "$@"; do
  if ((skip)); then skip=0; continue; fi
  case "$a" in
    -arch) skip=1 ;;
    -mmacosx-version-min=*|--target=*) ;;
    -gfull) args+=(-g) ;;
    *) args+=("$a") ;;
  esac
done
exec "$GOLAB_ZIG_PY" -m ziglang cc -target "$GOLAB_ZIG_TARGET" "${args[@]}"
CC
chmod +x "$work/zcc"

status=0
for t in "${targets[@]}"; do
  case "$t" in
    x86_64-apple-darwin) zt=x86_64-macos ;;
    aarch64-apple-darwin) zt=aarch64-macos ;;
    *) echo "check-macos: $t is not a macOS target" >&2; exit 2 ;;
  esac
  echo "check-macos: cargo check --target $t --all-targets" >&2
  start=$(date +%s)
  cc_var="CC_${t//-/_}"
  if env "$cc_var=$work/zcc" GOLAB_ZIG_PY="$zig_py" GOLAB_ZIG_TARGET="$zt" \
      RUSTC="$RUSTC_WEB" RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$work/target" \
      "$CARGO_WEB" check --quiet -Zbuild-std --target "$t" --all-targets; then
    echo "check-macos: $t: ok in $(( $(date +%s) - start )) s" >&2
  else
    echo "check-macos: $t: FAILED" >&2
    status=1
  fi
done
exit "$status"
