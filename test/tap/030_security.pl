# Attacks on the pipeline ownership model, run as ordinary roles: each one
# is refused or harmless, and the test proves it.
#   - superuser through a user-defined cast on the customer or amount column
#     of a source (at create time, and after ALTER TABLE ... TYPE);
#   - a retyped column makes capture and refresh fail, not run code;
#   - LISTEN shows no customer data and no pipeline names;
#   - a source that catches query_canceled cannot outlive its time limit,
#     and another owner's pipeline keeps its schedule meanwhile;
#   - a flood of pipelines stops at the per-role limit, absurd settings are
#     refused, failed runs are pruned;
#   - a dropped pipeline's alerts are closed and a new pipeline with its name
#     starts clean;
#   - raise_alert and alert_move on another owner's pipeline are refused;
#   - a hostile search_path does not reach the visibility check.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('sec');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'churn_warning'
churn_warning.naptime = 1
churn_warning.enabled = off
max_worker_processes = 16
timezone = 'UTC'
});
$node->start;

my $db = 'shop';
$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, q{
	CREATE EXTENSION churn_warning;
	SELECT churn.demo_load('demo', 400, seed => 11, start_date => current_date - 700, end_date => current_date);
	CREATE ROLE alice LOGIN;
	CREATE ROLE bob LOGIN;
	CREATE ROLE nobody LOGIN;
	CREATE SCHEMA alice AUTHORIZATION alice;
	CREATE SCHEMA bob AUTHORIZATION bob;
	GRANT USAGE ON SCHEMA demo TO alice, bob;
	GRANT SELECT ON ALL TABLES IN SCHEMA demo TO alice, bob;
});

# Run SQL as a role (SET ROLE inside a superuser session); returns stdout.
sub as_role
{
	my ($role, $sql, %opts) = @_;
	return $node->safe_psql($db, "SET ROLE $role;\n$sql", %opts);
}

# Run SQL as a role that is expected to fail; returns (ret, stderr).
sub as_role_fails
{
	my ($role, $sql) = @_;
	my ($ret, $out, $err) = $node->psql($db, "SET ROLE $role;\n$sql");
	return ($ret, $err);
}

sub is_superuser
{
	my ($role) = @_;
	return $node->safe_psql($db, "SELECT rolsuper FROM pg_roles WHERE rolname = '$role'") eq 't';
}

# ---------------------------------------------------------------------
# 1. The cast escalation through the customer column.
my ($ret, $err) = as_role_fails('bob', q{
	CREATE TYPE bob.cust AS ENUM ('c1', 'c2');
	CREATE FUNCTION bob.cust_to_text(bob.cust) RETURNS text LANGUAGE plpgsql AS $$
	BEGIN
		IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
			EXECUTE 'ALTER ROLE bob SUPERUSER';
		END IF;
		RETURN $1::name::text;
	END $$;
	CREATE CAST (bob.cust AS text) WITH FUNCTION bob.cust_to_text(bob.cust);
	CREATE TABLE bob.buys (customer_id bob.cust, ts timestamptz, amount numeric);
	SELECT churn.create_pipeline('bob_p', 'bob.buys');
});
isnt($ret, 0, 'a pipeline on a customer column of a user-defined type is refused');
like($err, qr/customer column "customer_id" of bob\.buys has type bob\.cust/, 'with an error naming the column and type');

# the same column type reached by ALTER TABLE after the pipeline exists
as_role('bob', q{
	CREATE TABLE bob.buys2 (customer_id text, ts timestamptz, amount numeric);
	SELECT churn.create_pipeline('bob_p2', 'bob.buys2', start_at => '2100-01-01');
	INSERT INTO bob.buys2 VALUES ('c1', now(), 20);
	-- bob.cust and its cast stay from the refused attempt above
	ALTER TABLE bob.buys2 ALTER customer_id TYPE bob.cust USING customer_id::bob.cust;
});
($ret, $err) = as_role_fails('bob', q{INSERT INTO bob.buys2 VALUES ('c2', now(), 20)});
isnt($ret, 0, 'capture after the customer column was retyped fails');
like($err, qr/customer column "customer_id" of bob\.buys2 has type bob\.cust/, 'with a clear error');
($ret, $err) = as_role_fails('bob', q{SELECT churn.refresh('bob_p2')});
isnt($ret, 0, 'the refresh after the retype fails');
like($err, qr/has type bob\.cust/, 'with the same clear error');
ok(!is_superuser('bob'), 'bob is not superuser after the customer-column attacks');

