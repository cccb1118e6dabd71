# shellcheck shell=bash
# Shared helpers for scripts/demo.sh and scripts/test.sh: install what is
# missing, build and install the extension, run a throwaway cluster.
#
# A throwaway cluster lives in its own temp dir, listens only on a Unix socket
# in that dir (so no port can collide), runs as the postgres OS user when we
# are root (PostgreSQL refuses root), and is stopped by an EXIT trap.

set -euo pipefail

CW_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CW_PGVER=${CW_PGVER:-15}
CW_PGBIN=${CW_PGBIN:-/usr/lib/postgresql/$CW_PGVER/bin}
export PATH="$CW_PGBIN:$PATH"
# Debian's python3 has the python3-* packages; a pyenv python3 does not.
CW_PYTHON=/usr/bin/python3
# Reference data sits beside the repository (shared/data); override if elsewhere.
CW_DATA_DIR=${CHURN_DATA_DIR:-$(cd "$CW_ROOT/.." && pwd)/shared/data}
export CHURN_DATA_DIR=$CW_DATA_DIR

cw_log() { printf '==> %s\n' "$*" >&2; }
cw_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

cw_is_root() { [ "$(id -u)" -eq 0 ]; }

# Run a command with root rights: directly as root, else through sudo.
cw_sudo() {
	if cw_is_root; then "$@"
	elif command -v sudo >/dev/null 2>&1; then sudo "$@"
	else cw_die "need root rights for: $* (run as root or install sudo)"
	fi
}

# Install the Debian packages given that are not installed yet.
cw_need_packages() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	cw_log "installing ${missing[*]}"
	cw_sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
	cw_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

CW_BUILD_PACKAGES=(make gcc postgresql-$CW_PGVER postgresql-server-dev-$CW_PGVER libxgboost-dev)

# Build and install the extension into the server's directories.
cw_build_install() {
	cw_log "building churn_warning"
	make -C "$CW_ROOT" -s -j"$(nproc)" PG_CONFIG="$CW_PGBIN/pg_config" >/dev/null
	local libdir
	libdir=$("$CW_PGBIN/pg_config" --pkglibdir)
	if [ -w "$libdir" ]; then
		make -C "$CW_ROOT" -s install PG_CONFIG="$CW_PGBIN/pg_config" >/dev/null
	else
		cw_sudo make -C "$CW_ROOT" -s install PG_CONFIG="$CW_PGBIN/pg_config" >/dev/null
	fi
}

