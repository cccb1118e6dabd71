# Several workers per database (churn_warning.max_workers_per_database,
# 0.3.0): with 2, a slow pipeline does not hold back another pipeline of the
# same database, and never more than 2 refresh at once in it; with 1, the
# other pipeline waits for the slow one, as before; with more than
# max_worker_processes has room for, the workers stay within it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

my $node = PostgreSQL::Test::Cluster->new('workers');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'churn_warning'
churn_warning.naptime = 1
churn_warning.max_workers = 4
churn_warning.max_workers_per_database = 2
max_worker_processes = 16
timezone = 'UTC'
});
$node->start;

sub q1
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', $sql);
}

# Sources whose read sleeps as long as table ctl says (views: capture 'full').
q1(q{
	CREATE EXTENSION churn_warning;
	SELECT churn.demo_load('demo', 300, seed => 7, start_date => current_date - 700, end_date => current_date);
	CREATE TABLE public.ctl (name text PRIMARY KEY, sleep_s float8 NOT NULL);
	CREATE FUNCTION public.src_rows(p text) RETURNS TABLE (customer_id text, ts timestamptz, amount numeric)
	LANGUAGE plpgsql SET search_path = public AS $$
	BEGIN
		PERFORM pg_sleep((SELECT c.sleep_s FROM public.ctl c WHERE c.name = p));
		RETURN QUERY SELECT d.customer_id::text, d.ts, d.amount FROM demo.purchases d;
	END
	$$;
	CREATE VIEW public.runs AS
	SELECT r.run_id, p.name AS pipeline, r.status, r.started_at, r.finished_at
	FROM churn.pipeline_run r JOIN churn.pipeline p USING (pipeline_id);
});

# A pipeline (due at once) whose source sleeps $sleep seconds.
sub make_pipeline
{
	my ($name, $sleep) = @_;
	q1(qq{
		INSERT INTO public.ctl VALUES ('$name', $sleep);
		CREATE VIEW public.src_$name AS SELECT * FROM public.src_rows('$name');
		SELECT churn.create_pipeline('$name', 'src_$name', schedule => '1 day');
	});
	return;
}

# A slow pipeline; once its refresh runs, a fast one; wait until the fast one is refreshed.
sub slow_then_fast
{
	my ($slow, $sleep, $fast) = @_;
	make_pipeline($slow, $sleep);
	ok($node->poll_query_until('postgres', qq{SELECT count(*) = 1 FROM runs WHERE pipeline = '$slow' AND status = 'running'}),
		"the slow refresh of $slow runs");
	make_pipeline($fast, 0);
	ok($node->poll_query_until('postgres', qq{SELECT count(*) = 1 FROM runs WHERE pipeline = '$fast' AND status = 'succeeded'}),
		"the fast pipeline $fast is refreshed");
	return;
}

is(q1('SHOW churn_warning.max_workers_per_database'), '2', 'max_workers_per_database set');

# --- two workers: the fast pipeline does not wait for the slow one -----------
slow_then_fast('slow1', 20, 'fast1');
is(q1(q{SELECT status FROM runs WHERE pipeline = 'slow1'}), 'running',
	'... while the slow refresh of the same database still runs');
is( q1(q{
		SELECT count(DISTINCT r.pid) FROM churn.pipeline_run r JOIN churn.pipeline p USING (pipeline_id)
		WHERE p.name IN ('slow1', 'fast1')}),
	'2', '... by another worker');
ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM runs WHERE pipeline = 'slow1' AND status = 'succeeded'}),
	'the slow refresh finishes too');

# --- the cap: three slow pipelines, never more than two refreshes at once ----
make_pipeline('slow2', 4);
make_pipeline('slow3', 4);
make_pipeline('slow4', 4);
my ($max_runs, $max_workers) = (0, 0);
my $deadline = time() + 90;
while (time() < $deadline)
{
	my ($runs, $workers, $done) = split /\|/, q1(q{
		SELECT (SELECT count(*) FROM runs WHERE status = 'running'),
		       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'churn_warning worker'),
		       (SELECT count(*) FROM runs WHERE pipeline LIKE 'slow_' AND pipeline <> 'slow1' AND status = 'succeeded')});
	$max_runs = $runs if $runs > $max_runs;
	$max_workers = $workers if $workers > $max_workers;
	last if $done == 3;
	usleep(100_000);
}
is(q1(q{SELECT count(*) FROM runs WHERE pipeline IN ('slow2', 'slow3', 'slow4') AND status = 'succeeded'}), '3',
	'the three slow pipelines were refreshed');
is($max_runs, 2, 'at most two refreshes ran at once in the database, and two did');
cmp_ok($max_workers, '<=', 2, 'at most two database workers ran at once');
is( q1(q{
		SELECT count(*) FROM runs a JOIN runs b ON a.run_id < b.run_id
		JOIN runs c ON b.run_id < c.run_id
		WHERE a.pipeline IN ('slow2', 'slow3', 'slow4') AND b.pipeline IN ('slow2', 'slow3', 'slow4')
		  AND c.pipeline IN ('slow2', 'slow3', 'slow4')
		  AND greatest(a.started_at, b.started_at, c.started_at) < least(a.finished_at, b.finished_at, c.finished_at)}),
	'0', 'no three refreshes overlapped');

# --- one worker per database: the fast pipeline waits ----------------------
$node->append_conf('postgresql.conf', 'churn_warning.max_workers_per_database = 1');
$node->reload;
ok($node->poll_query_until('postgres', q{SELECT current_setting('churn_warning.max_workers_per_database') = '1'}),
	'max_workers_per_database reloaded');
slow_then_fast('slow5', 8, 'fast2');
is( q1(q{
		SELECT f.started_at >= s.finished_at FROM runs f, runs s
		WHERE f.pipeline = 'fast2' AND s.pipeline = 'slow5'}),
	't', 'with one worker per database it started only after the slow refresh ended');

# --- within max_worker_processes: 3 slots (the launcher, logical
# replication's launcher, one more) and generous churn settings: one
# database worker at a time, and every pipeline still refreshed
$node->append_conf('postgresql.conf', q{
max_worker_processes = 3
churn_warning.max_workers = 8
churn_warning.max_workers_per_database = 8
});
$node->restart;
make_pipeline('slow6', 3);
make_pipeline('slow7', 3);
make_pipeline('slow8', 3);
($max_workers, $deadline) = (0, time() + 90);
while (time() < $deadline)
{
	my ($workers, $done) = split /\|/, q1(q{
		SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'churn_warning worker'),
		       (SELECT count(*) FROM runs WHERE pipeline IN ('slow6', 'slow7', 'slow8') AND status = 'succeeded')});
	$max_workers = $workers if $workers > $max_workers;
	last if $done == 3;
	usleep(100_000);
}
is(q1(q{SELECT count(*) FROM runs WHERE pipeline IN ('slow6', 'slow7', 'slow8') AND status = 'succeeded'}), '3',
	'with one free worker slot the three pipelines were refreshed');
is($max_workers, 1, 'by one database worker at a time');

$node->stop;
done_testing();