# 2. The amount column: an int at create time, then a type with a cast to float8
as_role('bob', q{
	CREATE TABLE bob.buys3 (customer_id text, ts timestamptz, amount int);
	SELECT churn.create_pipeline('bob_p3', 'bob.buys3', start_at => '2100-01-01');
	CREATE TYPE bob.money AS (v int);
	CREATE FUNCTION bob.money_to_float8(bob.money) RETURNS float8 LANGUAGE plpgsql AS $$
	BEGIN
		IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
			EXECUTE 'ALTER ROLE bob SUPERUSER';
		END IF;
		RETURN ($1).v;
	END $$;
	CREATE CAST (bob.money AS float8) WITH FUNCTION bob.money_to_float8(bob.money);
	ALTER TABLE bob.buys3 ALTER amount TYPE bob.money USING ROW(amount)::bob.money;
});
($ret, $err) = as_role_fails('bob', q{INSERT INTO bob.buys3 VALUES ('c1', now(), ROW(5))});
isnt($ret, 0, 'capture after the amount column was retyped fails');
like($err, qr/amount column "amount" of bob\.buys3 has type bob\.money/, 'with a clear error');
($ret, $err) = as_role_fails('bob', q{SELECT churn.refresh('bob_p3')});
like($err, qr/has type bob\.money/, 'the refresh fails with the same error');
ok(!is_superuser('bob'), 'bob is not superuser after the amount-column attack');

# the trigger function cannot be attached by hand to inject purchases
($ret, $err) = as_role_fails('bob', q{
	CREATE TABLE bob.inject (customer_id text, ts timestamptz, amount numeric);
	CREATE TRIGGER inject AFTER INSERT ON bob.inject REFERENCING NEW TABLE AS churn_new
	FOR EACH STATEMENT EXECUTE FUNCTION churn.pipeline_capture('1');
});
like($err, qr/permission denied for function/, 'no role may attach the capture trigger itself');

# ---------------------------------------------------------------------
# A well-behaved pipeline of alice's, with alerts.
as_role('alice', q{
	CREATE TABLE alice.buys AS SELECT customer_id::text AS customer_id, ts, amount FROM demo.purchases;
	SELECT churn.create_pipeline('alice_p', 'alice.buys', start_at => '2100-01-01', alert_zones => '{red,yellow,blue}');
	SELECT churn.refresh('alice_p');
});
my $alerts = $node->safe_psql($db, q{SELECT count(*) FROM churn.alert a JOIN churn.pipeline p USING (pipeline_id) WHERE p.name = 'alice_p'});
cmp_ok($alerts, '>', 0, "alice's pipeline raised $alerts alerts");

# 3. LISTEN: a role with nothing granted hears only event names.
my $heard = $node->safe_psql($db, q{
	SET ROLE nobody;
	LISTEN churn_alert; LISTEN churn_refresh; LISTEN churn_pipeline;
	RESET ROLE;
	SET ROLE alice;
	INSERT INTO alice.buys SELECT customer_id, now(), 1 FROM alice.buys GROUP BY customer_id LIMIT 20;
	SELECT 1 FROM churn.refresh('alice_p');
	RESET ROLE;
	SELECT churn.raise_alert('listen_c1', 'R1', 0.9, pipeline => 'alice_p');
	SELECT 1;
});
my @notes = $heard =~ /Asynchronous notification "(\w+)" with payload "([^"]*(?:"[^"]*)*?)" received/g;
my %payloads;
while ($heard =~ /Asynchronous notification "(\w+)" with payload "(.*?)" received/g) { $payloads{"$1 $2"}++; }
ok(scalar(keys %payloads) >= 2, 'the listener heard the refresh and the alerts: ' . join('; ', sort keys %payloads));
my $customers = $node->safe_psql($db, q{SELECT string_agg(DISTINCT customer_id, ' ') FROM churn.alert});
my $leak = 0;
for my $p (keys %payloads)
{
	$leak++ if $p =~ /alice_p|customer|listen_c1|alert_id/;
	for my $c (split / /, $customers) { $leak++ if $p =~ /"\Q$c\E"/; }
}
is($leak, 0, 'no payload carries a customer, an alert id or a pipeline name');

