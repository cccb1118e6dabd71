# shellcheck shell=bash
# The board's node packages (board/package.json, pinned by package-lock.json),
# installed with `npm ci` into a per-user cache directory named after the
# lock file's checksum, so that the clone stays clean, root and a normal user
# never share (or fight over) one node_modules, and a second run reuses the
# first one's install. Sourced after scripts/lib.sh (cw_log, cw_need_packages).
#
#   cw_board_deps   prints the directory that holds node_modules/
#
# CW_BOARD_CACHE overrides the cache directory.

cw_board_deps() {
	local board lock sum base dir
	board=$CW_ROOT/board
	lock=$board/package-lock.json
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		cw_need_packages nodejs npm
	fi
	sum=$(sha256sum "$lock" | cut -c1-16)
	base=${CW_BOARD_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/churn_warning}
	if ! mkdir -p "$base" 2>/dev/null || [ ! -w "$base" ]; then
		base=${TMPDIR:-/tmp}/churn_warning-board-$(id -u)
		mkdir -p "$base"
	fi
	dir=$base/board-$sum
	if [ ! -f "$dir/.installed" ]; then
		cw_log "installing the board's node packages (npm ci) into $dir"
		rm -rf "$dir"
		mkdir -p "$dir"
		cp "$board/package.json" "$lock" "$dir/"
		# own npm cache beside it: works without a writable ~/.npm (the postgres user, say)
		(cd "$dir" && npm ci --no-audit --no-fund --no-update-notifier --loglevel=error --cache "$base/npm-cache" >&2) ||
			{ rm -rf "$dir"; cw_die "npm ci failed for $board/package-lock.json"; }
		touch "$dir/.installed"
	fi
	printf '%s\n' "$dir"
}
