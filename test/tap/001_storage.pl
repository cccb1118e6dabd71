# Stored histories survive restarts, crashes and pg_dump/restore; user RFM
# schemes are dumped and the built-in one is not duplicated on restore;
# pipelines are dumped and work again after a restore.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('storage');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'churn_warning'");
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION churn_warning;
	CREATE TABLE h AS
	SELECT g % 1000 AS customer_id,
	       churn.history_agg('2024-01-01'::date + (g / 7) % 500, ((g % 97) - 5)::float8) AS hist
	FROM generate_series(1, 50000) g GROUP BY 1;
	CREATE TABLE e AS
	SELECT g % 100 AS customer_id,
	       churn.engagement_agg('2024-01-01'::timestamptz + (g % 300) * interval '1 day',
	                            (ARRAY['visit','review'])[1 + g % 2], (1 + g % 5)::float8) AS eng
	FROM generate_series(1, 5000) g GROUP BY 1;
	SELECT churn.rfm_copy_scheme('default', 'mine');
	UPDATE churn.rfm_segments SET r_min = 4 WHERE scheme = 'mine' AND segment = 'Champions';
	SELECT churn.rules_copy('default', 'my_rules');
	SELECT churn.register_model('bg', (SELECT churn.bgnbd_fit((f).x, (f).t_x, (f).t)
	                                   FROM (SELECT churn.features(hist, '2025-06-01') f FROM h) s), 90);
	SELECT churn.register_rules('rules', 'my_rules', 60);
	SELECT churn.raise_alert('c1', churn.warning_tier(0.95, 5000), 0.95);
	SELECT churn.raise_alert('c2', churn.warning_tier(0.55, 50000), 0.55);
	SELECT churn.alert_contact((SELECT alert_id FROM churn.alert WHERE customer_id = 'c1'), 'clerk', 'called');
	SELECT churn.playbook_set('Y1', 'call and coupon', 'phone', 36);
	CREATE TABLE purchases AS
	SELECT customer_id::text AS customer_id, ts + (current_date - date '2024-12-31') * interval '1 day' AS ts, amount
	FROM churn.demo_purchases(300, 3);
	SELECT churn.create_pipeline('kept', 'purchases', time_zone => 'UTC', start_at => '2100-01-01');
	SELECT churn.refresh('kept');
});
my $warnings = q{SELECT md5(string_agg(customer_id || ':' || code || ':' || p_churn::text, ',' ORDER BY customer_id))
	FROM churn.current_warnings WHERE pipeline = 'kept'};
my $warnings_before = $node->safe_psql('postgres', $warnings);
my $alerts = q{SELECT string_agg(customer_id || ':' || code || ':' || status || ':' || action, ',' ORDER BY alert_id)
	|| '|' || (SELECT count(*) FROM churn.alert_event) FROM churn.alert};
my $alerts_before = $node->safe_psql('postgres', $alerts);
my $models = q{SELECT string_agg(name || ':' || kind || ':' || coalesce(round((bgnbd).r::numeric, 9)::text, ruleset),
	                             ',' ORDER BY name) FROM churn.model};
my $models_before = $node->safe_psql('postgres', $models);
my $digest = q{SELECT md5(string_agg(customer_id || '=' || hist::text, ';' ORDER BY customer_id)) FROM h};
my $edigest = q{SELECT md5(string_agg(customer_id || '=' || eng::text, ';' ORDER BY customer_id)) FROM e};
my $before = $node->safe_psql('postgres', $digest);
my $ebefore = $node->safe_psql('postgres', $edigest);

$node->restart;
is($node->safe_psql('postgres', $digest), $before, 'histories survive a clean restart');

$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', $digest), $before, 'histories survive crash recovery');
is($node->safe_psql('postgres', $edigest), $ebefore, 'engagement survives crash recovery');

# purchases captured but not yet merged when the server crashes: the queue
# is emptied with the histories (both unlogged), and the next refresh reads
# the source whole, so none is lost
$node->safe_psql('postgres', q{INSERT INTO purchases VALUES ('1', now(), 7), ('new', now(), 9)});
is($node->safe_psql('postgres', q{SELECT count(*) > 0 FROM churn.pipeline_queue}), 't', 'purchases captured');
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', q{SELECT count(*) FROM churn.pipeline_queue}), '0', 'the queue is emptied by crash recovery');
is($node->safe_psql('postgres', q{SELECT mode || ':' || customers_total FROM churn.refresh('kept')}), 'full:301',
	'the refresh after the crash reads the source whole');