# ---------------------------------------------------------------------
# 4. A source that catches query_canceled and sleeps on, under a 2-second
# time limit, while bob's 1-second pipeline must keep its schedule.
$node->safe_psql($db, q{
	CREATE FUNCTION alice.stubborn() RETURNS TABLE (customer_id text, ts timestamptz, amount numeric)
	LANGUAGE plpgsql AS $$
	BEGIN
		FOR i IN 1 .. 40 LOOP
			BEGIN
				PERFORM pg_sleep(1);
			EXCEPTION WHEN query_canceled THEN
				NULL;
			END;
		END LOOP;
		RETURN QUERY SELECT 'x'::text, now(), 1::numeric;
	END $$;
	ALTER FUNCTION alice.stubborn() OWNER TO alice;
});
as_role('alice', q{
	CREATE VIEW alice.slow AS SELECT * FROM alice.stubborn();
	SELECT churn.create_pipeline('alice_slow', 'alice.slow', schedule => '1 hour', time_limit => '2 seconds');
});
as_role('bob', q{
	CREATE TABLE bob.small AS SELECT customer_id::text AS customer_id, ts, amount FROM demo.purchases WHERE customer_id::int % 4 = 0;
	SELECT churn.create_pipeline('bob_fast', 'bob.small', schedule => '1 second');
});
$node->safe_psql('postgres', q{ALTER SYSTEM SET churn_warning.enabled = on; SELECT pg_reload_conf();});
my $t0 = time;
my $slow = '';
while (time - $t0 < 45)
{
	$slow = $node->safe_psql($db, q{SELECT status FROM churn.pipeline_run r JOIN churn.pipeline p USING (pipeline_id)
	                               WHERE p.name = 'alice_slow' ORDER BY run_id DESC LIMIT 1});
	last if $slow eq 'timed_out';
	usleep(250_000);
}
my $took = time - $t0;
is($slow, 'timed_out', "the stubborn refresh was ended and recorded as timed_out (after ${took} s)");
cmp_ok($took, '<', 20, 'well before its 40-second loop ended');
is($node->safe_psql($db, q{SELECT consecutive_failures FROM churn.pipeline WHERE name = 'alice_slow'}),
	'1', 'it counts as a failure');
# bob's runs after alice's timeout: wait (up to 30 s) for three of them
for (my $i = 0; $i < 120; $i++)
{
	last if $node->safe_psql($db, q{SELECT count(*) FROM churn.pipeline_run r JOIN churn.pipeline p USING (pipeline_id)
	                                WHERE p.name = 'bob_fast' AND r.status = 'succeeded'}) >= 3;
	usleep(250_000);
}
my $gap = $node->safe_psql($db, q{
	SELECT coalesce(extract(epoch FROM max(gap)), 999)::int FROM (
		SELECT started_at - lag(finished_at) OVER (ORDER BY run_id) AS gap
		FROM churn.pipeline_run r JOIN churn.pipeline p USING (pipeline_id)
		WHERE p.name = 'bob_fast' AND r.status = 'succeeded') g});
cmp_ok($gap, '<=', 8, "bob's 1-second pipeline kept running meanwhile (longest gap ${gap} s)");
$node->safe_psql('postgres', q{ALTER SYSTEM SET churn_warning.enabled = off; SELECT pg_reload_conf();});
as_role('alice', q{SELECT churn.drop_pipeline('alice_slow')});
as_role('bob', q{SELECT churn.drop_pipeline('bob_fast')});

# ---------------------------------------------------------------------
# 5. Limits: a flood of pipelines, absurd settings, pruned failed runs.
my $made = $node->safe_psql($db, q{
	SET ROLE bob;
	DO $$
	DECLARE
		n int := 0;
	BEGIN
		FOR i IN 1 .. 100 LOOP
			BEGIN
				PERFORM churn.create_pipeline('flood_' || i, 'pg_catalog.pg_stat_activity', customer_col => 'usename',
				                              ts_col => 'backend_start', amount_col => 'pid', schedule => '1 second',
				                              start_at => '2100-01-01');
				n := n + 1;
			EXCEPTION WHEN configuration_limit_exceeded THEN
				NULL;
			END;
		END LOOP;
		RAISE NOTICE 'made %', n;
	END $$;
	SELECT count(*) FROM churn.pipeline_status WHERE owner = 'bob';
});
is($made, '20', 'the flood stops at the default limit of 20 pipelines per role');
($ret, $err) = as_role_fails('alice', q{SELECT churn.create_pipeline('x', 'alice.buys', time_limit => '100 years')});
like($err, qr/time_limit must be at most 21600 s/, 'a 100-year time limit is refused');
($ret, $err) = as_role_fails('alice', q{SELECT churn.create_pipeline('x', 'alice.buys', max_failures => 1000)});
like($err, qr/max_failures must be between 1 and 100/, 'a thousand failures in a row are refused');
$node->safe_psql($db, q{ALTER DATABASE shop SET churn_warning.min_schedule = 60});
($ret, $err) = as_role_fails('alice', q{SELECT churn.create_pipeline('x', 'alice.buys', schedule => '10 seconds')});
like($err, qr/schedule must be at least 60 s/, 'a per-database shortest schedule set by a superuser holds');
$node->safe_psql($db, q{ALTER DATABASE shop RESET churn_warning.min_schedule});
($ret, $err) = as_role_fails('bob', q{SET churn_warning.max_pipelines_per_role = 1000});
like($err, qr/permission denied to set parameter/, 'an ordinary role cannot raise its own limit');

