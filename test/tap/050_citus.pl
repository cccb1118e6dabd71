# churn_warning on a real Citus cluster (0.3.0): a coordinator and two
# workers (three throwaway clusters, shared_preload_libraries = citus), a
# purchases table distributed by customer, and checks that
#
#   1. features(history_agg(...)) GROUP BY customer_id runs whole on the
#      workers (EXPLAIN: no aggregate above the Citus scan, the GROUP BY in
#      the workers' plan);
#   2. bgnbd_fit, pnbd_fit, gg_fit, logit_fit, rfm_cuts and the evaluation
#      aggregates (auc, lift, log_loss, brier, calibration) have a state
#      type that is not internal and run as partial aggregates
#      (worker_partial_agg on the workers, coord_combine_agg on the
#      coordinator);
#   3. every result equals the same query on a plain (local) copy of the
#      data on the coordinator: floats within 1e-9 relative;
#   4. the purchase days do not depend on any session's TimeZone:
#      churn_warning.day_time_zone = 'UTC' on every node, the workers run
#      with TimeZone 'America/New_York' and the coordinator's session with
#      'Asia/Kolkata', yet the days are the UTC days (and the timestamps
#      are put near midnight UTC, where the zones disagree);
#   5. a pipeline whose source is the distributed table refreshes (a full
#      read each time, no capture triggers) and stores the same histories
#      as the local truth, with days in the pipeline's own time zone
#      (Asia/Kolkata: neither the workers' TimeZone nor day_time_zone).
#
# Needs Citus installed in the server under test: scripts/test.sh builds it
# from ../shared/vendor/citus when that folder is there and sets
# CW_CITUS=1; otherwise this test is skipped.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Time::HiRes qw(time);

if (!$ENV{CW_CITUS})
{
	plan skip_all => 'Citus is not installed in this server (scripts/test.sh builds it from '
	  . '../shared/vendor/citus when that folder is there)';
}

my $started = time;

# Start one node with Citus and churn_warning preloaded.
sub citus_node
{
	my ($name, $tz) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'citus,churn_warning'
churn_warning.day_time_zone = 'UTC'
churn_warning.enabled = off
timezone = '$tz'
max_worker_processes = 20
max_connections = 60
citus.node_conninfo = 'sslmode=disable'
citus.shard_count = 8
fsync = off
});
	$node->start;
	return $node;
}

my $coord = citus_node('coordinator', 'UTC');
my @workers = (citus_node('worker1', 'America/New_York'), citus_node('worker2', 'America/New_York'));
for my $n ($coord, @workers)
{
	$n->safe_psql('postgres', 'CREATE EXTENSION citus');
}
$coord->safe_psql('postgres',
	sprintf(q{SELECT citus_set_coordinator_host('%s', %d)}, $coord->host, $coord->port));
for my $w (@workers)
{
	$coord->safe_psql('postgres',
		sprintf(q{SELECT citus_add_node('%s', %d)}, $w->host, $w->port));
}
$coord->safe_psql('postgres', 'CREATE EXTENSION churn_warning');
is($coord->safe_psql('postgres', 'SELECT count(*) FROM citus_get_active_worker_nodes()'),
	'2', 'two active workers');
for my $w (@workers)
{
	is($w->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'churn_warning'}),
		$coord->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'churn_warning'}),
		'CREATE EXTENSION reached worker ' . $w->name);
}
note sprintf('cluster up in %.1f s', time - $started);

# --- data ---------------------------------------------------------------------
# 600 customers, purchases spread over two years, each at 23:30 or 00:30 UTC
# (the day differs between UTC, New York and Kolkata); the same rows in a
# plain table for the single-node truth.
$coord->safe_psql('postgres', q{
	CREATE TABLE purchases (customer_id int, ts timestamptz, amount float8);
	SELECT create_distributed_table('purchases', 'customer_id');
	INSERT INTO purchases
	SELECT c, timestamptz '2023-01-01 00:30+00' + ((c * 37 + k * k * 11) % 700) * interval '1 day'
	          - CASE WHEN (c + k) % 2 = 0 THEN interval '1 hour' ELSE interval '0' END,
	       5 + ((c * 13 + k * 7) % 90)
	FROM generate_series(1, 600) c, generate_series(0, (c % 9)) k;
	CREATE TABLE purchases_local AS SELECT * FROM purchases;
});

