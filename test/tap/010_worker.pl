# The background worker: scheduled refreshes without a manual call, failures
# recorded and retried with backoff, pause after max_failures, per-run time
# limit, restarts in the middle of a refresh, overdue refreshes after
# downtime, SIGHUP, several databases, DROP EXTENSION / DROP DATABASE /
# ALTER DATABASE RENAME, a dropped owner role, and a standby.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'churn_warning'
churn_warning.naptime = 1
max_worker_processes = 16
timezone = 'UTC'
});
$node->start;

# A database with the extension, demo purchases up to today, and sources that
# can be made slow or broken through the table ctl.
sub setup_db
{
	my ($db) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, q{
		CREATE EXTENSION churn_warning;
		SELECT churn.demo_load('demo', 1000, seed => 7, start_date => current_date - 700, end_date => current_date);
		CREATE TABLE public.ctl (name text PRIMARY KEY, sleep_s float8 NOT NULL DEFAULT 0,
		                         broken boolean NOT NULL DEFAULT false);
		CREATE FUNCTION public.src_rows(p text) RETURNS TABLE (customer_id text, ts timestamptz, amount numeric)
		LANGUAGE plpgsql SET search_path = public AS $$
		DECLARE
			c public.ctl;
		BEGIN
			SELECT * INTO c FROM public.ctl WHERE ctl.name = p;
			IF c.broken THEN
				RAISE EXCEPTION 'source % is broken', p USING ERRCODE = 'data_exception';
			END IF;
			PERFORM pg_sleep(c.sleep_s);
			RETURN QUERY SELECT d.customer_id::text, d.ts, d.amount FROM demo.purchases d;
		END
		$$;
		CREATE VIEW public.runs AS
		SELECT r.run_id, p.name AS pipeline, r.trigger, r.status, r.started_at, r.finished_at,
		       r.error_code, r.error_message
		FROM churn.pipeline_run r JOIN churn.pipeline p USING (pipeline_id);
	});
	return;
}

# A source view named src_<name> whose behaviour is set in ctl.
sub make_source
{
	my ($db, $name, $sleep, $broken) = @_;
	$node->safe_psql($db, qq{
		INSERT INTO public.ctl VALUES ('$name', $sleep, $broken);
		CREATE VIEW public.src_$name AS SELECT * FROM public.src_rows('$name');
	});
	return;
}

sub q1
{
	my ($db, $sql) = @_;
	return $node->safe_psql($db, $sql);
}

# --- the launcher --------------------------------------------------------
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity
		WHERE backend_type = 'churn_warning launcher' AND datid IS NULL}),
	'launcher runs, connected to no database');
