# Every run on record (0.3.0, part 922, src/runlog.c): a manual refresh that
# fails, times out (statement_timeout) or is cancelled (pg_cancel_backend)
# rolls back in the caller's transaction, yet leaves a run with the right
# status and its error; a scheduled run cancelled by pg_cancel_backend is
# 'cancelled', not 'failed'.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('runs');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'churn_warning'
churn_warning.naptime = 1
max_worker_processes = 16
timezone = 'UTC'
});
$node->start;

# a source view that can be made slow or broken through ctl
$node->safe_psql('postgres', q{
	CREATE EXTENSION churn_warning;
	SELECT churn.register_rules('r');
	CREATE TABLE public.purchases AS
	SELECT 'c' || (g % 50) AS customer_id, now() - g * interval '1 day' AS ts, 10::numeric AS amount
	FROM generate_series(1, 500) g;
	CREATE TABLE public.ctl (name text PRIMARY KEY, sleep_s float8 NOT NULL DEFAULT 0,
	                         broken boolean NOT NULL DEFAULT false);
	INSERT INTO public.ctl VALUES ('manual', 0, false), ('sched', 0, false);
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
		RETURN QUERY SELECT d.customer_id, d.ts, d.amount FROM public.purchases d;
	END
	$$;
	CREATE VIEW public.src_manual AS SELECT * FROM public.src_rows('manual');
	CREATE VIEW public.src_sched AS SELECT * FROM public.src_rows('sched');
	SELECT 1 FROM churn.create_pipeline('manual', 'public.src_manual', model => 'r',
	                                    start_at => now() + interval '10 years');
});

sub runs
{
	my ($pipeline) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(concat_ws('|', trigger, status, error_code, error_message), E'\\n' ORDER BY run_id)
		FROM churn.pipeline_runs WHERE pipeline = '$pipeline'});
}

# --- a manual refresh that fails ------------------------------------------
$node->safe_psql('postgres', q{UPDATE public.ctl SET broken = true WHERE name = 'manual'});
my ($ret, $out, $err) = $node->psql('postgres', q{SELECT churn.refresh('manual')});
isnt($ret, 0, 'a manual refresh of a broken source fails');
like($err, qr/source manual is broken/, 'its error reaches the caller');
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM churn.pipeline_runs WHERE pipeline = 'manual' AND status = 'failed'}),
	'the failed manual refresh is on record');
is(runs('manual'), 'manual|failed|22000|source manual is broken', 'with its SQLSTATE and message');

# inside a transaction block the caller rolls back
($ret, $out, $err) = $node->psql('postgres', q{
	BEGIN;
	SELECT churn.refresh('manual');
	ROLLBACK;});
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 2 FROM churn.pipeline_runs WHERE pipeline = 'manual' AND status = 'failed'}),
	'a failed refresh in a rolled-back transaction block is on record too');

# --- timed out: statement_timeout ------------------------------------------
$node->safe_psql('postgres', q{UPDATE public.ctl SET broken = false, sleep_s = 60 WHERE name = 'manual'});
my $t0 = time();
($ret, $out, $err) = $node->psql('postgres', q{SET statement_timeout = '1s'; SELECT churn.refresh('manual')});
isnt($ret, 0, 'a manual refresh over statement_timeout fails');
like($err, qr/statement timeout/, 'with the statement timeout');
ok(time() - $t0 < 30, 'promptly');
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM churn.pipeline_runs
		WHERE pipeline = 'manual' AND status = 'timed_out' AND error_code = '57014'}),
	'the timed-out manual refresh is recorded timed_out');

# --- cancelled: pg_cancel_backend -----------------------------------------
my ($bout, $berr) = ('', '');
my $h = IPC::Run::start(
	[ 'psql', '-X', '-d', $node->connstr('postgres'), '-c', q{SELECT churn.refresh('manual')} ],
	'>', \$bout, '2>', \$berr);
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE 'SELECT churn.refresh(%' AND state = 'active'}),
	'a long manual refresh is running');
# another manual refresh meanwhile is refused at once (55P03), and skipped
($ret, $out, $err) = $node->psql('postgres', q{SELECT churn.refresh('manual')});
like($err, qr/could not obtain lock|already running|is being refreshed/, 'a concurrent manual refresh is refused');
is($node->safe_psql('postgres', q{
		SELECT count(*) FROM churn.pipeline_runs WHERE pipeline = 'manual' AND status = 'skipped' AND error_code = '55P03'}),
	'1', 'and recorded skipped before its error returns');
$t0 = time();
$node->safe_psql('postgres', q{
	SELECT pg_cancel_backend(pid) FROM pg_stat_activity
	WHERE query LIKE 'SELECT churn.refresh(%' AND state = 'active'});
