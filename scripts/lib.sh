# Shared by scripts/*: paths, toolchain selection and the local Postgres cluster.
# Sourced, never run. Everything here is idempotent.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# rustup's toolchain builds the server, tests and lints. Debian's rustc-web (route B below)
# also installs /usr/bin/cargo, which must never shadow it.
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
# Tools we build (wasm-bindgen-cli) live outside the clone so fresh clones and CI reuse them.
TOOLS=${SAAS_BILLING_TOOLS:-$HOME/.cache/saas-billing/tools}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_TARGET_DIR=$TARGET_DIR
OUTPUT_NAME=saas-billing
PG_DIR=$ROOT/target/pg

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root for: $*"; fi
}

wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

# The wasm32 std comes from rustup when it can download it (route A), otherwise from
# Debian's rustc-web + rust-web-src built with -Zbuild-std (route B). Route B uses its own
# target dir: two compilers must never share one.
debian_wasm_ready() {
  [ -x /usr/bin/cargo ] && [ -d /usr/lib/rustlib/src/rust ] && command -v wasm-ld-22 >/dev/null
}

# SAAS_BILLING_WASM_ROUTE=debian forces route B (to test it on a machine where A works).
wasm_route() {
  if [ -n "${SAAS_BILLING_WASM_ROUTE:-}" ]; then echo "$SAAS_BILLING_WASM_ROUTE"; return; fi
  if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then echo rustup
  elif debian_wasm_ready; then echo debian
  else echo none; fi
}

# Runs cargo for the wasm32 target with the route's toolchain.
wasm_cargo() {
  case "$(wasm_route)" in
    rustup) cargo "$@" ;;
    debian)
      PATH=/usr/bin:$PATH RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$TARGET_DIR/wasm-debian \
        CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-22 \
        /usr/bin/cargo "$@" -Zbuild-std=std,panic_abort ;;
    *) die "no wasm32 toolchain: run scripts/setup" ;;
  esac
}

wasm_out_dir() {
  case "$(wasm_route)" in debian) echo "$TARGET_DIR/wasm-debian/wasm32-unknown-unknown" ;; *) echo "$TARGET_DIR/wasm32-unknown-unknown" ;; esac
}

tools_path() { export PATH="$TOOLS/bin:$ROOT/end2end/node_modules/.bin:$PATH"; }

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1; }

# Runs a Postgres server binary; initdb and postgres refuse to run as root.
pg_as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Uses DATABASE_URL when set; otherwise creates and starts a project-local cluster under
# target/pg (never the system one) and exports DATABASE_URL pointing at it.
ensure_database() {
  if [ -n "${DATABASE_URL:-}" ]; then return 0; fi
  local bin; bin=$(pg_bin); [ -n "$bin" ] || die "PostgreSQL is not installed: run scripts/setup"
  mkdir -p "$PG_DIR"
  if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
    log "creating a local Postgres cluster in $PG_DIR"
    mkdir -p "$PG_DIR/data" "$PG_DIR/sock"
    [ "$(id -u)" = 0 ] && chown -R postgres: "$PG_DIR"
    pg_as_owner "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 >"$PG_DIR/initdb.log" 2>&1 \
      || { cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
  fi
  if ! pg_as_owner "$bin/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; then
    # Below the kernel's ephemeral range (32768+), where a client connection's local port
    # can take the port between the check and Postgres's bind; a clash still moves on.
    local port=25432 attempt
    for attempt in 1 2 3 4 5; do
      while ! port_free "$port"; do port=$((port + 1)); done
      echo "$port" >"$PG_DIR/port.tmp" && mv "$PG_DIR/port.tmp" "$PG_DIR/port"
      [ "$(id -u)" = 0 ] && chown postgres: "$PG_DIR/port"
      if pg_as_owner "$bin/pg_ctl" -D "$PG_DIR/data" -w -l "$PG_DIR/server.log" \
        -o "-p $port -h 127.0.0.1 -k $PG_DIR/sock -c max_connections=300 -c fsync=off" start >/dev/null; then
        STARTED_LOCAL_PG=1
        break
      fi
      if [ "$attempt" = 5 ] || ! tail -5 "$PG_DIR/server.log" | grep -q "Address already in use"; then
        tail -20 "$PG_DIR/server.log" >&2
        die "could not start the local Postgres"
      fi
      port=$((port + 1))
    done
  fi
  local port; port=$(cat "$PG_DIR/port")
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/saas_billing"
  "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc "select 1 from pg_database where datname='saas_billing'" postgres | grep -q 1 \
    || "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "create database saas_billing" postgres
}

stop_local_database() {
  if [ "${STARTED_LOCAL_PG:-0}" = 1 ]; then
    pg_as_owner "$(pg_bin)/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
  fi
}

# Builds the browser bundle and lays out the site folder the server serves:
# <site>/pkg/saas-billing.{js,wasm,css}, plus everything in public/.
build_site() {
  local profile=$1 site=$2
  local cargo_profile=dev out_profile=debug
  if [ "$profile" = release ]; then cargo_profile=wasm-release; out_profile=wasm-release; fi
  log "building the wasm client ($cargo_profile)"
  LEPTOS_OUTPUT_NAME=$OUTPUT_NAME wasm_cargo build --lib --target wasm32-unknown-unknown \
    --no-default-features --features hydrate --profile "$cargo_profile"
  mkdir -p "$site/pkg"
  rm -f "$site/pkg/"*.br "$site/pkg/"*.gz
  wasm-bindgen --target web --no-typescript --out-dir "$site/pkg" --out-name "$OUTPUT_NAME" \
    "$(wasm_out_dir)/$out_profile/saas_billing.wasm"
  mv -f "$site/pkg/${OUTPUT_NAME}_bg.wasm" "$site/pkg/$OUTPUT_NAME.wasm"
  if [ "$profile" = release ]; then
    log "optimising the wasm with wasm-opt"
    wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
      -o "$site/pkg/$OUTPUT_NAME.wasm" "$site/pkg/$OUTPUT_NAME.wasm"
  fi
  cp "$ROOT/style/main.css" "$site/pkg/$OUTPUT_NAME.css"
  cp -r "$ROOT/public/." "$site/"
  if [ "$profile" = release ]; then
    # Served as they are to clients that accept them (src/assets.rs): compressed once, at the
    # highest levels, instead of per request. A development bundle is gzipped on the fly.
    log "precompressing the bundle (brotli, gzip)"
    local f
    for f in "$site/pkg/$OUTPUT_NAME".{js,wasm,css}; do
      brotli -q 11 -f -k -o "$f.br" "$f"
      gzip -9 -n -f -k "$f"
    done
  fi
}
