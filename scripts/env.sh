# shellcheck shell=bash
# Sourced by the other scripts: puts rustup's cargo first on PATH when it is there (a
# Debian cargo in /usr/bin, e.g. cargo-web for scripts/check-macos.sh, has no rustfmt or
# clippy).
if [ -x "$HOME/.cargo/bin/cargo" ]; then
  case ":$PATH:" in
    *":$HOME/.cargo/bin:"*) ;;
    *) export PATH="$HOME/.cargo/bin:$PATH" ;;
  esac
fi
