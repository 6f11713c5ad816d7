#!/usr/bin/env bash
# MoE Lab as a small cluster on one machine, all on loopback, all from Debian packages:
#
#   browser ──> nginx :8080 ──(cookie-hash affinity, WebSockets)──> streamlit replica :8601
#                                                                  streamlit replica :8602 ...
#                                            every replica ──> one PostgreSQL :5433 (progress)
#
# Usage: deploy/cluster.sh start|stop|status|clean [all|db|app|nginx]
#   start   starts what is not running yet (idempotent) and waits until it answers
#   stop    stops processes, keeps data (the database survives a stop/start)
#   status  one line per process; exit 0 when everything is up, 3 otherwise
#   clean   stop, then delete the cluster folder and the database files
#
# Settings (environment; `start` records them in $STATE/cluster.env for later commands):
#   MOE_LAB_CLUSTER_DIR  state folder: pids, logs, nginx.conf   (default: $TMPDIR/moe-lab-cluster)
#   MOE_LAB_REPLICAS     number of Streamlit replicas           (default: 2)
#   MOE_LAB_APP_PORTS    their ports, space-separated           (default: 8601, 8602, ...)
#   MOE_LAB_NGINX_PORT   the public port                        (default: 8080)
#   MOE_LAB_PG_PORT      PostgreSQL's port                      (default: 5433; 5432 is Debian's own)
#   MOE_LAB_AFFINITY     cookie (default) or ip: what nginx hashes to pick a replica
#   MOE_LAB_PYTHON       interpreter with requirements.txt      (default: .venv/bin/python, python3)
#   MOE_LAB_PG_BINDIR    PostgreSQL's bin folder                (default: newest /usr/lib/postgresql/*/bin)
#
# PostgreSQL runs as its own cluster in a temporary folder (initdb, pg_ctl), not Debian's
# `main` cluster, so nothing on the machine is changed. As root it runs as the `postgres` user.
# deploy/README.md says how to run the same on separate hosts.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${MOE_LAB_CLUSTER_DIR:-${TMPDIR:-/tmp}/moe-lab-cluster}
DB_USER=moelab
DB_NAME=moelab
HEALTH_TIMEOUT_S=90  # a replica's first start on a busy 2-core machine

say() { printf '%s\n' "$*" >&2; }
die() { say "cluster.sh: $*"; exit 1; }

# --- settings ---------------------------------------------------------------------------------