# failed runs are pruned: old failed runs beyond the last 10 go
$node->safe_psql($db, q{
	INSERT INTO churn.pipeline_run (pipeline_id, pipeline, trigger, status, started_at, finished_at)
	SELECT p.pipeline_id, p.name, 'schedule', 'failed', now() - interval '200 days', now() - interval '200 days'
	FROM churn.pipeline p, generate_series(1, 30) WHERE p.name = 'flood_1';
	INSERT INTO churn.pipeline_run (pipeline_id, pipeline, trigger, status, started_at, pid)
	SELECT p.pipeline_id, p.name, 'schedule', 'running', now(), pg_backend_pid() FROM churn.pipeline p WHERE p.name = 'flood_1';
	SELECT churn.pipeline_run_failed(max(run_id), 'XX000', 'test failure', NULL) FROM churn.pipeline_run r
	JOIN churn.pipeline p USING (pipeline_id) WHERE p.name = 'flood_1';
});
is($node->safe_psql($db, q{SELECT count(*) FROM churn.pipeline_run r JOIN churn.pipeline p USING (pipeline_id)
                           WHERE p.name = 'flood_1' AND r.status = 'failed'}),
	'10', 'a failed run prunes the failed runs past retention (the last 10 stay)');
$node->safe_psql($db, q{SELECT churn.drop_pipeline(name) FROM churn.pipeline WHERE name LIKE 'flood\_%'});

# ---------------------------------------------------------------------
# 6. A dropped pipeline's alerts are closed; a new one with its name starts clean.
as_role('alice', q{
	CREATE TABLE alice.buys2 AS SELECT * FROM alice.buys;
	SELECT churn.create_pipeline('alice_p2', 'alice.buys2', start_at => '2100-01-01', alert_zones => '{red,yellow,blue}');
	SELECT churn.refresh('alice_p2');
});
my $before = $node->safe_psql($db, q{SELECT count(*) FROM churn.alert a JOIN churn.pipeline p USING (pipeline_id)
                                     WHERE p.name = 'alice_p2' AND a.status IN ('open', 'contacted')});
cmp_ok($before, '>', 0, "alice_p2 has $before open alerts");
my $old_id = $node->safe_psql($db, q{SELECT pipeline_id FROM churn.pipeline WHERE name = 'alice_p2'});
as_role('alice', q{SELECT churn.drop_pipeline('alice_p2')});
is($node->safe_psql($db, qq{SELECT count(*) FILTER (WHERE status IN ('open', 'contacted')) || ' '
                            || count(*) FILTER (WHERE status = 'dismissed') FROM churn.alert WHERE pipeline_id = $old_id}),
	"0 $before", 'dropping the pipeline dismissed its open alerts');
is($node->safe_psql($db, qq{SELECT count(*) FROM churn.alert_event e JOIN churn.alert a USING (alert_id)
                            WHERE a.pipeline_id = $old_id AND e.actor = 'churn.drop_pipeline'}),
	$before, 'each with an audit event');
my $snapshot = $node->safe_psql($db, qq{SELECT md5(string_agg(a::text, '' ORDER BY alert_id)) FROM churn.alert a WHERE pipeline_id = $old_id});
as_role('bob', q{
	CREATE TABLE bob.copy AS SELECT customer_id::text AS customer_id, ts, amount FROM demo.purchases;
	SELECT churn.create_pipeline('alice_p2', 'bob.copy', start_at => '2100-01-01', alert_zones => '{red,yellow,blue}');
	SELECT churn.refresh('alice_p2');
});
is($node->safe_psql($db, qq{SELECT md5(string_agg(a::text, '' ORDER BY alert_id)) FROM churn.alert a WHERE pipeline_id = $old_id}),
	$snapshot, "bob's new alice_p2 did not touch alice's old alerts");
