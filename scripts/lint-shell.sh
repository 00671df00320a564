#!/usr/bin/env bash
# Runs shellcheck on the project's shell scripts: scripts/*.sh, and lab/labctl when it is a shell
# script (its first line a sh/bash/dash/ksh shebang; it has been a Python script before).
# Run by `make lint`; exits non-zero on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."

# is_shell FILE: the shebang names sh, bash, dash or ksh (directly or through env)
is_shell() {
  local first interp words
  IFS= read -r first < "$1" || [ -n "$first" ] || return 1
  [[ $first == '#!'* ]] || return 1
  read -r -a words <<< "${first#'#!'}"
  interp=${words[0]:-}
  if [ "${interp##*/}" = env ]; then interp=${words[1]:-}; fi
  case ${interp##*/} in
    sh | bash | dash | ksh) return 0 ;;
    *) return 1 ;;
  esac
}

files=(scripts/*.sh)
if [ -f lab/labctl ] && is_shell lab/labctl; then files+=(lab/labctl); fi
echo "shellcheck ${files[*]}"
shellcheck "${files[@]}"
