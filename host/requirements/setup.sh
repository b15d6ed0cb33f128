#!/usr/bin/env bash
# One-command, idempotent setup: Debian packages (when root), then .venv with pinned Python packages.
# Usage: host/requirements/setup.sh            (called by `make setup`; safe to run again)
set -euo pipefail
cd "$(dirname "$0")/../.."

APT_PACKAGES=(gcc make gcc-riscv64-unknown-elf binutils-riscv64-unknown-elf picolibc-riscv64-unknown-elf
              qemu-system-misc clang libclang-rt-14-dev libsodium-dev)
VENV=${VENV:-.venv}
STAMP="$VENV/.setup-stamp"

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: these Debian packages are missing; the firmware targets need them:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    echo "setup: going on with the Python side." >&2
  fi
fi

# libsodium's source for the QEMU rv32 build (pinned Debian source package; git-ignored).
host/requirements/fetch-libsodium.sh || echo "setup: going on without libsodium's source; the QEMU build will retry" >&2

want=$(cat host/requirements/base.txt host/requirements/nodeps.txt host/requirements/constraints.txt pyproject.toml | sha256sum | cut -c1-16)
if [[ -f $STAMP && $(cat "$STAMP") == "$want" ]]; then
  echo "setup: $VENV is up to date"
  exit 0
fi
[[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
# torch first and pinned: a loose torch lets the resolver pull a multi-GB CUDA build.
"${PIP[@]}" torch==2.13.0
"${PIP[@]}" -r host/requirements/base.txt -c host/requirements/constraints.txt
"${PIP[@]}" --no-deps -r host/requirements/nodeps.txt -c host/requirements/constraints.txt
"${PIP[@]}" --no-deps -e .
# The one known conflict is the quadprog pin that nodeps.txt explains; anything else fails setup.
problems=$("$VENV/bin/python" -m pip check 2>&1 \
  | grep -v -e '^No broken requirements' -e '^trajectory-planning-helpers 0.79 has requirement quadprog==0.1.7' || true)
if [[ -n $problems ]]; then
  echo "$problems" >&2
  exit 1
fi
echo "$want" > "$STAMP"
echo "setup: done ($VENV)"
