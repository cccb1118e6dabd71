# A pipeline under concurrent load: the background worker refreshes it every
# 3 seconds (and a client refreshes it by hand now and then) while pgbench
# writers keep inserting purchases -- late ones, NULL, zero and negative
# amounts, multi-row statements, transactions that stay open across a
# refresh, rolled-back ones, and two DELETEs that force a full re-read -- and
# pgbench readers keep reading churn.current_warnings and
# churn.pipeline_status with lock_timeout = 200ms.  Checks that
#   * no reader ever waits on a lock, times out or errors, and every read
#     sees one complete snapshot (all rows of the pipeline, one as_of, never
#     fewer customers than the reader's previous read);
#   * a manual refresh either succeeds or fails cleanly with 55P03;
#   * after the writers stop and a final refresh, the stored histories equal
#     a full recomputation from the source, per customer and day, and the
#     capture queue is empty;
#   * scheduled runs succeeded (more than 10), none failed, and the server
#     log has no deadlock and no unexpected error.
#
# CW_CONCURRENCY_SECONDS (default 60) sets how long the load runs.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time sleep);

my $seconds = $ENV{CW_CONCURRENCY_SECONDS} // 60;
my $customers = 3000;
# a zone west of UTC, so that the local purchase day differs from the UTC
# one for part of the day (the capture trigger and the full read must agree)
my $tz = 'America/New_York';

my $node = PostgreSQL::Test::Cluster->new('concurrency');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'churn_warning'
churn_warning.naptime = 1
max_connections = 40
# a lock wait of more than 100 ms is logged ("still waiting for ...")
log_lock_waits = on
deadlock_timeout = 100ms
log_line_prefix = '%m [%p] %q%a '
});
$node->start;

$node->safe_psql('postgres', qq{
	CREATE EXTENSION churn_warning;
	CREATE TABLE purchases (customer_id text, ts timestamptz, amount numeric);
	-- $customers demo customers, shifted so that the last purchase is an hour ago
	INSERT INTO purchases
	SELECT customer_id::text, ts + (now() - interval '1 hour' - max(ts) OVER ()), amount
	FROM churn.demo_purchases($customers, 7);
	ANALYZE purchases;
	CREATE UNLOGGED TABLE read_log (
		client int, at timestamptz, n_warn bigint, n_asof bigint, asof_warn date,
		asof_status date, run_id bigint, run_customers bigint, status_customers bigint,
		last_status text, p_churn_sum float8);
	SELECT churn.create_pipeline('p', 'purchases', schedule => '3 seconds', time_zone => '$tz');
});

# the worker's first (full) refresh
ok($node->poll_query_until('postgres',
		q{SELECT count(*) > 0 FROM churn.pipeline_runs WHERE pipeline = 'p' AND status = 'succeeded'}),
	'the worker runs the first refresh')
  or BAIL_OUT('the worker did not refresh the pipeline');
is($node->safe_psql('postgres', q{SELECT count(*) FROM churn.current_warnings WHERE pipeline = 'p'}),
	$customers, 'the first snapshot has every customer');

# --- the load -----------------------------------------------------------------
my %writer = (
	# an ordinary purchase, now
	'w_now.sql' => q{
\set c random(1, 3000)
\set cents random(100, 30000)
INSERT INTO purchases VALUES ((:c)::text, now() - random() * interval '2 hours', :cents / 100.0);
},
	# late purchases (days in the past), NULL, zero, negative and tiny amounts
	'w_odd.sql' => q{
\set c random(1, 3000)
\set kind random(0, 4)
\set days random(1, 40)
INSERT INTO purchases VALUES ((:c)::text, now() - :days * interval '1 day' - random() * interval '1 day',
	CASE :kind WHEN 0 THEN NULL WHEN 1 THEN 0 WHEN 2 THEN -1.25 * :days WHEN 3 THEN 0.01 ELSE 19.99 END);
},
	# one statement, many rows and customers (the transition table), a new
	# customer, and rows the pipeline skips (NULL customer, NULL timestamp)
	'w_batch.sql' => q{
\set c random(1, 3000)
\set n random(2, 40)
INSERT INTO purchases
SELECT ((:c + g * 7) % 3000 + 1)::text, now() - (g % 5) * interval '1 day' - g * interval '1 minute',
       CASE WHEN g % 9 = 0 THEN -5 WHEN g % 11 = 0 THEN NULL ELSE g * 3.5 END
FROM generate_series(1, :n) g;
INSERT INTO purchases VALUES ('new-' || :client_id || '-' || :c, now(), 42.00), (NULL, now(), 1), ((:c)::text, NULL, 5);
},
	# a transaction that stays open across a refresh
	'w_txn.sql' => q{
\set c random(1, 3000)
\set ms random(100, 1500)
BEGIN;
INSERT INTO purchases VALUES ((:c)::text, now(), 10.50);
SELECT pg_sleep(:ms / 1000.0);
INSERT INTO purchases VALUES ((:c)::text, now() - interval '3 days', 7.25), ((:c)::text, now(), -2.5);
COMMIT;
},
	# rolled back: must leave no trace
	'w_rollback.sql' => q{
\set c random(1, 3000)
BEGIN;
INSERT INTO purchases VALUES ((:c)::text, now(), 99999.99), ('ghost-' || :c, now(), 1);
ROLLBACK;
},
);
my @writer_weights = ('w_now.sql@20', 'w_odd.sql@10', 'w_batch.sql@4', 'w_txn.sql@1', 'w_rollback.sql@2');