# Run a command as the OS user that owns throwaway clusters.
cw_as_pg() {
	if cw_is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Make a temp dir the cluster user can write.
cw_tempdir() {
	local d
	d=$(mktemp -d "${TMPDIR:-/tmp}/churn_warning.$1.XXXXXX")
	chmod 755 "$d"
	if cw_is_root; then chown postgres: "$d"; fi
	printf '%s\n' "$d"
}

CW_CLUSTER_DIR=
# Start a throwaway cluster with the worker preloaded; extra postgresql.conf
# lines may be passed as arguments. Exports PGHOST, PGPORT, PGUSER.
cw_start_cluster() {
	CW_CLUSTER_DIR=$(cw_tempdir cluster)
	local port=$((20000 + RANDOM % 20000))
	trap cw_cleanup EXIT
	cw_as_pg "$CW_PGBIN/initdb" -D "$CW_CLUSTER_DIR/data" -U postgres --auth=trust \
		-E UTF8 --locale=C.UTF-8 >"$CW_CLUSTER_DIR/initdb.log" 2>&1 ||
		{ cat "$CW_CLUSTER_DIR/initdb.log" >&2; cw_die "initdb failed"; }
	{
		echo "port = $port"
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$CW_CLUSTER_DIR'"
		echo "shared_preload_libraries = 'churn_warning'"
		echo "max_worker_processes = 16"
		echo "fsync = off"
		echo "synchronous_commit = off"
		echo "full_page_writes = off"
		echo "shared_buffers = 256MB"
		echo "work_mem = 64MB"
		echo "maintenance_work_mem = 256MB"
		echo "max_parallel_workers_per_gather = 2"
		echo "timezone = 'UTC'"
		echo "log_min_messages = warning"
		local line
		for line in "$@"; do echo "$line"; done
	} | cw_as_pg tee -a "$CW_CLUSTER_DIR/data/postgresql.conf" >/dev/null
	cw_as_pg "$CW_PGBIN/pg_ctl" -D "$CW_CLUSTER_DIR/data" -l "$CW_CLUSTER_DIR/server.log" -w start >/dev/null ||
		{ cat "$CW_CLUSTER_DIR/server.log" >&2; cw_die "server did not start"; }
	export PGHOST=$CW_CLUSTER_DIR PGPORT=$port PGUSER=postgres
	cw_log "cluster running in $CW_CLUSTER_DIR (port $port)"
}

# Stop the throwaway cluster and remove its files (kept when CW_KEEP=1).
cw_stop_cluster() {
	[ -n "$CW_CLUSTER_DIR" ] || return 0
	if [ -f "$CW_CLUSTER_DIR/data/postmaster.pid" ]; then
		cw_as_pg "$CW_PGBIN/pg_ctl" -D "$CW_CLUSTER_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
	fi
	if [ "${CW_KEEP_LOGS:-0}" = 1 ]; then
		cw_log "cluster files kept in $CW_CLUSTER_DIR"
	else
		rm -rf "$CW_CLUSTER_DIR"
	fi
	CW_CLUSTER_DIR=
}

cw_psql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

CW_STAGED_DATA=
# At exit: stop the cluster and remove staged data.
cw_cleanup() {
	cw_stop_cluster
	if [ -n "$CW_STAGED_DATA" ]; then rm -rf "$CW_STAGED_DATA"; fi
}

# The server reads reference data itself (COPY FROM file), as the cluster's
# OS user; when that user cannot read CHURN_DATA_DIR (a clone under /root,
# say), stage a readable copy in a temp dir for the run.
cw_stage_data_for_server() {
	[ -d "$CW_DATA_DIR" ] || return 0
	if cw_as_pg test -r "$CW_DATA_DIR/cdnow/CDNOW_sample.txt" 2>/dev/null; then
		return 0
	fi
	local staged
	staged=$(cw_tempdir data)
	cp -r "$CW_DATA_DIR/." "$staged/"
	chmod -R a+rX "$staged"
	CW_STAGED_DATA=$staged
	CW_DATA_DIR=$staged
	export CHURN_DATA_DIR=$staged
	cw_log "reference data staged in $staged (the cluster user could not read the original)"
}

# Benchmarks: packages, build and install, a throwaway cluster (extra
# postgresql.conf lines as arguments) and database churn_bench with the
# extension, as PGDATABASE.
cw_bench_cluster() {
	cw_need_packages "${CW_BUILD_PACKAGES[@]}"
	cw_build_install
	cw_start_cluster "$@"
	cw_psql -d postgres -c 'CREATE DATABASE churn_bench'
	export PGDATABASE=churn_bench
	cw_psql -c 'CREATE EXTENSION churn_warning'
}

# Citus for the distributed test (test/tap/050_citus.pl): the source of the
# last release supporting PostgreSQL 15 is kept beside the repository in
# ../shared/vendor/citus (override with CW_CITUS_SRC). Built into the server
# CW_PGBIN belongs to, once: skipped when that server already has citus.so
# and the control file of this version. Returns 0 when Citus is there, 1
# (with a message) when the source is not, 2 when the build failed (its
# log tail printed). Called in an if, where set -e is off: every step checks.
CW_CITUS_VERSION=13.2.2
CW_CITUS_SRC=${CW_CITUS_SRC:-$(cd "$CW_ROOT/.." && pwd)/shared/vendor/citus}
cw_citus_installed() {
	local libdir sharedir
	libdir=$("$CW_PGBIN/pg_config" --pkglibdir)
	sharedir=$("$CW_PGBIN/pg_config" --sharedir)
	[ -f "$libdir/citus.so" ] &&
		grep -q "default_version = '${CW_CITUS_VERSION%.*}-" "$sharedir/extension/citus.control" 2>/dev/null
}
cw_build_citus() {
	if cw_citus_installed; then return 0; fi
	local tarball=$CW_CITUS_SRC/citus-$CW_CITUS_VERSION-slim.tar.gz
	if [ ! -f "$tarball" ]; then
		cw_log "Citus source not found ($tarball): the Citus test is skipped"
		return 1
	fi
	cw_need_packages "postgresql-server-dev-$CW_PGVER" libzstd-dev libkrb5-dev || return 2
	local dir src p started
	started=$(date +%s)
	dir=$(mktemp -d "${TMPDIR:-/tmp}/churn_warning.citus.XXXXXX") || return 2
	cw_log "building Citus $CW_CITUS_VERSION in $dir (about 70 s on 2 idle cores)"
	tar -xzf "$tarball" -C "$dir" || return 2
	src=$(find "$dir" -maxdepth 2 -name configure -printf '%h\n' | head -n1)
	for p in "$CW_CITUS_SRC"/*.patch; do
		if [ -f "$p" ]; then patch -s -d "$src" -p1 <"$p" || return 2; fi
	done
	if ! (cd "$src" && ./configure -q --without-libcurl --without-lz4 PG_CONFIG="$CW_PGBIN/pg_config" \
		>"$dir/configure.log" 2>&1 && make -s -j"$(nproc)" >"$dir/make.log" 2>&1); then
		tail -n 40 "$dir"/*.log >&2
		cw_log "Citus build failed (logs in $dir)"
		return 2
	fi
	if [ -w "$("$CW_PGBIN/pg_config" --pkglibdir)" ]; then
		make -s -C "$src" install >/dev/null || return 2
	else
		cw_sudo make -s -C "$src" install >/dev/null || return 2
	fi
	rm -rf "$dir"
	cw_log "Citus $CW_CITUS_VERSION built and installed in $(($(date +%s) - started)) s"
}
