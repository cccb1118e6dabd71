#!/usr/bin/env bash
# The warning board of a pipeline: one self-contained HTML file (charts drawn
# by Vega-Lite, inlined; opens offline in any browser) built from the chart
# specs of churn.board_charts, which aggregate the product's views.
#
# Usage: scripts/board.sh [--db CONNINFO|DBNAME] [--pipeline NAME] [--out FILE]
#                         [--from DATE] [--to DATE] [--backtest | --backtest-table REL]
#   --db              the database (default: the usual PG* environment)
#   --pipeline        the pipeline (default: the only one the role sees)
#   --out             the HTML file to write (default board.html)
#   --from, --to      the two dates of the tier-flow chart (default: a week
#                     before the latest refresh, and the latest refresh)
#   --backtest        also run churn.backtest on the pipeline's source (its
#                     columns, events, horizon and policy; weekly, 12 dates back,
#                     ending as late as the horizon allows) for the model charts;
#                     takes about a minute per 10,000 customers
#   --backtest-table  read the model charts from a stored relation of
#                     churn.backtest rows instead (see docs/board.md)
# Connects with psql (from CW_PGBIN, like the other scripts); needs node and
# npm (installed with apt-get when missing) for the build, whose packages are
# installed by npm ci from board/package-lock.json into a per-user cache.
# Prints where the board is, its size and how long it took; exits non-zero,
# writing nothing, on an unknown pipeline or any other error.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$CW_ROOT/board/deps.sh"

db='' pipeline='' out=board.html from='' to='' backtest=0 bt_table=''
while [ $# -gt 0 ]; do
	case $1 in
	--db) db=${2:?--db needs a value}; shift 2 ;;
	--pipeline) pipeline=${2:?--pipeline needs a value}; shift 2 ;;
	--out) out=${2:?--out needs a value}; shift 2 ;;
	--from) from=${2:?--from needs a date}; shift 2 ;;
	--to) to=${2:?--to needs a date}; shift 2 ;;
	--backtest) backtest=1; shift ;;
	--backtest-table) bt_table=${2:?--backtest-table needs a relation}; shift 2 ;;
	-h | --help) sed -n '2,/^source/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) cw_die "unknown argument $1 (see $0 --help)" ;;
	esac
done
[ "$backtest" = 1 ] && [ -n "$bt_table" ] && cw_die "--backtest and --backtest-table exclude each other"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
started=$(now)
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 ${db:+-d "$db"} "$@"; }

if [ -z "$pipeline" ]; then
	mapfile -t names < <(q -c 'SELECT pipeline FROM churn.pipeline_status ORDER BY 1')
	case ${#names[@]} in
	0) cw_die "no pipeline to show: create one with churn.create_pipeline (or connect as its owner)" ;;
	1) pipeline=${names[0]} ;;
	*) cw_die "several pipelines, pick one with --pipeline: ${names[*]}" ;;
	esac
fi

modules=$(cw_board_deps)
work=$(mktemp -d "${TMPDIR:-/tmp}/churn_board.XXXXXX")
trap 'rm -rf "$work"' EXIT

