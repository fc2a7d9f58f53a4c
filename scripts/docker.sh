#!/usr/bin/env bash
# scripts/docker.sh start|stop|status — the Docker engine (Debian docker.io) our image builds use.
# Started by our scripts when no daemon answers; logs to $MLP_CACHE/logs/dockerd.log.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
PIDFILE="$MLP_CACHE/dockerd.pid"

case "${1:-status}" in
  start)
    if docker version -f '{{.Server.Version}}' >/dev/null 2>&1; then
      progress "docker: engine $(docker version -f '{{.Server.Version}}') running"; exit 0
    fi
    command -v dockerd >/dev/null || { echo "dockerd missing: run 'make bootstrap' (installs Debian docker.io)" >&2; exit 1; }
    progress "docker: starting dockerd (log: $MLP_LOGS/dockerd.log)"
    # setsid: the daemon outlives the make/CI step that started it.
    setsid nohup dockerd >"$MLP_LOGS/dockerd.log" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    for _ in $(seq 60); do
      docker version -f '{{.Server.Version}}' >/dev/null 2>&1 && { progress "docker: engine $(docker version -f '{{.Server.Version}}') ready"; exit 0; }
      sleep 1
    done
    echo "dockerd did not answer within 60s; see $MLP_LOGS/dockerd.log" >&2; tail -n 20 "$MLP_LOGS/dockerd.log" >&2; exit 1 ;;
  # Only the engine this script started, by its pid; an engine someone else runs is left alone.
  stop) if [[ -f $PIDFILE ]]; then kill "$(cat "$PIDFILE")" 2>/dev/null || true; rm -f "$PIDFILE"; fi ;;
  status) docker version -f 'engine {{.Server.Version}}' ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