my $launcher_pid = q1('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'churn_warning launcher'});
is(q1('postgres', 'SHOW churn_warning.naptime'), '1s', 'churn_warning.naptime set');
is(q1('postgres', 'SHOW churn_warning.enabled') . ',' . q1('postgres', 'SHOW churn_warning.max_workers'),
	'on,2', 'enabled and max_workers defaults');
my ($rc, $out, $err) = $node->psql('postgres', 'SET churn_warning.no_such_setting = 1');
like($err, qr/reserved prefix/, 'churn_warning GUC prefix is reserved');

setup_db('shop');

# --- a scheduled refresh with no manual call ------------------------------
q1('shop', q{SELECT churn.create_pipeline('sched', 'demo.purchases', schedule => '2 seconds')});
ok( $node->poll_query_until('shop', q{
		SELECT count(*) >= 2 FROM runs WHERE pipeline = 'sched' AND trigger = 'schedule' AND status = 'succeeded'}),
	'scheduled pipeline refreshed twice by the worker');
is(q1('shop', q{SELECT count(*) > 0 FROM churn.current_warnings WHERE pipeline = 'sched'}), 't',
	'the scheduled refresh wrote a warning snapshot');
is(q1('shop', q{SELECT last_status || ',' || state FROM churn.pipeline_status WHERE pipeline = 'sched'}),
	'succeeded,active', 'pipeline_status shows the scheduled run');
is(q1('shop', q{SELECT count(*) FROM runs WHERE pipeline = 'sched' AND trigger = 'manual'}), '0',
	'no manual call was involved');
ok( $node->poll_query_until('shop', q{
		SELECT count(*) = 1 FROM churn.worker_status() s JOIN pg_database d ON d.oid = s.dboid
		WHERE d.datname = 'shop' AND s.next_check IS NOT NULL}),
	'worker_status has a slot for the database');

# --- per-run time limit, and the worker in pg_stat_activity --------------
make_source('shop', 'slow', 5, 'false');
q1('shop', q{SELECT churn.create_pipeline('slow', 'src_slow', schedule => '1 hour', time_limit => '1 second')});
ok( $node->poll_query_until('shop', q{
		SELECT count(*) = 1 FROM pg_stat_activity
		WHERE backend_type = 'churn_warning worker' AND datname = 'shop'
		  AND application_name = 'churn_warning worker'
		  AND query = 'churn_warning: refresh of pipeline "slow"'}),
	'the refresh is visible in pg_stat_activity');
ok( $node->poll_query_until('shop', q{
		SELECT count(*) = 1 FROM runs WHERE pipeline = 'slow' AND status = 'timed_out' AND error_code = '57014'}),
	'a refresh over its time limit is cancelled and recorded as timed_out');
is(q1('shop', q{SELECT last_status FROM churn.pipeline_status WHERE pipeline = 'slow'}), 'timed_out',
	'pipeline_status shows the timeout');
is(q1('shop', q{SELECT next_run_at > now() FROM churn.pipeline WHERE name = 'slow'}), 't',
	'a timed-out pipeline is retried later, not at once');
q1('shop', q{SELECT churn.drop_pipeline('slow')});

# --- a failing source: failed, retried with backoff, paused, recovered ----
make_source('shop', 'flaky', 0, 'true');
q1('shop', q{SELECT churn.create_pipeline('flaky', 'src_flaky', schedule => '1 second', max_failures => 3)});
ok( $node->poll_query_until('shop', q{SELECT state = 'paused' FROM churn.pipeline_status WHERE pipeline = 'flaky'}),
	'pipeline paused after max_failures');
is( q1('shop', q{
		SELECT count(*) || ',' || bool_and(error_code = '22000') || ',' || bool_and(error_message = 'source flaky is broken')
		FROM runs WHERE pipeline = 'flaky' AND status = 'failed'}),
	'3,true,true', 'three failed runs recorded with their error');
is( q1('shop', q{
		SELECT consecutive_failures || ',' || last_status || ',' || last_error FROM churn.pipeline_status
		WHERE pipeline = 'flaky'}),
	'3,failed,source flaky is broken', 'pipeline_status shows the failures and the error');
is( q1('shop', q{
		SELECT bool_and(gap >= interval '0.7 seconds') FROM (
			SELECT started_at - lag(finished_at) OVER (ORDER BY run_id) AS gap
			FROM runs WHERE pipeline = 'flaky') g WHERE gap IS NOT NULL}),
	't', 'each retry waits for its backoff');
usleep(1_500_000);
is(q1('shop', q{SELECT count(*) FROM runs WHERE pipeline = 'flaky'}), '3', 'a paused pipeline is not run');
q1('shop', q{UPDATE ctl SET broken = false WHERE name = 'flaky'; SELECT churn.resume_pipeline('flaky')});
ok( $node->poll_query_until('shop', q{
		SELECT last_status = 'succeeded' AND state = 'active' AND consecutive_failures = 0
		FROM churn.pipeline_status WHERE pipeline = 'flaky'}),
	'fixed and resumed pipeline recovers');
q1('shop', q{SELECT churn.pause_pipeline('flaky')});

# --- SIGHUP: naptime ------------------------------------------------------
my $log_offset = -s $node->logfile;
q1('postgres', q{ALTER SYSTEM SET churn_warning.naptime = 2; SELECT pg_reload_conf()});
$node->wait_for_log(qr/naptime 2 s, max_workers 2, enabled on/, $log_offset);
is(q1('postgres', 'SHOW churn_warning.naptime'), '2s', 'naptime reloaded');
q1('postgres', q{ALTER SYSTEM RESET churn_warning.naptime; SELECT pg_reload_conf()});
$node->wait_for_log(qr/naptime 1 s, max_workers 2, enabled on/, $log_offset);
is(q1('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'churn_warning launcher'}),
	$launcher_pid, 'the launcher keeps running across reloads');

# --- restart during a refresh, overdue after downtime, enabled = off -------
q1('shop', q{SELECT churn.create_pipeline('overdue', 'demo.purchases', schedule => '1 day')});
ok( $node->poll_query_until('shop', q{
		SELECT count(*) = 1 FROM runs WHERE pipeline = 'overdue' AND status = 'succeeded'}),
	'daily pipeline ran once');

# SIGHUP: enabled = off starts no run (the 2-second pipeline would run)
$log_offset = -s $node->logfile;
q1('postgres', q{ALTER SYSTEM SET churn_warning.enabled = off; SELECT pg_reload_conf()});
$node->wait_for_log(qr/enabled off/, $log_offset);
my $off_at = q1('shop', 'SELECT now()');
usleep(3_000_000);
is(q1('shop', qq{SELECT count(*) FROM runs WHERE started_at > '$off_at'}), '0',
	'churn_warning.enabled = off starts no runs');
q1('postgres', q{ALTER SYSTEM RESET churn_warning.enabled; SELECT pg_reload_conf()});
ok( $node->poll_query_until('shop', qq{
		SELECT count(*) > 0 FROM runs WHERE pipeline = 'sched' AND started_at > '$off_at'}),
	'runs resume when enabled is reset');

# a restart in the middle of a refresh (kept disabled across the restart)
make_source('shop', 'slow2', 60, 'false');
q1('shop', q{SELECT churn.create_pipeline('slow2', 'src_slow2', schedule => '1 hour')});
ok( $node->poll_query_until('shop', q{
		SELECT count(*) = 1 FROM runs WHERE pipeline = 'slow2' AND status = 'running'}),
	'a long refresh is running');
$log_offset = -s $node->logfile;
q1('postgres', q{ALTER SYSTEM SET churn_warning.enabled = off; SELECT pg_reload_conf()});
$node->wait_for_log(qr/enabled off/, $log_offset);

# three daily slots missed while the server is down
q1('shop', q{
	UPDATE churn.pipeline SET next_run_at = now() - interval '3 days', last_success_at = now() - interval '3 days'
	WHERE name = 'overdue';
	UPDATE ctl SET sleep_s = 0 WHERE name = 'slow2'});
$node->stop('immediate');
$node->start;
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'churn_warning launcher'}),
	'launcher back after the restart');