# Run a query and return its rows as text.
sub q_coord
{
	my ($sql) = @_;
	return $coord->safe_psql('postgres', "SET TimeZone = 'Asia/Kolkata';\n$sql");
}

# --- 1. features per customer run whole on the workers ------------------------
my $features_q = q{SELECT customer_id, churn.features(churn.history_agg(ts, amount), date '2025-01-01') AS f
	FROM %s GROUP BY customer_id};
my $explain = q_coord('EXPLAIN (COSTS OFF) ' . sprintf($features_q, 'purchases'));
note "EXPLAIN features:\n$explain";
like($explain, qr/\A\s*Custom Scan \(Citus Adaptive\)/, 'features: the Citus scan is the top node (nothing aggregated on the coordinator)');
like($explain, qr/(Hash|Group)Aggregate\s*\n\s*Group Key: customer_id/, 'features: GROUP BY customer_id in the workers\' plan');
unlike($explain, qr/coord_combine_agg/, 'features: no partial aggregation');

# --- 2. the fitting and evaluation aggregates run as partial aggregates ------
# A features table distributed by customer (INSERT ... SELECT runs on the
# workers) and its plain copy; scores and labels derived from the features.
$coord->safe_psql('postgres', q{
	CREATE TABLE feat (customer_id int, f churn.features, p float8, churned boolean);
	SELECT create_distributed_table('feat', 'customer_id', colocate_with => 'purchases');
	INSERT INTO feat (customer_id, f)
	SELECT customer_id, churn.features(churn.history_agg(ts, amount), date '2025-01-01')
	FROM purchases GROUP BY customer_id;
	UPDATE feat SET p = 1 / (1 + exp(-((f).recency_days - 200) / 80)),
	                churned = (f).recency_days > 150 + (customer_id % 7) * 20;
	CREATE TABLE feat_local AS SELECT * FROM feat;
});
is(q_coord('SELECT count(*) FROM feat'), '600', 'features of 600 customers');

my %aggs = (
	bgnbd_fit => 'churn.bgnbd_fit((f).x, (f).t_x, (f).t)',
	bgnbd_fit_weighted => 'churn.bgnbd_fit((f).x, (f).t_x, (f).t, 1 + customer_id % 3)',
	pnbd_fit => 'churn.pnbd_fit((f).x, (f).t_x, (f).t)',
	gg_fit => 'churn.gg_fit((f).x, (f).repeat_avg_spend) FILTER (WHERE (f).x > 0)',
	logit_fit => 'churn.logit_fit(churned, ARRAY[(f).recency_days, (f).x, (f).total_spend])',
	logit_fit_l2 => 'churn.logit_fit(churned, ARRAY[(f).recency_days, (f).x], 1.0)',
	rfm_cuts => 'churn.rfm_cuts((f).total_spend, 5)',
	auc => 'churn.auc(p, churned)',
	lift => 'churn.lift(p, churned, 5)',
	log_loss => 'churn.log_loss(p, churned)',
	brier => 'churn.brier(p, churned)',
	calibration => 'churn.calibration(p, churned, 4)',
);