$h->finish;
like($berr, qr/canceling statement due to user request/, 'the cancelled refresh reports the cancel');
ok(time() - $t0 < 30, 'and ends promptly');
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM churn.pipeline_runs
		WHERE pipeline = 'manual' AND status = 'cancelled' AND error_code = '57014'}),
	'the cancelled manual refresh is recorded cancelled');

# --- a refresh that succeeds adds its own run, nothing else ----------------
$node->safe_psql('postgres', q{UPDATE public.ctl SET sleep_s = 0 WHERE name = 'manual'});
is($node->safe_psql('postgres', q{SELECT status FROM churn.refresh('manual')}), 'succeeded', 'the refresh succeeds');
sleep 1;
is(runs('manual'),
	join("\n", 'manual|failed|22000|source manual is broken', 'manual|failed|22000|source manual is broken',
		'manual|timed_out|57014|canceling statement due to statement timeout',
		'manual|skipped|55P03|' . $node->safe_psql('postgres',
			q{SELECT error_message FROM churn.pipeline_runs WHERE status = 'skipped' AND pipeline = 'manual'}),
		'manual|cancelled|57014|canceling statement due to user request', 'manual|succeeded'),
	'every manual run is on record, none left running');

# --- NOTIFY churn_reject: a committed run that rejected rows, nothing else --
$node->safe_psql('postgres', q{
	CREATE TABLE public.dirty (customer_id text, ts date, amount float8);
	INSERT INTO public.dirty VALUES ('a', current_date - 1, 5), ('a', current_date - 9, 'NaN'), ('b', current_date, 3);
	SELECT 1 FROM churn.create_pipeline('dirty', 'public.dirty', model => 'r', start_at => now() + interval '10 years');});
($ret, $out, $err) = $node->psql('postgres', q{
	LISTEN churn_reject;
	SELECT rejected_rows FROM churn.refresh('dirty');
	INSERT INTO public.dirty VALUES ('b', current_date, 4);
	SELECT rejected_rows FROM churn.refresh('dirty');});
is(scalar(() = $out =~ /Asynchronous notification "churn_reject" with payload "rejected"/g), 1,
	'NOTIFY churn_reject once: for the run that rejected a row, not for the clean one');
like($out, qr/^1\n.*^0$/ms, 'the runs rejected 1 and 0 rows');
unlike($out, qr/payload "[^"]*(dirty|\ba\b)/, 'the payload names no pipeline or customer');

# --- a scheduled run cancelled --------------------------------------------
$node->safe_psql('postgres', q{
	UPDATE public.ctl SET sleep_s = 60 WHERE name = 'sched';
	SELECT 1 FROM churn.create_pipeline('sched', 'public.src_sched', model => 'r', schedule => '1 hour');});
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity
		WHERE backend_type = 'churn_warning worker' AND query LIKE 'churn_warning: refresh of pipeline "sched"%'}),
	'the worker runs the scheduled refresh');
$node->safe_psql('postgres', q{
	SELECT pg_cancel_backend(pid) FROM pg_stat_activity
	WHERE backend_type = 'churn_warning worker' AND query LIKE 'churn_warning: refresh of pipeline "sched"%'});
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM churn.pipeline_runs WHERE pipeline = 'sched' AND status = 'cancelled'}),
	'the cancelled scheduled run is recorded cancelled');

# --- a worker that dies: its run is interrupted, the log says why ---------
my $log_offset = -s $node->logfile;
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity
		WHERE backend_type = 'churn_warning worker' AND query LIKE 'churn_warning: refresh of pipeline "sched"%'}),
	'the worker retries the scheduled refresh');
$node->safe_psql('postgres', q{
	SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	WHERE backend_type = 'churn_warning worker' AND query LIKE 'churn_warning: refresh of pipeline "sched"%'});
$node->safe_psql('postgres', q{UPDATE public.ctl SET sleep_s = 0 WHERE name = 'sched'});
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM churn.pipeline_runs WHERE pipeline = 'sched' AND status = 'interrupted'}),
	'the run of a terminated worker is recorded interrupted');
ok($node->wait_for_log(qr/churn_warning worker for database \d+ exited before finishing its pass/, $log_offset),
	'the launcher logs that the worker exited early');
like(slurp_file($node->logfile, $log_offset), qr/HINT:  The worker's own error/, 'with a hint');
$node->safe_psql('postgres', q{SELECT 1 FROM churn.pause_pipeline('sched')});
is($node->safe_psql('postgres', q{SELECT count(*) FROM churn.pipeline_runs WHERE status IN ('running', 'failed') AND pipeline = 'sched'}),
	'0', 'not recorded failed');

$node->stop;
done_testing();
