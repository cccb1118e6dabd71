# Soak: for CW_SOAK_SECONDS (default 150) the worker refreshes five
# pipelines in two databases every second while writers insert purchases
# (pgbench), readers read the views as store staff (pgbench), and one
# source turns bad (a purchase with a NaN amount) and good again, twice.
#
# Asserted and printed (docs/verification.md quotes a run):
#   - runs: every run succeeds, the bad pipeline's too: its runs while the
#     source is bad reject the NaN row (churn.pipeline_rejects, reason
#     named) instead of failing; no run is interrupted, timed out or left
#     running; every
#     pipeline succeeds at least every 30 s (no starvation, no stall); no
#     pipeline is paused; no deadlock.
#   - memory: private memory (RssAnon of /proc/PID/status) of the launcher,
#     early against late, grows by at most 1 MB; the largest database
#     worker late is at most 1.3 x the largest early + 2 MB (workers live for
#     one pass, so a leak shows as growth within a pass, which grows with
#     the data: the writers add about 10 % purchase rows).
#   - tables stay within their retention (run_retention set to 20 s by hand,
#     below the 1 hour create_pipeline allows): no run older than the
#     retention but the last 10 of its pipeline, no tier change older than
#     it, no reject but those of runs still kept (rejects go with their
#     run); the capture queue stays bounded and is empty after the final
#     refresh.
#   - the final histories equal a full recomputation from the sources, and
#     the snapshot has every customer; the store role saw its stores only.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use IPC::Run;
use File::Temp qw(tempdir);

my $soak = $ENV{CW_SOAK_SECONDS} // 150;
my $retention = 20;    # seconds
my @dbs = ('soak_a', 'soak_b');
my %pipelines = (
	soak_a => [ [ 'a_rules', 'soak.purchases', 'rules' ], [ 'a_red', 'soak.purchases', 'soak_red' ],
		[ 'a_bad', 'soak.bad_purchases', 'rules' ] ],
	soak_b => [ [ 'b_bgnbd', 'soak.purchases', 'bgnbd' ], [ 'b_rules', 'soak.purchases', 'rules' ] ]);
my $bad_pipeline = 'a_bad';
# the longest time a pipeline may go without a successful run outside the
# bad windows: the schedule is 1 s, but on a loaded machine a database's
# pipelines run every few seconds; a stall or a deadlock would exceed it
my $max_gap = 30;

my $node = PostgreSQL::Test::Cluster->new('soak');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'churn_warning'
churn_warning.naptime = 1
max_worker_processes = 16
timezone = 'UTC'
log_min_messages = warning
});
$node->start;
$node->safe_psql('postgres', q{CREATE ROLE soak_staff LOGIN});

foreach my $db (@dbs)
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, q{
		CREATE EXTENSION churn_warning;
		GRANT churn_store TO soak_staff;
		SELECT churn.register_rules('rules');
		SELECT churn.register_model('soak_red', ROW(ARRAY[10, 0]::float8[], NULL, NULL, NULL, NULL, NULL)::churn.logit,
		                            ARRAY['x'], 90);
		CREATE SCHEMA soak;
		CREATE TABLE soak.purchases (customer_id text, ts timestamptz, amount numeric, shop text);
		INSERT INTO soak.purchases
		SELECT 'c' || c, now() - interval '1 day' * ((c * 37 + k * 53) % 400) - interval '1 hour' * k,
		       1 + (c * k) % 60, 's' || (1 + c % 4)
		FROM generate_series(1, 500) c, generate_series(1, 8) k;
		CREATE TABLE soak.bad_purchases AS SELECT * FROM soak.purchases WHERE customer_id < 'c3';
		CREATE TABLE soak.state (bad boolean NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
	});
	foreach my $p (@{ $pipelines{$db} })
	{
		my ($name, $source, $model) = @$p;
		$node->safe_psql($db, qq{
			SELECT churn.create_pipeline('$name', '$source', model => '$model', store_col => 'shop',
			                             schedule => '1 second', time_zone => 'UTC', max_failures => 100,
			                             control_share => 0.2);
			SELECT churn.grant_store('soak_staff', '$name', 's1');
			SELECT churn.grant_store('soak_staff', '$name', 's2');
		});
	}
	# retention in seconds, below the 1 hour the table allows, so that it acts within the soak
	$node->safe_psql($db, qq{
		ALTER TABLE churn.pipeline DROP CONSTRAINT pipeline_run_retention_check;
		UPDATE churn.pipeline SET run_retention = interval '$retention seconds'});
}
ok( $node->poll_query_until($_, q{
		SELECT count(DISTINCT p.pipeline_id) = (SELECT count(*) FROM churn.pipeline)
		FROM churn.pipeline p JOIN churn.pipeline_run r USING (pipeline_id) WHERE r.status = 'succeeded'}),
	"every pipeline of $_ refreshed by the worker") foreach @dbs;