# The largest relative difference between two JSON values (numbers within
# tolerance, anything else must be equal; undef when they differ otherwise).
sub max_rel_diff
{
	my ($a, $b) = @_;
	if (ref $a eq 'HASH' && ref $b eq 'HASH')
	{
		return undef unless join(',', sort keys %$a) eq join(',', sort keys %$b);
		my $m = 0;
		for my $k (keys %$a)
		{
			my $d = max_rel_diff($a->{$k}, $b->{$k});
			return undef unless defined $d;
			$m = $d if $d > $m;
		}
		return $m;
	}
	if (ref $a eq 'ARRAY' && ref $b eq 'ARRAY')
	{
		return undef unless @$a == @$b;
		my $m = 0;
		for my $i (0 .. $#$a)
		{
			my $d = max_rel_diff($a->[$i], $b->[$i]);
			return undef unless defined $d;
			$m = $d if $d > $m;
		}
		return $m;
	}
	return (defined $a || defined $b) ? undef : 0 if !defined $a || !defined $b;
	return ($a eq $b ? 0 : undef) if ref $a || ref $b;
	if ($a =~ /\A-?[\d.]+(?:e[-+]?\d+)?\z/i && $b =~ /\A-?[\d.]+(?:e[-+]?\d+)?\z/i)
	{
		return abs($a - $b) / (abs($b) > 1 ? abs($b) : 1);
	}
	return $a eq $b ? 0 : undef;
}

my $json = JSON::PP->new->allow_nonref;
for my $name (sort keys %aggs)
{
	my $agg = $aggs{$name};
	(my $fn = $agg) =~ s/\(.*//s;
	is($coord->safe_psql('postgres', qq{SELECT a.aggtranstype::regtype FROM pg_aggregate a
		WHERE a.aggfnoid = (SELECT p.oid FROM pg_proc p WHERE p.oid::regproc::text = '$fn' LIMIT 1)}),
		'churn.agg_state', "$name: state type churn.agg_state");
	my $plan = q_coord("EXPLAIN (VERBOSE, COSTS OFF) SELECT $agg FROM feat");
	note "EXPLAIN $name:\n$plan" if $name =~ /^(bgnbd_fit|auc)$/;
	like($plan, qr/coord_combine_agg/, "$name: combined on the coordinator (coord_combine_agg)");
	like($plan, qr/worker_partial_agg/, "$name: partial aggregates on the workers (worker_partial_agg)");
	my $dist = q_coord("SELECT to_jsonb($agg) FROM feat");
	my $local = q_coord("SELECT to_jsonb($agg) FROM feat_local");
	ok($local ne '' && $local ne 'null', "$name: a result on the single node");
	my $d = max_rel_diff($json->decode($dist), $json->decode($local));
	ok(defined $d && $d <= 1e-9, "$name: distributed = single node (max relative difference "
		  . (defined $d ? sprintf('%.3g', $d) : 'structure differs') . ')')
	  or diag("distributed: $dist\nlocal:       $local");
}

# --- 3. whole features and histories equal the single-node ones --------------
my $hist_q = q{SELECT customer_id, churn.history_agg(ts, amount)::text
	FROM %s GROUP BY customer_id ORDER BY customer_id};
my $hist_utc = q_coord(q{SELECT customer_id, churn.history_agg((ts AT TIME ZONE 'UTC')::date, amount)::text
	FROM purchases_local GROUP BY customer_id ORDER BY customer_id});
is(q_coord(sprintf($hist_q, 'purchases')), $hist_utc,
	'histories computed on the workers = single node, in UTC days');
is(q_coord(sprintf($hist_q, 'purchases_local')), $hist_utc,
	'histories on the coordinator alone: UTC days too');
isnt(q_coord(q{SELECT customer_id, churn.history_agg((ts AT TIME ZONE 'Asia/Kolkata')::date, amount)::text
	FROM purchases_local GROUP BY customer_id ORDER BY customer_id}), $hist_utc,
	'the data is sensitive to the zone: Kolkata days differ from UTC days');
my $feat_cmp = q{SELECT count(*) FROM (%s) d FULL JOIN (%s) l USING (customer_id)
	WHERE d.f IS DISTINCT FROM l.f};
is(q_coord(sprintf($feat_cmp, sprintf($features_q, 'purchases'), sprintf($features_q, 'purchases_local'))),
	'0', 'features of every customer: distributed = single node');
# grouped by something else than the distribution column, history_agg runs
# as partial aggregates (churn.history passed as text)
my $by_bucket = q{SELECT customer_id % 10 AS b, churn.history_agg(ts, amount)::text FROM %s GROUP BY 1 ORDER BY 1};
like(q_coord('EXPLAIN (VERBOSE, COSTS OFF) ' . sprintf($by_bucket, 'purchases')), qr/worker_partial_agg/,
	'history_agg grouped by another column: partial aggregates');
is(q_coord(sprintf($by_bucket, 'purchases')), q_coord(sprintf($by_bucket, 'purchases_local')),
	'history_agg grouped by another column: distributed = single node');

# --- 4. the day time zone is pinned on every node ----------------------------
for my $n ($coord, @workers)
{
	is($n->safe_psql('postgres', 'SHOW churn_warning.day_time_zone'), 'UTC', $n->name . ': day_time_zone UTC');
}
my ($rc, $out, $err) = $coord->psql('postgres', q{SET churn_warning.day_time_zone = 'Asia/Kolkata'});
like($err, qr/cannot be changed now/, 'a session cannot change churn_warning.day_time_zone');
($rc, $out, $err) = $coord->psql('postgres', q{ALTER SYSTEM SET churn_warning.day_time_zone = 'Nowhere/Zone'});
like($err, qr/invalid value for parameter "churn_warning.day_time_zone"/, 'an unknown zone is refused');
is($workers[0]->safe_psql('postgres', 'SHOW TimeZone'), 'America/New_York', 'the workers run in another TimeZone');

# --- 5. a pipeline reading the distributed table -----------------------------
$coord->safe_psql('postgres', q{
	SELECT churn.create_pipeline('dist', 'purchases', model => 'bgnbd', time_zone => 'Asia/Kolkata',
	                             start_at => '2100-01-01');
});
is(q_coord(q{SELECT capture FROM churn.pipeline_status WHERE pipeline = 'dist'}), 'full',
	'pipeline on a distributed table: no capture triggers, full reads');
my $drift = q{
	WITH truth AS (
	    SELECT customer_id::text AS customer_id, d.day, d.purchases, d.amount AS spend
	    FROM (SELECT customer_id, churn.history_agg((ts AT TIME ZONE 'Asia/Kolkata')::date, amount) h
	          FROM purchases_local GROUP BY 1) s, churn.history_days(s.h) d
	), stored AS (
	    SELECT c.customer_id, d.day, d.purchases, d.amount AS spend
	    FROM churn.pipeline_customer c JOIN churn.pipeline p USING (pipeline_id), churn.history_days(c.history) d
	    WHERE p.name = 'dist'
	)
	SELECT count(*) FROM truth FULL JOIN stored USING (customer_id, day)
	WHERE truth.purchases IS DISTINCT FROM stored.purchases
	   OR NOT abs(truth.spend - stored.spend) <= 1e-9 * greatest(1, abs(truth.spend))};
is(q_coord(q{SELECT status || ' ' || mode || ' ' || customers_total FROM churn.refresh('dist')}),
	'succeeded full 600', 'pipeline on the distributed table: first refresh');
is(q_coord($drift), '0', 'pipeline: stored histories = single-node histories in the pipeline\'s zone (Asia/Kolkata)');
$coord->safe_psql('postgres', q{
	INSERT INTO purchases VALUES (1, timestamptz '2024-12-30 23:30+00', 40), (9999, timestamptz '2024-12-31 00:30+00', 15);
	INSERT INTO purchases_local VALUES (1, timestamptz '2024-12-30 23:30+00', 40), (9999, timestamptz '2024-12-31 00:30+00', 15);
});
is(q_coord(q{SELECT status || ' ' || customers_total FROM churn.refresh('dist')}),
	'succeeded 601', 'pipeline: a refresh after new purchases');
is(q_coord($drift), '0', 'pipeline: stored histories still = single-node histories in its zone');
is(q_coord(q{SELECT count(*) FROM churn.current_warnings WHERE pipeline = 'dist'}), '601',
	'pipeline: every customer has a warning row');

note sprintf('Citus test took %.1f s', time - $started);
done_testing();