is(q1('shop', q{SELECT count(*) FROM runs WHERE pipeline = 'slow2' AND status = 'running'}), '1',
	'disabled: the interrupted run is left alone');
q1('postgres', q{ALTER SYSTEM RESET churn_warning.enabled; SELECT pg_reload_conf()});
ok( $node->poll_query_until('shop', q{
		SELECT string_agg(status, ',' ORDER BY run_id) = 'interrupted,succeeded' FROM runs WHERE pipeline = 'slow2'}),
	'the run cut by the restart is marked interrupted and a later run succeeds');
ok( $node->poll_query_until('shop', q{
		SELECT count(*) = 2 FROM runs WHERE pipeline = 'overdue' AND status = 'succeeded'}),
	'the overdue pipeline runs after the downtime');
usleep(2_500_000);
is( q1('shop', q{
		SELECT (SELECT count(*) FROM runs WHERE pipeline = 'overdue') || ','
		       || (SELECT next_run_at > now() + interval '1 hour' FROM churn.pipeline WHERE name = 'overdue')}),
	'2,true', 'an overdue pipeline runs once, not once per missed slot');
ok( $node->poll_query_until('shop', q{
		SELECT count(*) > 0 FROM runs WHERE pipeline = 'sched' AND started_at > pg_postmaster_start_time()}),
	'the 2-second pipeline runs again after enabled is reset');
q1('shop', q{SELECT churn.pause_pipeline('slow2'); SELECT churn.pause_pipeline('overdue')});

# --- two databases served at once -----------------------------------------
setup_db('shop2');
make_source('shop', 'both', 3, 'false');
make_source('shop2', 'both', 3, 'false');
q1('shop', q{SELECT churn.create_pipeline('both', 'src_both', schedule => '1 hour')});
q1('shop2', q{SELECT churn.create_pipeline('both', 'src_both', schedule => '1 hour')});
ok( $node->poll_query_until('postgres', q{
		SELECT count(DISTINCT datname) = 2 FROM pg_stat_activity
		WHERE backend_type = 'churn_warning worker' AND query = 'churn_warning: refresh of pipeline "both"'}),
	'two databases refreshed at the same time');
ok( $node->poll_query_until('shop', q{SELECT count(*) = 1 FROM runs WHERE pipeline = 'both' AND status = 'succeeded'}),
	'refresh in the first database succeeded');
ok( $node->poll_query_until('shop2', q{SELECT count(*) = 1 FROM runs WHERE pipeline = 'both' AND status = 'succeeded'}),
	'refresh in the second database succeeded');
q1('shop', q{SELECT churn.pause_pipeline('both')});

# --- ALTER DATABASE RENAME and DROP DATABASE while pipelines are active -----
q1('shop2', q{UPDATE ctl SET sleep_s = 0; SELECT churn.alter_pipeline('both', schedule => '1 second')});
ok($node->poll_query_until('shop2', q{SELECT count(*) >= 3 FROM runs WHERE pipeline = 'both'}),
	'1-second pipeline running in shop2');