# One session: the optional backtest into a temp table, then the specs.
{
	echo "SET client_min_messages = warning;"
	echo "SELECT set_config('board.pipeline', :'pipeline', false) \\g /dev/null"
	if [ "$backtest" = 1 ]; then
		cat <<'SQL'
\echo 'running churn.backtest on the pipeline''s source ...'
CREATE TEMP TABLE board_backtest AS
SELECT now() AS stored_at, NULL::text AS section, NULL::text AS label, NULL::int AS bin, NULL::text AS metric,
       NULL::float8 AS value, NULL::bigint AS n WITH NO DATA;
DO $$
DECLARE
    s record;
    last_day date;
BEGIN
    -- the pipeline's settings: all of them for its owner (or a superuser),
    -- else the source and events of churn.pipeline_status with the default columns
    IF has_table_privilege('churn.pipeline', 'SELECT') THEN
        SELECT p.source, p.customer_col, p.ts_col, p.amount_col, p.model, p.policy, p.horizon_days, p.window_days,
               p.time_zone, p.events, p.event_customer_col, p.event_ts_col, p.event_kind_col, p.event_rating_col
          INTO s FROM churn.pipeline p WHERE p.name = current_setting('board.pipeline');
    ELSE
        SELECT st.source::regclass AS source, 'customer_id'::name AS customer_col, 'ts'::name AS ts_col,
               'amount'::name AS amount_col, st.model, st.policy, 90 AS horizon_days, 90 AS window_days,
               st.time_zone, st.events::regclass AS events, 'customer_id'::name AS event_customer_col,
               'ts'::name AS event_ts_col, 'kind'::name AS event_kind_col, 'rating'::name AS event_rating_col
          INTO s FROM churn.pipeline_status st WHERE st.pipeline = current_setting('board.pipeline');
    END IF;
    IF s.source IS NULL THEN
        RAISE EXCEPTION 'pipeline "%" does not exist', current_setting('board.pipeline');
    END IF;
    PERFORM set_config('TimeZone', s.time_zone, true);
    EXECUTE format('SELECT max(%I)::date FROM %s', s.ts_col, s.source) INTO last_day;
    EXECUTE format($q$INSERT INTO pg_temp.board_backtest
                     SELECT now(), b.* FROM churn.backtest(%L::regclass, %L::date, %s, %L, %L, %L, %L, %L, %s,
                                                           lookback => 12, step_days => 7, events => %L::regclass,
                                                           event_customer_col => %L, event_ts_col => %L,
                                                           event_kind_col => %L, event_rating_col => %L) b$q$,
                   s.source, last_day - 2 * s.horizon_days, s.horizon_days, s.model, s.customer_col, s.ts_col,
                   s.amount_col, s.policy, s.window_days, s.events, s.event_customer_col, s.event_ts_col,
                   s.event_kind_col, s.event_rating_col);
END
$$;
SQL
	fi
	cat <<'SQL'
\o :outfile
SELECT jsonb_build_object(
           'pipeline', :'pipeline',
           'generated_at', to_char(now(), 'YYYY-MM-DD HH24:MI:SS TZ'),
           'status', (SELECT to_jsonb(s) - 'last_error' FROM churn.pipeline_status s WHERE s.pipeline = :'pipeline'),
           'model_used', (SELECT r.model_used FROM churn.pipeline_runs r
                          WHERE r.pipeline = :'pipeline' AND r.status = 'succeeded' ORDER BY r.run_id DESC LIMIT 1),
           'charts', (SELECT jsonb_agg(jsonb_build_object('chart', b.chart, 'title', b.title, 'spec', b.spec))
                      FROM churn.board_charts(:'pipeline', nullif(:'from', '')::date, nullif(:'to', '')::date,
                                              nullif(:'bt', '')::regclass) b))::text;
\o
SQL
} >"$work/board.sql"

bt=
[ "$backtest" = 1 ] && bt=pg_temp.board_backtest
[ -n "$bt_table" ] && bt=$bt_table
q -v pipeline="$pipeline" -v from="$from" -v to="$to" -v bt="$bt" -v outfile="$work/board.json" \
	-f "$work/board.sql" || cw_die "the board of pipeline \"$pipeline\" could not be read (see the error above)"
sql_done=$(now)

node "$CW_ROOT/board/build.mjs" --in "$work/board.json" --out "$out" --modules "$modules" >/dev/null ||
	cw_die "the board could not be built"
done_at=$(now)
size=$(stat -c %s "$out")
printf 'board of pipeline "%s" written to %s (%s kB; %s s: reading the specs %s s, building %s s)\n' \
	"$pipeline" "$(cd "$(dirname "$out")" && pwd)/$(basename "$out")" $((size / 1024)) \
	"$(secs "$started" "$done_at")" "$(secs "$started" "$sql_done")" "$(secs "$sql_done" "$done_at")"