my %reader = (
	# everything a reader checks, read in one statement (one snapshot)
	'r_check.sql' => q{
INSERT INTO read_log
SELECT :client_id, clock_timestamp(), w.n, w.n_asof, w.asof, s.as_of, r.run_id, r.customers_total, s.customers,
       s.last_status, w.p_sum
FROM churn.pipeline_status s
CROSS JOIN LATERAL (SELECT count(*) AS n, count(DISTINCT c.as_of) AS n_asof, min(c.as_of) AS asof,
                           sum(c.p_churn) AS p_sum
                    FROM churn.current_warnings c WHERE c.pipeline = s.pipeline) w
LEFT JOIN LATERAL (SELECT x.run_id, x.customers_total FROM churn.pipeline_runs x
                   WHERE x.pipeline = s.pipeline AND x.status = 'succeeded'
                   ORDER BY x.run_id DESC LIMIT 1) r ON true
WHERE s.pipeline = 'p';
},
	# what an application reads
	'r_app.sql' => q{
SELECT customer_id, zone, code, p_churn FROM churn.current_warnings
WHERE pipeline = 'p' AND zone <> 'none' ORDER BY p_churn DESC, customer_id LIMIT 50;
SELECT * FROM churn.pipeline_status;
SELECT * FROM churn.tier_changes WHERE pipeline = 'p' ORDER BY at DESC LIMIT 20;
},
);
my @reader_weights = ('r_check.sql@3', 'r_app.sql@1');

for my $f (keys %writer, keys %reader)
{
	PostgreSQL::Test::Utils::append_to_file($node->basedir . "/$f", $writer{$f} // $reader{$f});
}

sub start_pgbench
{
	my ($options, $clients, $weights) = @_;
	my ($out, $err) = ('', '');
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGOPTIONS} = $options;
	my @cmd = ('pgbench', '-n', '-c', $clients, '-j', $clients, '-T', $seconds,
		map { ('-f', $node->basedir . "/$_") } @$weights);
	push @cmd, 'postgres';
	my $h = IPC::Run::start(\@cmd, '>', \$out, '2>', \$err);
	return { h => $h, out => \$out, err => \$err };
}

my $started = time;
my $writers = start_pgbench('', 4, \@writer_weights);
my $readers = start_pgbench('-c lock_timeout=200ms -c statement_timeout=5s', 3, \@reader_weights);