my $shop2_oid = q1('postgres', q{SELECT oid FROM pg_database WHERE datname = 'shop2'});
$node->safe_psql('postgres', 'ALTER DATABASE shop2 RENAME TO shop2_renamed');
pass('ALTER DATABASE RENAME succeeds while the worker serves the database');
my $renamed_at = q1('postgres', 'SELECT now()');
ok( $node->poll_query_until('shop2_renamed', qq{
		SELECT count(*) >= 2 FROM runs WHERE pipeline = 'both' AND started_at > '$renamed_at'}),
	'the renamed database keeps being served');
$node->safe_psql('postgres', 'DROP DATABASE shop2_renamed');
pass('DROP DATABASE without FORCE succeeds while pipelines exist');
ok( $node->poll_query_until('shop', qq{SELECT count(*) = 0 FROM churn.worker_status() WHERE dboid = $shop2_oid}),
	'the launcher forgets the dropped database');

# --- DROP EXTENSION CASCADE while pipelines are active -----------------------
setup_db('shop3');
q1('shop3', q{SELECT churn.create_pipeline('p3', 'demo.purchases', schedule => '1 second')});
ok($node->poll_query_until('shop3', q{SELECT count(*) >= 2 FROM runs WHERE pipeline = 'p3' AND status = 'succeeded'}),
	'1-second pipeline running in shop3');
my $shop3_oid = q1('postgres', q{SELECT oid FROM pg_database WHERE datname = 'shop3'});
q1('shop3', 'DROP EXTENSION churn_warning CASCADE');
pass('DROP EXTENSION CASCADE succeeds while pipelines are active');
ok( $node->poll_query_until('shop', qq{
		SELECT next_check > now() + interval '4 minutes' FROM churn.worker_status() WHERE dboid = $shop3_oid}),
	'a database without the extension is looked at again only after 5 minutes');
$log_offset = -s $node->logfile;
my $sched_before = q1('shop', q{SELECT count(*) FROM runs WHERE pipeline = 'sched'});
usleep(3_000_000);
ok(q1('shop', q{SELECT count(*) FROM runs WHERE pipeline = 'sched'}) > $sched_before,
	'the worker keeps serving the other databases');
my $log = slurp_file($node->logfile, $log_offset);
unlike($log, qr/ERROR|FATAL|exited with exit code 1/, 'no errors logged after DROP EXTENSION and DROP DATABASE');

# --- a dropped owner role ---------------------------------------------------
q1('shop', q{
	CREATE ROLE alice LOGIN;
	GRANT churn_user TO alice;
	GRANT USAGE ON SCHEMA demo TO alice;
	GRANT SELECT ON demo.purchases TO alice});
$node->safe_psql('shop', q{SET ROLE alice; SELECT churn.create_pipeline('alices', 'demo.purchases', schedule => '1 second')});
ok($node->poll_query_until('shop', q{SELECT count(*) >= 1 FROM runs WHERE pipeline = 'alices' AND status = 'succeeded'}),
	'a pipeline owned by an ordinary role is refreshed');
($rc, $out, $err) = $node->psql('shop', q{
	REVOKE SELECT ON demo.purchases FROM alice;
	REVOKE USAGE ON SCHEMA demo FROM alice;
	REVOKE churn_user FROM alice;
	DROP ROLE alice});
if ($rc != 0)
{
	like($err, qr/pipeline/, 'DROP ROLE is refused while the role owns pipelines');
	note("DROP ROLE refused: $err");
}
else
{
	ok( $node->poll_query_until('shop', q{
			SELECT state = 'paused' AND last_error LIKE '%no longer exists%'
			FROM churn.pipeline_status WHERE pipeline = 'alices'}),
		'a pipeline whose owner was dropped fails cleanly and is paused');
	note('DROP ROLE succeeded; the next run failed and paused the pipeline: '
		  . q1('shop', q{SELECT paused_reason FROM churn.pipeline_status WHERE pipeline = 'alices'}));
}
q1('shop', q{SELECT churn.drop_pipeline('alices')});

# --- nothing runs on a standby; it works after promotion --------------------
$node->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'bk', has_streaming => 1);
$standby->start;
$node->wait_for_catchup($standby);
usleep(2_000_000);
is( $standby->safe_psql('postgres', q{
		SELECT pg_is_in_recovery() || ',' || count(*) FROM pg_stat_activity WHERE backend_type LIKE 'churn_warning%'}),
	'true,0', 'no churn_warning process on a standby');
my $last_run = $standby->safe_psql('shop', 'SELECT max(run_id) FROM churn.pipeline_run');
$standby->promote;
ok( $standby->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'churn_warning launcher'}),
	'the launcher starts after promotion');
ok( $standby->poll_query_until('shop', qq{
		SELECT count(*) > 0 FROM churn.pipeline_run WHERE run_id > $last_run AND status = 'succeeded'}),
	'the promoted standby refreshes pipelines');
$standby->stop;

$node->stop;
done_testing();
