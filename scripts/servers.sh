# shellcheck shell=bash
# Throwaway PostgreSQL and Redis servers on free loopback ports, shared by
# scripts/test and scripts/bench (sourced, not run). Debian 12, as root.
#
#   servers_need_packages PKG...  # adds postgresql/redis-server if missing, installs all given
#   servers_start PREFIX          # mktemp -d /tmp/PREFIX.XXXXXX, then PostgreSQL and Redis
#   servers_stop                  # stops both and removes their files; safe to call at any point
#
# servers_start sets: tmp (the directory; a caller may put its own files in
# it), pg_bin, pg_port, redis_port. servers_stop is meant to run from the
# caller's EXIT trap, after the caller has stopped whatever used the servers.
# The caller runs `set -euo pipefail` and `cd` to the repository first.

export DEBIAN_FRONTEND=noninteractive
command -v cargo >/dev/null || PATH="$HOME/.cargo/bin:$PATH"  # rustup's default place

log() { printf '== %s\n' "$*" >&2; }
die() { printf '!! %s\n' "$*" >&2; exit 1; }
# Newest installed server; empty (not an error under pipefail) when none is.
pg_bindir() { { ls -d /usr/lib/postgresql/*/bin 2>/dev/null || true; } | sort -V | tail -1; }

tmp='' pg_bin='' pg_port='' redis_port=''

# --- Debian packages, installed only when missing ----------------------------
# Arguments: the caller's own missing packages; PostgreSQL and Redis are
# checked here.
servers_need_packages() {
  local missing=() i
  pg_bin=$(pg_bindir)
  if [[ -z $pg_bin || ! -x $pg_bin/initdb || ! -x $pg_bin/pg_isready ]]; then missing+=(postgresql); fi
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then missing+=(redis-server); fi
  missing+=("$@")
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    # Another apt run may hold the locks: dpkg's lock is waited for with
    # Lock::Timeout; `apt-get update` may not wait for the lists lock, so retry it.
    local apt_opts=(-q -o DPkg::Lock::Timeout=600)
    for i in $(seq 30); do
      apt-get "${apt_opts[@]}" update </dev/null >/dev/null && break
      ((i < 30)) || die "apt-get update failed"
      log "apt-get update failed (try $i), retrying in 10 s"; sleep 10
    done
    apt-get "${apt_opts[@]}" install -y "${missing[@]}" </dev/null >/dev/null
    pg_bin=$(pg_bindir)
    [[ -n $pg_bin && -x $pg_bin/initdb ]] || die "no PostgreSQL server binaries under /usr/lib/postgresql"
  fi
}

# A free loopback port: the kernel picks one (python3), else probe random ones
# below Linux's ephemeral range for one nobody listens on.
free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    return
  fi
  local p
  for _ in $(seq 200); do
    p=$((15000 + RANDOM % 15000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  die "no free port found"
}

# initdb refuses root; run as postgres from a directory it may read.
as_pg() { (cd "$tmp/pg" && runuser -u postgres -- "$@"); }

# --- stop: both servers, then their files --------------------------------------
# shellcheck disable=SC2317  # reached through the callers' traps
servers_stop() {
  if [[ -n $tmp ]]; then
    if [[ -s $tmp/redis.pid ]]; then
      local pid; pid=$(<"$tmp/redis.pid")
      kill "$pid" 2>/dev/null
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null
    fi
    if [[ -f $tmp/pg/data/postmaster.pid ]]; then
      as_pg "$pg_bin/pg_ctl" -D "$tmp/pg/data" stop -m immediate -w -t 30 >/dev/null 2>&1 ||
        kill -KILL "$(head -1 "$tmp/pg/data/postmaster.pid")" 2>/dev/null
    fi
    rm -rf "$tmp"
  fi
}

# --- start: PostgreSQL, then Redis -------------------------------------------
servers_start() {
  local prefix=$1
  tmp=$(mktemp -d "/tmp/$prefix.XXXXXX")  # not $TMPDIR: the postgres user must reach it
  chmod 755 "$tmp"
  mkdir -p "$tmp/pg/data" "$tmp/pg/run"
  chown -R postgres:postgres "$tmp/pg"
  chmod 700 "$tmp/pg/data"

  pg_port=$(free_port)
  log "starting PostgreSQL on 127.0.0.1:$pg_port ($pg_bin)"
  if ! as_pg "$pg_bin/initdb" -D "$tmp/pg/data" -U postgres --auth=trust --no-locale -E UTF8 \
      --no-sync >"$tmp/initdb.log" 2>&1; then
    cat "$tmp/initdb.log" >&2; die "initdb failed"
  fi
  local pg_log=$tmp/pg/postgres.log  # written by pg_ctl as postgres
  local pg_ok=0
  if as_pg "$pg_bin/pg_ctl" -D "$tmp/pg/data" -l "$pg_log" -w -t 60 start -o "-c listen_addresses=127.0.0.1 \
      -p $pg_port -c unix_socket_directories=$tmp/pg/run -c fsync=off -c synchronous_commit=off \
      -c full_page_writes=off -c max_connections=300" >/dev/null; then
    for _ in $(seq 100); do
      if "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" -U postgres; then pg_ok=1; break; fi
      sleep 0.2
    done
  fi
  if ((!pg_ok)); then cat "$pg_log" >&2 2>/dev/null || true; die "PostgreSQL did not start"; fi

  redis_port=$(free_port)
  log "starting Redis on 127.0.0.1:$redis_port"
  local redis_ok=0 deadline
  if redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
      --pidfile "$tmp/redis.pid" --dir "$tmp" --logfile "$tmp/redis.log"; then
    # timeout: should a foreign server hold the port, redis-cli would wait forever.
    deadline=$((SECONDS + 15))
    while ((SECONDS < deadline)); do
      if [[ $(timeout 1 redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null) == PONG ]]; then redis_ok=1; break; fi
      sleep 0.1
    done
  fi
  if ((!redis_ok)); then cat "$tmp/redis.log" >&2 2>/dev/null || true; die "Redis did not start"; fi
}