load_settings() {
  if [[ -f $STATE/cluster.env ]]; then
    # shellcheck source=/dev/null
    source "$STATE/cluster.env"  # what `start` recorded wins over the environment
    return
  fi
  local n=${MOE_LAB_REPLICAS:-2} i
  APP_PORTS=${MOE_LAB_APP_PORTS:-}
  if [[ -z $APP_PORTS ]]; then
    for ((i = 0; i < n; i++)); do APP_PORTS+="$((8601 + i)) "; done
  fi
  APP_PORTS=$(echo $APP_PORTS)  # trim
  NGINX_PORT=${MOE_LAB_NGINX_PORT:-8080}
  PG_PORT=${MOE_LAB_PG_PORT:-5433}
  AFFINITY=${MOE_LAB_AFFINITY:-cookie}
  [[ $AFFINITY == cookie || $AFFINITY == ip ]] || die "MOE_LAB_AFFINITY must be cookie or ip"
  PYTHON=${MOE_LAB_PYTHON:-}
  if [[ -z $PYTHON ]]; then
    if [[ -x $REPO/.venv/bin/python ]]; then PYTHON=$REPO/.venv/bin/python; else PYTHON=python3; fi
  fi
  PG_BINDIR=${MOE_LAB_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
  PG_HOME=""  # chosen at first start (postgres must be able to reach it)
  DB_PASSWORD=""
}

save_settings() {
  mkdir -p "$STATE"
  {
    printf 'APP_PORTS=%q\nNGINX_PORT=%q\nPG_PORT=%q\nAFFINITY=%q\n' "$APP_PORTS" "$NGINX_PORT" "$PG_PORT" "$AFFINITY"
    printf 'PYTHON=%q\nPG_BINDIR=%q\nPG_HOME=%q\nDB_PASSWORD=%q\n' "$PYTHON" "$PG_BINDIR" "$PG_HOME" "$DB_PASSWORD"
  } >"$STATE/cluster.env"
  chmod 600 "$STATE/cluster.env"
}

database_url() { echo "postgresql+psycopg://$DB_USER:$DB_PASSWORD@127.0.0.1:$PG_PORT/$DB_NAME"; }

random_hex() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

# --- processes --------------------------------------------------------------------------------

pid_alive() {  # a zombie (killed, not yet reaped by its parent) counts as dead
  [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0  # no /proc: trust kill -0
  [[ ${stat##*) } != Z* ]]
}
read_pid() { [[ -f $1 ]] && head -n 1 "$1" || true; }

port_busy() {  # true when something already listens on 127.0.0.1:$1
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

http_ok() {  # GET http://127.0.0.1:$1$2 with plain bash; true on "200" and body "ok"
  local reply
  reply=$(
    exec 2>/dev/null
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n' "$2" "$1" >&3
    timeout 5 cat <&3
  ) || return 1
  [[ $reply == "HTTP/1."?" 200"* && $reply == *$'\r\n\r\nok'* ]]
}

wait_healthy() {  # port name pidfile log
  local deadline=$((SECONDS + HEALTH_TIMEOUT_S))
  until http_ok "$1" /_stcore/health; do
    pid_alive "$(read_pid "$3")" || { tail -n 30 "$4" >&2 || true; die "$2 exited during start (log: $4)"; }
    ((SECONDS < deadline)) || { tail -n 30 "$4" >&2 || true; die "$2 not healthy after ${HEALTH_TIMEOUT_S}s"; }
    sleep 0.2
  done
}

stop_group() {  # pidfile name: TERM the process group, KILL it after 10 s
  local pid
  pid=$(read_pid "$1")
  if pid_alive "$pid"; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do pid_alive "$pid" || break; sleep 0.2; done
    if pid_alive "$pid"; then kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; fi
    say "stopped $2 (pid $pid)"
  fi
  rm -f "$1"
}

# --- PostgreSQL -------------------------------------------------------------------------------

as_pg() {  # PostgreSQL refuses to run as root: run its tools as `postgres` then
  if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_ctl_() { as_pg "$PG_BINDIR/pg_ctl" -D "$PG_HOME/data" "$@"; }

psql_() { as_pg "$PG_BINDIR/psql" -X -q -h "$PG_HOME/run" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 "$@"; }

init_db() {
  [[ -x $PG_BINDIR/initdb ]] || die "no PostgreSQL found (apt-get install postgresql, or set MOE_LAB_PG_BINDIR)"
  if ((EUID == 0)); then
    # pytest's and many users' temp folders are private to root; postgres needs its own.
    PG_HOME=$(mktemp -d "${TMPDIR:-/tmp}/moe-lab-pg.XXXXXX")
    chown postgres: "$PG_HOME"
  else
    PG_HOME=$STATE/pg && mkdir -p "$PG_HOME"
  fi
  DB_PASSWORD=$(random_hex)
  save_settings
  as_pg mkdir -p "$PG_HOME/run"
  as_pg "$PG_BINDIR/initdb" -D "$PG_HOME/data" -U postgres -E UTF8 --locale=C \
    --auth-local=trust --auth-host=scram-sha-256 >"$STATE/initdb.log" 2>&1 \
    || { cat "$STATE/initdb.log" >&2; die "initdb failed"; }
  as_pg tee -a "$PG_HOME/data/postgresql.conf" >/dev/null <<EOF
# added by MoE Lab's deploy/cluster.sh
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_HOME/run'
max_connections = 100
EOF
}

start_db() {
  if [[ -z $PG_HOME || ! -d $PG_HOME/data ]]; then
    port_busy "$PG_PORT" && die "port $PG_PORT is taken (set MOE_LAB_PG_PORT)"
    init_db
    local fresh=1
  fi
  if pg_ctl_ status >/dev/null 2>&1; then return; fi
  port_busy "$PG_PORT" && die "port $PG_PORT is taken (set MOE_LAB_PG_PORT)"
  pg_ctl_ -l "$PG_HOME/postgres.log" -w -t 60 start >/dev/null \
    || { as_pg cat "$PG_HOME/postgres.log" >&2; die "PostgreSQL did not start"; }
  if [[ -n ${fresh:-} ]]; then
    # The password goes in through stdin, never on a command line others can see.
    psql_ -d postgres <<EOF
CREATE ROLE $DB_USER LOGIN PASSWORD '$DB_PASSWORD';
CREATE DATABASE $DB_NAME OWNER $DB_USER;
EOF
  fi
  say "postgresql up on 127.0.0.1:$PG_PORT (data: $PG_HOME/data)"
}

stop_db() {
  [[ -n $PG_HOME && -d $PG_HOME/data ]] || return 0
  if pg_ctl_ status >/dev/null 2>&1; then
    pg_ctl_ -m fast -w -t 60 stop >/dev/null && say "stopped postgresql"
  fi
}

# --- Streamlit replicas -----------------------------------------------------------------------

start_app() {
  [[ -n $DB_PASSWORD ]] || die "start the database first (cluster.sh start db)"
  [[ -f $STATE/cookie_secret ]] || (umask 077 && random_hex >"$STATE/cookie_secret")
  local port started=()
  for port in $APP_PORTS; do
    pid_alive "$(read_pid "$STATE/app-$port.pid")" && continue
    port_busy "$port" && die "port $port is taken (set MOE_LAB_APP_PORTS)"
    # setsid: each replica leads its own process group, so `stop` ends it and its children.
    # One cookie secret for all replicas: XSRF tokens and st.login's cookies verify anywhere.
    (
      cd "$REPO"
      export MOE_LAB_DATABASE_URL STREAMLIT_SERVER_COOKIE_SECRET PYTHONUNBUFFERED=1
      MOE_LAB_DATABASE_URL=$(database_url)
      STREAMLIT_SERVER_COOKIE_SECRET=$(cat "$STATE/cookie_secret")
      exec setsid "$PYTHON" -m streamlit run app.py --server.port "$port" --server.address 127.0.0.1 \
        --server.headless true --browser.gatherUsageStats false \
        >"$STATE/app-$port.log" 2>&1 </dev/null
    ) &
    echo $! >"$STATE/app-$port.pid"
    started+=("$port")
  done
  for port in "${started[@]}"; do
    wait_healthy "$port" "replica :$port" "$STATE/app-$port.pid" "$STATE/app-$port.log"
    say "replica up on http://127.0.0.1:$port"
  done
}

stop_app() {
  local port
  for port in $APP_PORTS; do stop_group "$STATE/app-$port.pid" "replica :$port"; done
}

# --- nginx ------------------------------------------------------------------------------------

render_nginx_conf() {
  local template servers="" port affinity
  template=$(<"$REPO/deploy/nginx.conf.template")
  for port in $APP_PORTS; do servers+="        server 127.0.0.1:$port max_fails=1 fail_timeout=5s;"$'\n'; done
  if [[ $AFFINITY == ip ]]; then affinity='hash $remote_addr consistent'; else affinity='hash $moelab_route consistent'; fi
  template=${template//@STATE@/$STATE}
  template=${template//@LISTEN_PORT@/$NGINX_PORT}
  template=${template//@AFFINITY@/$affinity}
  template=${template//@SERVERS@/${servers%$'\n'}}
  mkdir -p "$STATE/nginx/tmp"
  printf '%s\n' "$template" >"$STATE/nginx/nginx.conf"
}

nginx_() { nginx -p "$STATE/nginx" -c "$STATE/nginx/nginx.conf" -g 'daemon on;' "$@"; }

start_nginx() {
  command -v nginx >/dev/null || die "nginx is not installed (apt-get install nginx)"
  pid_alive "$(read_pid "$STATE/nginx/nginx.pid")" && return
  port_busy "$NGINX_PORT" && die "port $NGINX_PORT is taken (set MOE_LAB_NGINX_PORT)"
  render_nginx_conf
  nginx_ -t -q 2>"$STATE/nginx/check.log" || { cat "$STATE/nginx/check.log" >&2; die "bad nginx.conf"; }
  nginx_ 2>>"$STATE/nginx/error.log" || { tail -n 20 "$STATE/nginx/error.log" >&2; die "nginx did not start"; }
  local deadline=$((SECONDS + 20))
  until http_ok "$NGINX_PORT" /_stcore/health; do
    ((SECONDS < deadline)) || { tail -n 20 "$STATE/nginx/error.log" >&2; die "nginx does not reach a replica"; }
    sleep 0.2
  done
  say "nginx up on http://127.0.0.1:$NGINX_PORT (affinity: $AFFINITY)"
}

stop_nginx() {
  local pid
  pid=$(read_pid "$STATE/nginx/nginx.pid")
  if pid_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true  # nginx's master stops its workers on TERM
    for _ in $(seq 50); do pid_alive "$pid" || break; sleep 0.2; done
    pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
    say "stopped nginx (pid $pid)"
  fi
  rm -f "$STATE/nginx/nginx.pid"
}

# --- status -----------------------------------------------------------------------------------

status() {
  local down=0 port pid state
  if [[ -n $PG_HOME && -d $PG_HOME/data ]] && pg_ctl_ status >/dev/null 2>&1; then
    printf '%-12s %-8s %s\n' postgresql up "127.0.0.1:$PG_PORT"
  else
    printf '%-12s %-8s %s\n' postgresql down "127.0.0.1:$PG_PORT"; down=1
  fi
  for port in $APP_PORTS; do
    pid=$(read_pid "$STATE/app-$port.pid")
    if pid_alive "$pid" && http_ok "$port" /_stcore/health; then state=up; else state=down; down=1; fi
    printf '%-12s %-8s %s\n' "replica" "$state" "http://127.0.0.1:$port pid=${pid:--}"
  done
  pid=$(read_pid "$STATE/nginx/nginx.pid")
  if pid_alive "$pid" && http_ok "$NGINX_PORT" /_stcore/health; then state=up; else state=down; down=1; fi
  printf '%-12s %-8s %s\n' nginx "$state" "http://127.0.0.1:$NGINX_PORT pid=${pid:--}"
  if [[ -n $DB_PASSWORD ]]; then
    printf '%-12s %-8s %s\n' database "" "postgresql+psycopg://$DB_USER:***@127.0.0.1:$PG_PORT/$DB_NAME"
  fi
  return $((down ? 3 : 0))
}

# --- main -------------------------------------------------------------------------------------

main() {
  local command=${1:-} what=${2:-all}
  [[ $what =~ ^(all|db|app|nginx)$ ]] || die "unknown part '$what' (all, db, app or nginx)"
  load_settings
  want() { [[ $what == all || $what == "$1" ]]; }
  case $command in
    start)
      mkdir -p "$STATE"
      [[ -f $STATE/cluster.env ]] || save_settings
      if want db; then start_db; fi
      if want app; then start_app; fi
      if want nginx; then start_nginx; fi
      if [[ $what == all ]]; then status || true; fi
      ;;
    stop)
      if want nginx; then stop_nginx; fi
      if want app; then stop_app; fi
      if want db; then stop_db; fi
      ;;
    status) status ;;
    url) database_url ;;  # for scripts and tests: the MOE_LAB_DATABASE_URL the replicas use
    clean)
      stop_nginx; stop_app; stop_db
      if [[ -n $PG_HOME && $PG_HOME == */moe-lab-pg.* ]]; then rm -rf "$PG_HOME"; fi
      rm -rf "$STATE"
      say "removed $STATE"
      ;;
    *) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
}

main "$@"