# --- memory of the launcher and the database workers, from /proc ----------
my $postmaster = (split /\n/, slurp_file($node->data_dir . '/postmaster.pid'))[0];

# RssAnon (kB) of the launcher and of each running database worker.
sub sample_memory
{
	my %found;
	opendir(my $dh, '/proc') or return %found;
	foreach my $pid (grep { /^\d+$/ } readdir $dh)
	{
		my $status;
		next unless open(my $fh, '<', "/proc/$pid/status");
		{ local $/; $status = <$fh>; }
		close $fh;
		next unless $status =~ /^PPid:\s+$postmaster$/m;
		next unless open(my $ch, '<', "/proc/$pid/cmdline");
		my $cmd = <$ch> // '';
		close $ch;
		my ($anon) = $status =~ /^RssAnon:\s+(\d+) kB/m;
		next unless defined $anon;
		if ($cmd =~ /churn_warning launcher/) { $found{launcher} = $anon; }
		elsif ($cmd =~ /churn_warning worker/) { $found{"worker $pid"} = $anon; }
	}
	closedir $dh;
	return %found;
}

# --- writers and readers ---------------------------------------------------
my $tmp = tempdir(CLEANUP => 1);
open(my $w, '>', "$tmp/writer.sql") or die;
print $w q{\set c random(1, 600)
\set s random(1, 4)
INSERT INTO soak.purchases VALUES ('c' || :c, now(), 1 + :c % 60, 's' || :s);
INSERT INTO soak.bad_purchases VALUES ('c' || (:c % 250), now(), 1 + :c % 60, 's' || :s);
};
close $w;
open(my $r, '>', "$tmp/reader.sql") or die;
print $r q{SELECT count(*) FROM churn.current_warnings;
SELECT count(*) FROM churn.open_alerts;
SELECT count(*) FROM churn.tier_changes;
SELECT store, sum(alerts) FROM churn.alerts_by_store GROUP BY 1;
};
close $r;
my $writer_rate = $ENV{CW_SOAK_WRITE_RATE} // 20;    # transactions per second and database
my %bench;
foreach my $db (@dbs)
{
	foreach my $job ([ 'writer', 'postgres', $writer_rate ], [ 'reader', 'soak_staff', 4 ])
	{
		my ($kind, $user, $rate) = @$job;
		my ($out, $err) = ('', '');
		my $h = IPC::Run::start(
			[ 'pgbench', '-n', '-h', $node->host, '-p', $node->port, '-U', $user, '-c', '1', '-R', $rate,
				'-T', $soak, '-f', "$tmp/$kind.sql", $db ],
			'>', \$out, '2>', \$err);
		$bench{"$db $kind"} = [ $h, \$out, \$err ];
	}
}

# --- the soak: toggle the bad source, sample memory, collect runs ---------
my %runs;       # "db pipeline" => { run_id => [status, error, started epoch, finished epoch, tier changes, rejected rows] }
my %last_run = map { $_ => 0 } @dbs;
my %max_queue;    # pipeline => most rows seen in its capture queue

