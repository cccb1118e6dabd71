# Training that any role can start is held to statement_timeout and to a
# cancel at any point (0.3.0, issue 14 item 4): churn.xgb_fit and
# churn.logit_fit on a large generated input are cancelled promptly, the
# backend stays healthy and keeps no memory of the cancelled fits, and
# xgb_fit refuses an input beyond churn_warning.xgb_max_memory up front.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('training');
$node->init;
$node->append_conf('postgresql.conf', q{max_parallel_workers_per_gather = 0});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION churn_warning;
	CREATE TABLE big AS
	SELECT random() < 0.3 AS churned,
	       ARRAY(SELECT random() + g * 0 FROM generate_series(1, 8)) AS x
	FROM generate_series(1, 400000) g;
});

# the resident memory of this backend, in kB, after the statements before it
my $rss = q{SELECT (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), 'VmRSS:\s+(\d+)'))[1]};

# one session: fits cancelled one after the other; returns psql's output
# (the RSS after the second and after the last, then 'alive'), its errors
# and the seconds it took
sub session
{
	my ($fit, $timeout, $times) = @_;
	# the RSS after two fits (the library loaded, the allocator warm) and after the last
	my $sql = "SET statement_timeout = '$timeout';\n$fit;\n$fit;\n$rss;\n" . ("$fit;\n" x ($times - 2))
	  . "RESET statement_timeout;\n$rss;\nSELECT 'alive';\n";
	my $t0 = time();
	my ($ret, $out, $err) = $node->psql('postgres', $sql, on_error_stop => 0);
	return ($out, $err, time() - $t0);
}

my $xgb = q{SELECT churn.xgb_fit(churned, x, '{"num_boost_round": 500, "max_depth": 8}') FROM big};
my ($out, $err, $secs) = session($xgb, '2s', 5);
my @lines = split /\n/, $out;
is(scalar(() = $err =~ /canceling statement due to statement timeout/g), 5,
	'each xgb_fit is cancelled by statement_timeout');
ok($secs < 5 * (2 + 5), "five cancelled xgb_fit calls end promptly ($secs s: a cancel takes effect at the end of a round)");
is($lines[-1], 'alive', 'the backend stays healthy after cancelled xgb_fit calls');
ok($lines[1] - $lines[0] < 20 * 1024,
	"no memory kept by the cancelled fits (RSS $lines[0] kB after the second, $lines[1] kB after the fifth)");
is($node->safe_psql('postgres',
		q{SELECT churn.xgb_fit(churned, x, '{"num_boost_round": 3}') IS NOT NULL FROM (SELECT * FROM big LIMIT 1000) s}),
	't', 'a small xgb_fit works afterwards');

my $logit = q{SELECT churn.logit_fit(churned, x) FROM big, generate_series(1, 20)};
($out, $err, $secs) = session($logit, '1s', 5);
@lines = split /\n/, $out;
is(scalar(() = $err =~ /canceling statement due to statement timeout/g), 5,
	'each logit_fit is cancelled by statement_timeout');
ok($secs < 5 * (1 + 2), "five cancelled logit_fit calls end promptly ($secs s)");
is($lines[-1], 'alive', 'the backend stays healthy after cancelled logit_fit calls');
ok($lines[1] - $lines[0] < 20 * 1024,
	"no memory kept by the cancelled logit fits (RSS $lines[0] kB after the second, $lines[1] kB after the fifth)");

# a backtest (model logit: features of every customer at every lookback
# cut-off, a fit per cut-off) is held to statement_timeout as well
$node->safe_psql('postgres', q{
	CREATE TABLE demo AS
	SELECT customer_id::text AS customer_id, ts, amount
	FROM churn.demo_purchases(40000, 7, current_date - 900, current_date);});
my $bt = q{SELECT count(*) FROM churn.backtest('demo', current_date - 120, 90, 'logit')};
($out, $err, $secs) = session($bt, '1s', 3);
@lines = split /\n/, $out;
is(scalar(() = $err =~ /canceling statement due to statement timeout/g), 3,
	'each backtest is cancelled by statement_timeout');
ok($secs < 3 * (1 + 2), "three cancelled backtests end promptly ($secs s)");
is($lines[-1], 'alive', 'the backend stays healthy after cancelled backtests');

# logit_fit refuses rows beyond churn_warning.logit_max_memory as they come
my ($ret, $o, $e) = $node->psql('postgres', q{
	SET churn_warning.logit_max_memory = '1MB';
	SELECT churn.logit_fit(churned, x) FROM big;});
like($e, qr/logit_fit: the training rows exceed churn_warning.logit_max_memory/,
	'logit_fit refuses rows beyond churn_warning.logit_max_memory');

# an input beyond the documented bound is refused before training
($ret, $o, $e) = $node->psql('postgres', q{
	SET churn_warning.xgb_max_memory = '1MB';
	SELECT churn.xgb_fit(churned, x) FROM big;});
like($e, qr/exceed churn_warning.xgb_max_memory|more memory than churn_warning.xgb_max_memory/,
	'xgb_fit refuses an input beyond churn_warning.xgb_max_memory');

$node->stop;
done_testing();