# meanwhile: a manual refresh every few seconds, every other one timed to
# start just after a schedule slot (the worker is refreshing then: the
# manual refresh must succeed or fail with 55P03); twice, a DELETE on the
# source (the next refresh re-reads the whole source while writers go on)
my %manual = (ok => 0, '55P03' => 0);
my @manual_other;
my @deletes = ($seconds / 3, 2 * $seconds / 3);
my $round = 0;
while (time - $started < $seconds - 4)
{
	sleep(2 + rand(2));
	if (++$round % 2 == 0)
	{
		# slots are local midnight + k * 3 s, i.e. epoch seconds divisible by 3
		my $t = time;
		my $slot = 3 * (int($t / 3) + 1);
		sleep($slot - $t + 0.005 + rand(0.05));
	}
	if (@deletes && time - $started >= $deletes[0])
	{
		shift @deletes;
		$node->safe_psql('postgres',
			q{DELETE FROM purchases WHERE amount = 0.01 AND ts < now() - interval '1 day'});
	}
	my ($out, $err) = ('', '');
	$node->psql('postgres', q{SELECT status FROM churn.refresh('p')},
		stdout => \$out, stderr => \$err, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	if ($out eq 'succeeded') { $manual{ok}++; }
	elsif ($err =~ /ERROR:\s+55P03:/) { $manual{'55P03'}++; }
	else { push @manual_other, "out: $out err: $err"; }
}
$writers->{h}->finish;
$readers->{h}->finish;
my $writer_rc = $writers->{h}->result(0);
my $reader_rc = $readers->{h}->result(0);
note "writers (exit $writer_rc):\n${$writers->{out}}${$writers->{err}}";
note "readers (exit $reader_rc):\n${$readers->{out}}${$readers->{err}}";
note sprintf('load phase took %.1f s', time - $started);

# --- checks -------------------------------------------------------------------
is($writer_rc, 0, 'writers ran without errors');
unlike(${ $writers->{err} }, qr/ERROR|aborted/, 'no writer error');
is($reader_rc, 0, 'readers ran without errors (no lock timeout, no statement timeout)');
unlike(${ $readers->{err} }, qr/ERROR|aborted|timeout/, 'no reader error');
like(${ $readers->{out} }, qr/number of failed transactions: 0 /, 'pgbench counts no failed read');

note "manual refreshes: $manual{ok} succeeded, $manual{'55P03'} refused with 55P03 (a refresh was running)";
ok($manual{ok} > 0, 'some manual refreshes succeeded');
is(scalar(@manual_other), 0, 'a manual refresh succeeds or fails with 55P03, nothing else')
  or diag(join("\n", @manual_other));

my ($reads, $bad) = split /\|/, $node->safe_psql('postgres', q{
	WITH l AS (SELECT *, lag(n_warn) OVER (PARTITION BY client ORDER BY at) AS prev_n FROM read_log)
	SELECT count(*),
	       concat_ws(',',
	           count(*) FILTER (WHERE n_warn = 0) || ' empty',
	           count(*) FILTER (WHERE n_asof <> 1) || ' mixed as_of',
	           count(*) FILTER (WHERE asof_warn IS DISTINCT FROM asof_status) || ' as_of unlike pipeline_status',
	           count(*) FILTER (WHERE n_warn IS DISTINCT FROM run_customers) || ' count unlike last run',
	           count(*) FILTER (WHERE n_warn < prev_n) || ' fewer than before')
	FROM l});
note "$reads consistency reads";
ok($reads > 50, 'readers read many times');
is($bad, '0 empty,0 mixed as_of,0 as_of unlike pipeline_status,0 count unlike last run,0 fewer than before',
	'every read saw one complete snapshot');
note 'pipeline_status.customers NULL (a run in progress or skipped) in '
  . $node->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE status_customers IS NULL) FROM read_log})
  . ' reads; last_status per read: '
  . $node->safe_psql('postgres',
	q{SELECT string_agg(last_status || ' ' || n, ', ') FROM (SELECT last_status, count(*) n FROM read_log GROUP BY 1) s});