# Read the runs finished since the last call (before retention prunes them).
sub collect_runs
{
	foreach my $db (@dbs)
	{
		my $rows = $node->safe_psql($db, qq{
			SELECT r.run_id, p.name, r.status, coalesce(r.error_message, ''), extract(epoch FROM r.started_at),
			       extract(epoch FROM r.finished_at), coalesce(r.tier_changes, 0), coalesce(r.rejected_rows, 0)
			FROM churn.pipeline_run r JOIN churn.pipeline p USING (pipeline_id)
			WHERE r.run_id > $last_run{$db} AND r.status <> 'running' ORDER BY r.run_id});
		foreach my $line (split /\n/, $rows)
		{
			my ($id, $name, $rest) = split /\|/, $line, 3;
			my ($status, $error, $started, $finished, $changes, $rejected) =
			  $rest =~ /^([^|]*)\|(.*)\|([^|]*)\|([^|]*)\|([^|]*)\|([^|]*)$/s;
			$runs{"$db $name"}{$id} = [ $status, $error, $started, $finished, $changes, $rejected ];
			$last_run{$db} = $id if $id > $last_run{$db};
		}
		foreach my $line (split /\n/, $node->safe_psql($db, q{
			SELECT p.name, count(q.*) FROM churn.pipeline p LEFT JOIN churn.pipeline_queue q USING (pipeline_id)
			GROUP BY 1}))
		{
			my ($name, $n) = split /\|/, $line;
			$max_queue{$name} = $n if $n > ($max_queue{$name} // 0);
		}
	}
	return;
}

my @bad_windows = ([ 0.25, 0.45 ], [ 0.6, 0.75 ]);    # shares of the soak the source is bad
my $bad = 0;
my (%early, %late);
my $t0 = time;
my $next_collect = $t0 + 5;
while ((my $t = time) < $t0 + $soak)
{
	my $share = ($t - $t0) / $soak;
	my $want_bad = grep { $share >= $_->[0] && $share < $_->[1] } @bad_windows;
	if ($want_bad && !$bad)
	{
		$node->safe_psql('soak_a', q{
			INSERT INTO soak.bad_purchases VALUES ('c1', now(), 'NaN', 's1');
			INSERT INTO soak.state VALUES (true)});
		$bad = 1;
	}
	elsif (!$want_bad && $bad)
	{
		$node->safe_psql('soak_a', q{
			DELETE FROM soak.bad_purchases WHERE amount = 'NaN';
			INSERT INTO soak.state VALUES (false)});
		$bad = 0;
	}
	# memory: early = after 10 s of warm-up up to a quarter, late = the last quarter
	my %m = sample_memory();
	my $window = ($t - $t0 >= 10 && $share < 0.25) ? \%early : ($share >= 0.75 ? \%late : undef);
	if ($window)
	{
		foreach my $k (keys %m)
		{
			my $key = $k eq 'launcher' ? 'launcher' : 'worker';
			$window->{$key} = $m{$k} if !defined $window->{$key} || $m{$k} > $window->{$key};
			$window->{"$key samples"}++;
		}
	}
	if ($t >= $next_collect) { collect_runs(); $next_collect = $t + 5; }
	usleep(200_000);
}
foreach my $k (sort keys %bench)
{
	my ($h, $out, $err) = @{ $bench{$k} };
	$h->finish;
	my ($tx) = $$out =~ /number of transactions actually processed: (\d+)/;
	my ($failed) = $$out =~ /number of failed transactions: (\d+)/;
	ok(defined $tx && $tx > 0 && $h->result == 0 && !($failed // 0),
		"pgbench $k: " . ($tx // 'no') . ' transactions, ' . ($failed // 0) . ' failed'
		  . ($h->result ? " (exit " . $h->result . "): $$err" : ''));
}
collect_runs();
foreach my $db (@dbs)
{
	is($node->safe_psql($db, q{SELECT string_agg(name, ', ') FROM churn.pipeline WHERE state <> 'active'}), '',
		"$db: the worker paused no pipeline");
}

# --- quiesce: the source is good; a final refresh of every pipeline --------
is($bad, 0, 'the bad source is good again at the end');
foreach my $db (@dbs)
{
	foreach my $p (@{ $pipelines{$db} })
	{
		my $name = $p->[0];
		my $final = '';
		for (my $i = 0; $i < 100; $i++)
		{
			my ($out, $err) = ('', '');
			$node->psql($db, qq{SELECT status FROM churn.refresh('$name')},
				stdout => \$out, stderr => \$err, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
			if ($out =~ /^succeeded/) { $final = $out; last; }
			if ($err !~ /55P03/) { $final = "failed: $err"; last; }
			usleep(200_000);
		}
		is($final, 'succeeded', "$db $name: final refresh");
		$node->safe_psql($db, qq{SELECT churn.pause_pipeline('$name')});
	}
}
collect_runs();

# --- runs -------------------------------------------------------------------
my @bad_spans;    # [from, to] epochs when the bad row was in the source
{
	my @ev = map { [ split /\|/ ] } split /\n/,
	  $node->safe_psql('soak_a', q{SELECT bad, extract(epoch FROM at) FROM soak.state ORDER BY at});
	for (my $i = 0; $i < @ev; $i++)
	{
		next unless $ev[$i][0] eq 't';
		push @bad_spans, [ $ev[$i][1], $i + 1 < @ev ? $ev[ $i + 1 ][1] : 9e9 ];
	}
}
is(scalar @bad_spans, 2, 'the source turned bad twice');
my $total_runs = 0;
my %written;    # db => [runs, tier changes] recorded over the soak
foreach my $key (sort keys %runs)
{
	my ($db, $name) = split / /, $key;
	my $r = $runs{$key};
	my @ids = sort { $a <=> $b } keys %$r;
	my %by = ();
	$by{ $r->{$_}[0] }++ foreach @ids;
	$total_runs += @ids;
	$written{$db}[0] += @ids;
	$written{$db}[1] += $r->{$_}[4] foreach @ids;
	# skipped: a refresh by hand (the final ones) refused while the worker
	# held the pipeline, recorded as such (part 922)
	my @odd = grep { $r->{$_}[0] !~ /^(succeeded|failed|skipped)$/ } @ids;
	is(scalar @odd, 0, "$key: no run interrupted or timed out ("
		  . join(', ', map { "$_ $by{$_}" } sort keys %by) . ')');
	# no run fails: the bad row is rejected, not the run
	my @failures = grep { $r->{$_}[0] eq 'failed' } @ids;
	is(scalar @failures, 0, "$key: no run failed"
		  . (@failures ? ': ' . join('; ', map { "run $_ $r->{$_}[1]" } @failures[0 .. 0]) : ''));
	# the longest time without a success, away from the bad windows
	my @ok = map { $r->{$_}[3] } grep { $r->{$_}[0] eq 'succeeded' } @ids;
	my $gap = 0;
	for (my $i = 1; $i < @ok; $i++)
	{
		my ($from, $to) = ($ok[ $i - 1 ], $ok[$i]);
		$gap = $to - $from if $to - $from > $gap;
	}
	ok($gap <= $max_gap,
		sprintf("%s: %d successful runs, the longest time between two %.1f s (at most $max_gap)", $key, scalar @ok, $gap));
	if ($name eq $bad_pipeline)
	{
		foreach my $span (@bad_spans)
		{
			# a run that starts while the row is there rejects it (a full read or the
			# queue merge of the run after its insert); afterwards none does
			my @during = grep { $r->{$_}[2] >= $span->[0] && $r->{$_}[3] <= $span->[1] } @ids;
			my @rejecting = grep { $r->{$_}[5] > 0 } @during;
			my @after = grep {
				my $start = $r->{$_}[2];
				$start > $span->[1] + 1 && !grep { $start >= $_->[0] && $start <= $_->[1] + 1 } @bad_spans
			} @ids;
			ok(@rejecting > 0 && @after > 0 && !grep({ $r->{$_}[5] > 0 } @after),
				sprintf('%s: bad for %.0f s: %d of its %d runs rejected the row, none of the %d after',
					$key, $span->[1] - $span->[0], scalar @rejecting, scalar @during, scalar @after));
		}
	}
}
my $n_pipelines = scalar keys %runs;
ok($n_pipelines == 5 && $total_runs >= $n_pipelines * $soak / $max_gap,
	sprintf('%d runs of %d pipelines in %d s (%.2f per second)', $total_runs, $n_pipelines, $soak, $total_runs / $soak));
foreach my $db (@dbs)
{
	is($node->safe_psql($db, q{SELECT count(*) FROM churn.pipeline_run WHERE status = 'running'}), '0',
		"$db: no run left running");
	is($node->safe_psql($db, qq{SELECT deadlocks FROM pg_stat_database WHERE datname = '$db'}), '0',
		"$db: no deadlock");
}
unlike(slurp_file($node->logfile), qr/deadlock detected|server process .* was terminated|out of memory/,
	'the server log has no deadlock, crash or out-of-memory');

# --- memory ------------------------------------------------------------------
foreach my $k ('launcher', 'worker')
{
	ok(($early{"$k samples"} // 0) > 0 && ($late{"$k samples"} // 0) > 0,
		sprintf('%s memory sampled early (%d) and late (%d)', $k, $early{"$k samples"} // 0,
			$late{"$k samples"} // 0));
}
my ($le, $ll, $we, $wl) = map { $_ // 0 } ($early{launcher}, $late{launcher}, $early{worker}, $late{worker});
ok($ll <= $le + 1024, "launcher private memory early $le kB, late $ll kB (at most +1 MB)");
ok($wl <= 1.3 * $we + 2048, "largest database worker early $we kB, late $wl kB (at most 1.3 x + 2 MB)");

# --- tables within their retention ---------------------------------------
foreach my $db (@dbs)
{
	my $sizes = $node->safe_psql($db, qq{
		SELECT (SELECT count(*) FROM churn.pipeline_run) || ' runs, '
		       || (SELECT count(*) FROM churn.pipeline_tier_change) || ' tier changes, '
		       || (SELECT count(*) FROM churn.pipeline_queue) || ' queued, '
		       || (SELECT count(*) FROM churn.alert) || ' alerts, '
		       || (SELECT count(*) FROM soak.purchases) || ' purchases; '
		       || pg_size_pretty(pg_total_relation_size('churn.pipeline_run') + pg_total_relation_size('churn.pipeline_tier_change')
		                         + pg_total_relation_size('churn.pipeline_queue'))});
	note("$db: $sizes");
	is($node->safe_psql($db, qq{
		SELECT count(*) FROM churn.pipeline_run r
		WHERE r.finished_at < (SELECT max(l.finished_at) FROM churn.pipeline_run l WHERE l.pipeline_id = r.pipeline_id)
		                      - interval '$retention seconds' - interval '5 seconds'
		  AND r.run_id < (SELECT min(k.run_id) FROM (SELECT r2.run_id FROM churn.pipeline_run r2
		                  WHERE r2.pipeline_id = r.pipeline_id ORDER BY r2.run_id DESC LIMIT 10) k)}),
		'0', "$db: no run older than the retention but the last 10 ($sizes)");
	is($node->safe_psql($db, qq{
		SELECT count(*) FROM churn.pipeline_tier_change tc JOIN churn.pipeline p USING (pipeline_id)
		WHERE tc.at < (SELECT max(r.finished_at) FROM churn.pipeline_run r
		               WHERE r.pipeline_id = p.pipeline_id AND r.status = 'succeeded')
		              - interval '$retention seconds' - interval '5 seconds'}),
		'0', "$db: no tier change older than the retention");
	# rejects go with their run: none is left of a run retention pruned
	my ($rejected, $rejects_kept) = split /\|/, $node->safe_psql($db, q{
		SELECT coalesce(sum(r.rejected_rows), 0), (SELECT count(*) FROM churn.pipeline_reject)
		FROM churn.pipeline_run r});
	my $rejected_total = 0;
	foreach my $key (grep { /^$db / } keys %runs)
	{
		$rejected_total += $runs{$key}{$_}[5] foreach keys %{ $runs{$key} };
	}
	ok($rejects_kept == $rejected && ($db ne 'soak_a' || $rejected_total >= 2),
		"$db: rejects kept $rejects_kept = the rejected rows of the runs kept ($rejected); $rejected_total rejected in all");
	is($node->safe_psql($db, q{SELECT count(*) FROM churn.pipeline_queue}), '0',
		"$db: the capture queue is empty after the final refresh");
	my ($runs_kept, $changes_kept) = split /\|/,
	  $node->safe_psql($db, q{SELECT (SELECT count(*) FROM churn.pipeline_run), (SELECT count(*) FROM churn.pipeline_tier_change)});
	ok($written{$db}[0] > $runs_kept && $written{$db}[1] > 0 && $written{$db}[1] > $changes_kept,
		"$db: retention pruned: $written{$db}[0] runs recorded, $runs_kept kept; $written{$db}[1] tier changes recorded, $changes_kept kept");
}
# a good pipeline's queue holds at most the writes of twice the longest time
# allowed between two successes; the bad one's also those of a bad window
foreach my $name (sort keys %max_queue)
{
	my $bound = $writer_rate * (2 * $max_gap + ($name eq $bad_pipeline ? 0.2 * $soak : 0));
	ok($max_queue{$name} <= $bound, "$name: the capture queue stayed bounded ($max_queue{$name} rows at most, bound $bound)");
}

# --- final histories against a full recomputation --------------------------
foreach my $db (@dbs)
{
	foreach my $p (@{ $pipelines{$db} })
	{
		my ($name, $source) = @$p;
		my $cmp = $node->safe_psql($db, qq{
			SET TimeZone = 'UTC';
			WITH stored AS (
				SELECT c.customer_id, d.day, d.purchases, d.amount
				FROM churn.pipeline_customer c JOIN churn.pipeline p USING (pipeline_id)
				CROSS JOIN LATERAL churn.history_days(c.history) d
				WHERE p.name = '$name'),
			fresh AS (
				SELECT s.customer_id, d.day, d.purchases, d.amount
				FROM (SELECT customer_id, churn.history_agg(ts, amount::float8) AS h
				      FROM $source WHERE customer_id IS NOT NULL GROUP BY 1) s
				CROSS JOIN LATERAL churn.history_days(s.h) d)
			SELECT count(*) || ' days, '
			       || count(*) FILTER (WHERE stored.day IS NULL) || ' missing, '
			       || count(*) FILTER (WHERE fresh.day IS NULL) || ' extra, '
			       || count(*) FILTER (WHERE stored.purchases <> fresh.purchases) || ' purchases differ, '
			       || count(*) FILTER (WHERE abs(stored.amount - fresh.amount)
			                                 > 1e-6 * greatest(1, abs(stored.amount), abs(fresh.amount))) || ' spend differs'
			FROM stored FULL JOIN fresh USING (customer_id, day)});
		like($cmp, qr/^\d+ days, 0 missing, 0 extra, 0 purchases differ, 0 spend differs$/,
			"$db $name: stored histories equal a recomputation from the source ($cmp)");
		is($node->safe_psql($db, qq{
			SELECT (SELECT count(*) FROM churn.current_warnings WHERE pipeline = '$name')
			       = (SELECT count(DISTINCT customer_id) FROM $source WHERE customer_id IS NOT NULL)}),
			't', "$db $name: the snapshot has every customer of the source");
	}
	is($node->safe_psql($db, q{
		SET ROLE soak_staff;
		SELECT count(*) FILTER (WHERE store NOT IN ('s1', 's2')) || ' of ' || count(*) FROM churn.current_warnings}),
		'0 of ' . $node->safe_psql($db, q{SELECT count(*) FROM churn.current_warnings WHERE store IN ('s1', 's2')}),
		"$db: the store role read its stores only");
}

$node->stop;
done_testing();