is($node->safe_psql('postgres', q{SELECT count(*) FROM churn.current_warnings WHERE pipeline = 'kept' AND customer_id = 'new'}),
	'1', 'with the purchases captured before the crash');
$node->safe_psql('postgres', q{DELETE FROM purchases WHERE customer_id = 'new' OR (customer_id = '1' AND amount = 7);
	SELECT churn.refresh('kept')});
# what the dump below must keep: the state after these refreshes
$warnings_before = $node->safe_psql('postgres', $warnings);
$alerts_before = $node->safe_psql('postgres', $alerts);

# pg_dump (custom format, binary COPY inside) and restore into a new database
my $dump = $node->basedir . '/dump.pgc';
$node->command_ok(['pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres')], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok(['pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump], 'pg_restore');
is($node->safe_psql('restored', $digest), $before, 'histories identical after dump and restore');
is($node->safe_psql('restored', $edigest), $ebefore, 'engagement identical after dump and restore');
is($node->safe_psql('restored',
	q{SELECT count(*) FILTER (WHERE scheme = 'default') || ',' || count(*) FILTER (WHERE scheme = 'mine')
	  || ',' || (SELECT r_min FROM churn.rfm_segments WHERE scheme = 'mine' AND segment = 'Champions')
	  FROM churn.rfm_segments}),
	'11,11,4', 'user RFM scheme kept by pg_dump, built-in scheme not duplicated');
is($node->safe_psql('restored', $models), $models_before, 'model registry kept by pg_dump');
is($node->safe_psql('restored', q{SELECT count(*) FROM churn.rules WHERE ruleset = 'my_rules'}), '9',
	'user ruleset kept by pg_dump');
is($node->safe_psql('restored', $alerts), $alerts_before, 'alerts and their audit trail kept by pg_dump');
is($node->safe_psql('restored', q{SELECT action || ',' || sla_hours FROM churn.playbook_effective WHERE code = 'Y1'}),
	'call and coupon,36', 'playbook override kept, built-in not duplicated');
is($node->safe_psql('restored', q{SELECT churn.raise_alert('c3', churn.warning_tier(0.99, 1), 0.99) >
	(SELECT max(alert_id) FROM churn.alert WHERE customer_id <> 'c3')}), 't', 'alert ids continue after restore');

# pipelines: settings, snapshot and runs are dumped, the capture triggers
# with the source table; the first refresh after a restore re-reads the
# source and then captures again
is($node->safe_psql('restored', q{SELECT pipeline || ':' || state || ':' || capture || ':' || next_run_at::date
	FROM churn.pipeline_status}), 'kept:active:trigger:2100-01-01', 'pipeline kept by pg_dump');
is($node->safe_psql('restored', $warnings), $warnings_before, 'warning snapshot kept by pg_dump');
is($node->safe_psql('restored', q{SELECT count(*) FROM pg_trigger WHERE tgrelid = 'purchases'::regclass}), '4',
	'capture triggers restored with the source table');
is($node->safe_psql('restored', q{SELECT mode || ':' || customers_total FROM churn.refresh('kept')}), 'full:300',
	'first refresh after a restore reads the whole source');
is($node->safe_psql('restored', $warnings), $warnings_before, 'same warnings from the restored source');
$node->safe_psql('restored', q{INSERT INTO purchases VALUES ('1', now(), 10)});
is($node->safe_psql('restored', q{SELECT mode || ':' || new_purchase_rows FROM churn.refresh('kept')}),
	'incremental:1', 'purchases are captured again after the restore');

# plain-text dump goes through the text I/O functions
my $sqldump = $node->basedir . '/dump.sql';
$node->command_ok(['pg_dump', '-f', $sqldump, '-d', $node->connstr('postgres')], 'plain pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored_text');
$node->command_ok(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('restored_text'), '-f', $sqldump],
	'plain restore');
is($node->safe_psql('restored_text', $digest), $before, 'histories identical after a text dump');

# features are computed the same in every database and after restore
is($node->safe_psql('restored',
	q{SELECT sum((churn.features(hist, '2025-06-01')).x) FROM h}),
	$node->safe_psql('postgres', q{SELECT sum((churn.features(hist, '2025-06-01')).x) FROM h}),
	'features equal after restore');

$node->stop;
done_testing();