# the final refresh (retried while the worker holds the pipeline)
my $final = '';
for my $try (1 .. 50)
{
	my ($out, $err) = ('', '');
	$node->psql('postgres', q{SELECT status || ' ' || mode FROM churn.refresh('p')},
		stdout => \$out, stderr => \$err, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	if ($out =~ /^succeeded/) { $final = $out; last; }
	if ($err !~ /55P03/) { $final = "failed: $err"; last; }
	sleep(0.2);
}
like($final, qr/^succeeded/, "final refresh ($final)");
$node->safe_psql('postgres', q{SELECT churn.pause_pipeline('p')});

is($node->safe_psql('postgres', q{SELECT count(*) FROM churn.pipeline_queue}), '0',
	'the capture queue is empty after the final refresh');

# stored histories against a full recomputation, per customer and day
my $cmp = $node->safe_psql('postgres', qq{
	SET TimeZone = '$tz';
	WITH stored AS (
		SELECT c.customer_id, d.day, d.purchases, d.amount
		FROM churn.pipeline_customer c
		JOIN churn.pipeline p USING (pipeline_id)
		CROSS JOIN LATERAL churn.history_days(c.history) d
		WHERE p.name = 'p'),
	fresh AS (
		SELECT s.customer_id, d.day, d.purchases, d.amount
		FROM (SELECT customer_id, churn.history_agg(ts, amount::float8) AS h
		      FROM purchases WHERE customer_id IS NOT NULL GROUP BY 1) s
		CROSS JOIN LATERAL churn.history_days(s.h) d)
	SELECT count(*) || ' days, '
	       || count(*) FILTER (WHERE stored.day IS NULL) || ' missing, '
	       || count(*) FILTER (WHERE fresh.day IS NULL) || ' extra, '
	       || count(*) FILTER (WHERE stored.purchases <> fresh.purchases) || ' purchases differ, '
	       || count(*) FILTER (WHERE abs(stored.amount - fresh.amount)
	                                 > 1e-6 * greatest(1, abs(stored.amount), abs(fresh.amount))) || ' spend differs'
	FROM stored FULL JOIN fresh USING (customer_id, day)});
like($cmp, qr/^\d+ days, 0 missing, 0 extra, 0 purchases differ, 0 spend differs$/,
	"stored histories equal a recomputation from the source ($cmp)");
is($node->safe_psql('postgres', q{
	SELECT (SELECT count(*) FROM churn.current_warnings WHERE pipeline = 'p')
	       = (SELECT count(DISTINCT customer_id) FROM purchases WHERE customer_id IS NOT NULL)}),
	't', 'the snapshot has every customer of the source');
is($node->safe_psql('postgres', q{SELECT count(*) FROM purchases WHERE customer_id LIKE 'ghost-%' OR amount = 99999.99}),
	'0', 'rolled-back purchases left no trace in the source');

my $runs = $node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE trigger = 'schedule' AND status = 'succeeded') || '|'
	       || count(*) FILTER (WHERE status IN ('failed', 'timed_out', 'interrupted', 'running'))
	FROM churn.pipeline_runs WHERE pipeline = 'p'});
my ($scheduled_ok, $runs_bad) = split /\|/, $runs;
my $kind_counts = $node->safe_psql('postgres', q{
	SELECT string_agg(k || ' ' || n, ', ' ORDER BY k) FROM (
		SELECT trigger || '/' || status || '/' || coalesce(mode, '-') AS k, count(*) AS n
		FROM churn.pipeline_runs WHERE pipeline = 'p' GROUP BY 1) s});
note "runs: $kind_counts";
note 'run timings (median ms of incremental scheduled runs: merge, score, finish): '
  . $node->safe_psql('postgres', q{
	SELECT concat_ws(' / ', round(percentile_cont(0.5) WITHIN GROUP (ORDER BY merge_ms)::numeric, 1),
	                 round(percentile_cont(0.5) WITHIN GROUP (ORDER BY score_ms)::numeric, 1),
	                 round(percentile_cont(0.5) WITHIN GROUP (ORDER BY finish_ms)::numeric, 1))
	FROM churn.pipeline_runs WHERE pipeline = 'p' AND status = 'succeeded' AND mode = 'incremental'});
ok($scheduled_ok > 10, "scheduled runs succeeded ($scheduled_ok)");
is($runs_bad, '0', 'no run failed, timed out, was interrupted or is left running');
ok($node->safe_psql('postgres', q{SELECT count(*) FROM churn.pipeline_runs WHERE pipeline = 'p' AND mode = 'full'}) >= 2,
	'the DELETEs made later runs re-read the whole source');

my $log = slurp_file($node->logfile);
unlike($log, qr/deadlock detected/, 'no deadlock');
my @waits = $log =~ /(still waiting for .*)/g;
note scalar(@waits) . ' lock waits over 100 ms logged' . (@waits ? ":\n" . join("\n", @waits[0 .. ($#waits < 9 ? $#waits : 9)]) : '');
my @errors = grep { !/could not obtain lock on row in relation "pipeline"/ }
  ($log =~ /((?:ERROR|FATAL|PANIC):.*)/g);
is(scalar(@errors), 0, 'no error in the server log but 55P03 of colliding refreshes')
  or diag(join("\n", @errors[0 .. ($#errors < 19 ? $#errors : 19)]));

$node->stop;
done_testing();
