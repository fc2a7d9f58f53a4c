# shellcheck shell=bash disable=SC2034  # sourced: REPO_ROOT is for the scripts that source it
# Shared helpers for the repo's scripts: progress lines with elapsed time, per-step logs, and
# version-keyed caching. Sourced, not executed.

# Everything expensive lives outside the checkout, keyed by version, so a clean clone reuses it.
: "${MLP_CACHE:=$HOME/.cache/mlplatform}"
MLP_BIN="$MLP_CACHE/bin"
MLP_LOGS="$MLP_CACHE/logs"
MLP_BUILD="$MLP_CACHE/build"
mkdir -p "$MLP_BIN" "$MLP_LOGS" "$MLP_BUILD"

# Go from the machine's toolchain, also where a non-login shell (CI) has no Go on PATH.
command -v go >/dev/null 2>&1 || export PATH="/usr/local/go/bin:$PATH"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_MLP_T0=$(date +%s)

# progress MESSAGE: one line, prefixed with the seconds since the script started.
progress() { printf '[%5ss] %s\n' "$(( $(date +%s) - _MLP_T0 ))" "$*"; }

# log_progress LOG: what a step's log shows so far. Go builds run with -v, which prints each
# package as it is compiled, so the count grows while a long build is alive.
log_progress() {
  local fetched compiled
  fetched=$(grep -c '^go: downloading' "$1" 2>/dev/null) || true
  compiled=$(grep -cE '^[a-z0-9.-]+(\.[a-z]+)?/[^ ]+$|^[a-z0-9]+$' "$1" 2>/dev/null) || true
  if ((compiled > 0 || fetched > 0)); then
    echo "${compiled:-0} Go packages compiled, ${fetched:-0} modules downloaded"
  else
    echo "last line: $(tail -n 1 "$1" 2>/dev/null | cut -c1-120)"
  fi
}

# run_step NAME KEY CMD...: runs CMD unless the step already completed with the same KEY.
# Output goes to $MLP_LOGS/NAME.log; on failure the step's name and log path are printed and the
# script stops. A step marks itself done only after CMD succeeded, so a re-run resumes.
run_step() {
  local name=$1 key=$2; shift 2
  local marker="$MLP_BUILD/.done-$name" log="$MLP_LOGS/$name.log"
  if [[ -f $marker && $(cat "$marker") == "$key" ]]; then
    progress "$name: cached ($key)"
    return 0
  fi
  local t0; t0=$(date +%s)
  progress "$name: building ($key), log: $log"
  # Heartbeat so a long build shows it is alive.
  ( while sleep 60; do progress "$name: still working ($(( $(date +%s) - t0 ))s) — $(log_progress "$log")"; done ) &
  local hb=$!
  # The step runs in a background subshell so `set -e` holds inside it (bash ignores -e for
  # anything run as an `if` condition), and a failing command anywhere in a step fails it.
  ( set -e; "$@" ) >"$log" 2>&1 &
  local pid=$! rc=0
  wait "$pid" || rc=$?
  kill "$hb" 2>/dev/null; wait "$hb" 2>/dev/null || true
  if ((rc == 0)); then
    echo "$key" >"$marker"
    progress "$name: done in $(( $(date +%s) - t0 ))s"
  else
    progress "$name: FAILED after $(( $(date +%s) - t0 ))s. Last lines of $log:"
    tail -n 25 "$log" | sed 's/^/    /'
    echo "bootstrap stopped at step '$name'; full log: $log (re-run resumes here)" >&2
    exit 1
  fi
}

# module_dir MODULE[@VERSION]: the module's folder in the module cache, downloading it first.
# (`go list -m -f '{{.Dir}}'` prints an empty line while a module is not yet in the cache, so a
# lookup that works on a warm machine fails on a fresh one.) Run inside the module that requires it.
module_dir() {
  local dir
  dir=$(go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -n $dir && -d $dir ]] || { echo "module_dir: no folder for $1 after go mod download" >&2; return 1; }
  echo "$dir"
}

# hash_files FILES...: short content hash, used in cache keys so a changed recipe rebuilds.
hash_files() { cat "$@" | sha256sum | cut -c1-12; }