cmp_ok($node->safe_psql($db, q{SELECT count(*) FROM churn.alert a JOIN churn.pipeline p USING (pipeline_id) WHERE p.name = 'alice_p2'}),
	'>', 0, "bob's alice_p2 raised its own alerts");

# ---------------------------------------------------------------------
# 7. Raising or moving another owner's alerts by hand.
$node->safe_psql($db, q{
	GRANT EXECUTE ON FUNCTION churn.raise_alert(text, text, float8, float8, text[], text, timestamptz),
		churn.alert_move(bigint, text, text, text, timestamptz),
		churn.alert_assign(bigint, text, text, text, timestamptz) TO bob, alice;
});
my $alice_alert = $node->safe_psql($db, q{SELECT min(alert_id) FROM churn.alert a JOIN churn.pipeline p USING (pipeline_id)
                                         WHERE p.name = 'alice_p' AND a.status = 'open'});
my $alice_state = $node->safe_psql($db, "SELECT a::text FROM churn.alert a WHERE alert_id = $alice_alert");
($ret, $err) = as_role_fails('bob', q{SELECT churn.raise_alert('forged', 'R1', 0.99, pipeline => 'alice_p')});
like($err, qr/must be owner of pipeline "alice_p"/, "bob cannot raise an alert under alice's pipeline");
($ret, $err) = as_role_fails('bob', "SELECT churn.alert_move($alice_alert, 'dismissed', 'bob')");
like($err, qr/must be owner of the pipeline of alert/, "bob cannot move alice's alert");
($ret, $err) = as_role_fails('bob', "SELECT churn.alert_assign($alice_alert, 'bob', 'bob')");
like($err, qr/must be owner of the pipeline of alert/, "nor assign it");
# nor through a SECURITY DEFINER function of his that alice is tricked into calling
as_role('bob', qq{
	CREATE FUNCTION bob.helpful() RETURNS void LANGUAGE sql SECURITY DEFINER AS
	\$\$ SELECT churn.alert_move($alice_alert, 'dismissed', 'bob') \$\$;
	GRANT USAGE ON SCHEMA bob TO alice;
	GRANT EXECUTE ON FUNCTION bob.helpful() TO alice;
});
($ret, $err) = as_role_fails('alice', q{SELECT bob.helpful()});
like($err, qr/must be owner of the pipeline of alert/, "a function of bob's acts with bob's rights even when alice calls it");
is($node->safe_psql($db, "SELECT a::text FROM churn.alert a WHERE alert_id = $alice_alert"), $alice_state,
	"alice's alert is unchanged");
is($node->safe_psql($db, q{SELECT count(*) FROM churn.alert WHERE customer_id = 'forged'}), '0', 'no forged alert exists');
as_role('alice', "SELECT churn.alert_move($alice_alert, 'contacted', 'alice')");
is($node->safe_psql($db, "SELECT status FROM churn.alert WHERE alert_id = $alice_alert"), 'contacted',
	'alice moves her own alert');
like(as_role('bob', q{SELECT churn.raise_alert('free', 'Y1', 0.6, pipeline => 'a free label')}),
	qr/^\d+$/, 'a free label that is no pipeline still works for hand-raised alerts');

# ---------------------------------------------------------------------
# 8. A hostile search_path does not reach the visibility check of the views.
my $seen = $node->safe_psql($db, q{
	SET ROLE bob;
	CREATE TABLE bob.calls (n int);
	CREATE FUNCTION bob.oideq(oid, oid) RETURNS boolean LANGUAGE plpgsql AS
	$$ BEGIN INSERT INTO bob.calls VALUES (1); RETURN true; END $$;
	CREATE OPERATOR bob.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = bob.oideq);
	SET search_path = bob, pg_catalog;
	SELECT count(*) FROM churn.pipeline_status;
	SELECT count(*) FROM churn.current_warnings;
	SELECT count(*) FROM bob.calls;
});
my @lines = split /\n/, $seen;
is($lines[-1], '0', "bob's = operator was never called by the views");
cmp_ok($lines[-2], '>', 0, 'bob sees his own warnings');

$node->stop;
done_testing();
