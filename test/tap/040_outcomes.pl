# Alert outcomes under concurrency (0.3.0, churn.pipeline_close_outcomes): a
# refresh closes open and contacted alerts from the purchase data (retained
# after a purchase within outcome_days, churned once they passed) while
# staff close alerts by hand (churn.alert_close) and customers buy.  Checks
# that an alert never gets two outcomes and that the audit trail never loses
# or doubles a closing event:
#
#   1. forced interleavings for one alert at a time (background psql
#      sessions, each step waited for in pg_locks / pg_blocking_pids):
#      the manual close committed before the refresh; the manual close
#      holding the alert's lock while the refresh waits (then committing or
#      rolling back); the refresh holding the lock while the manual close
#      waits (then committing or rolling back); each with the purchase
#      committed before the refresh, still open during it, or committing
#      while the refresh waits; churned as well as retained; a contacted
#      alert closed as retained by both sides.  The manual close wins when
#      it committed first; when the refresh wins, the manual close fails
#      with 55000 (the alert is closed, closed alerts are final) and
#      changes nothing.  And one staff transaction closing two alerts in
#      the other order than the refresh locks them, with either side
#      waiting last: neither may fail with a deadlock.
#   2. a few hundred alerts closed by repeated refreshes while several
#      staff sessions close, contact and bulk-close random alerts (bulk
#      closes in alert id order, which is the refresh's lock order here),
#      some in transactions that sleep or roll back, and a writer adds
#      purchases:
#      afterwards every alert's status agrees with its closing events, none
#      has two, the counts add up (staff closes committed + closes by the
#      refreshes = closed alerts), every staff error is "the alert is
#      closed", and no deadlock or unexpected error was logged.
#
# The setup is that of test/sql/retention.sql: a logit model 'ret_all' puts
# every customer in red, a pipeline with outcome_days 30 starting in 2100
# (the worker never runs it), purchases dated current_date + 1 make
# 'retained', alerts shifted back 200 days make 'churned'.
#
# CW_OUTCOME_SECONDS (default 20) sets roughly how long part 2 runs.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time sleep);

my $seconds = $ENV{CW_OUTCOME_SECONDS} // 20;
my $seed = $ENV{CW_OUTCOME_SEED} // int(rand(1_000_000));
srand($seed);
note "random seed $seed (CW_OUTCOME_SEED to repeat the part 2 scripts)";

my $node = PostgreSQL::Test::Cluster->new('outcomes');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'churn_warning'
churn_warning.naptime = 1
max_connections = 40
timezone = 'UTC'
deadlock_timeout = 100ms
log_lock_waits = on
log_line_prefix = '%m [%p] %q%a '
});
$node->start;
note 'server binaries from ' . `pg_config --bindir`;

$node->safe_psql('postgres', q{
	CREATE EXTENSION churn_warning;
	-- a model that puts every customer in red, so every one gets an alert
	SELECT churn.register_model('ret_all', ROW(ARRAY[10, 0]::float8[], NULL, NULL, NULL, NULL, NULL)::churn.logit,
	                            ARRAY['x'], 90);
	-- part 1: one customer per scenario, who bought every 10 days until 20 days ago
	CREATE TABLE src1 (customer_id text, ts timestamptz, amount numeric);
	INSERT INTO src1
	SELECT format('s%s', lpad(c::text, 2, '0')), (current_date - 20 - 10 * k)::timestamptz + interval '12 hours', 20 + c % 7
	FROM generate_series(1, 24) c, generate_series(0, 9) k;
	SELECT churn.create_pipeline('p1', 'src1', model => 'ret_all', outcome_days => 30, start_at => '2100-01-01');
	-- part 2: 400 customers
	CREATE TABLE src2 (customer_id text, ts timestamptz, amount numeric);
	INSERT INTO src2
	SELECT format('m%s', lpad(c::text, 3, '0')), (current_date - 20 - 10 * k)::timestamptz + interval '12 hours', 20 + c % 7
	FROM generate_series(1, 400) c, generate_series(0, 9) k;
	SELECT churn.create_pipeline('p2', 'src2', model => 'ret_all', outcome_days => 30, start_at => '2100-01-01');
});
is($node->safe_psql('postgres', q{SELECT status || ' ' || alerts_raised FROM churn.refresh('p1')}),
	'succeeded 24', 'p1: the first refresh opens an alert per customer');

# --- background sessions ------------------------------------------------------

my $tags = 0;

# A psql session of its own, errors with their SQLSTATE, not stopping on them.
sub session
{
	my ($name) = @_;
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	$s->set_query_timer_restart;
	my $x = { s => $s, name => $name };
	run_sql($x, "\\set VERBOSITY verbose\nSET application_name = '$name'");
	($x->{pid}) = run_sql($x, 'SELECT pg_backend_pid()');
	return $x;
}

# Send SQL without waiting for it to finish.
sub send_sql
{
	my ($x, $sql) = @_;
	die "$x->{name} is busy" if $x->{tag};
	my $tag = 'cw_done_' . ++$tags;
	$x->{tag} = $tag;
	$x->{s}{timeout}->start;
	$x->{s}{stdin} .= "$sql\n;\n\\echo '$tag'\n\\warn '$tag'\n";
	$x->{s}{run}->pump_nb;
	return;
}

# Wait for what send_sql sent; returns (stdout, stderr).
sub wait_sql
{
	my ($x) = @_;
	my $s = $x->{s};
	my $tag = delete $x->{tag} or die "$x->{name} is not running anything";
	$s->{run}->pump
	  until ($s->{stdout} =~ /$tag\r?\n/ && $s->{stderr} =~ /$tag\r?\n/) || $s->{timeout}->is_expired;
	die "$x->{name}: timed out waiting for $tag" if $s->{timeout}->is_expired;
	my ($out, $err) = ($s->{stdout}, $s->{stderr});
	$s->{stdout} = $s->{stderr} = '';
	s/\r?\n?$tag\r?\n// for ($out, $err);
	return ($out, $err);
}

sub run_sql { my ($x, $sql) = @_; send_sql($x, $sql); return wait_sql($x); }

# Run SQL that must not fail; returns its output.
sub ok_sql
{
	my ($x, $sql) = @_;
	my ($out, $err) = run_sql($x, $sql);
	die "$x->{name}: $sql\n$err" if $err ne '';
	return $out;
}

# Wait until session $w (running what send_sql sent) waits on a lock held
# by session $h: 1; or until its statement finished without waiting: 0.
sub blocked_on
{
	my ($w, $h) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		$w->{s}{run}->pump_nb;
		return 0 if $w->{s}{stdout} =~ /$w->{tag}\r?\n/;
		return 1
		  if $node->safe_psql('postgres', "SELECT $h->{pid} = ANY (pg_blocking_pids($w->{pid}))") eq 't';
		sleep(0.05);
	}
	die "$w->{name} neither waits for $h->{name} nor finishes";
}

sub wait_blocked
{
	my ($w, $h, $what) = @_;
	return ok(blocked_on($w, $h), "$what: $w->{name} waits for $h->{name}");
}

my $staff = session('staff');
my $refresher = session('refresher');
my $buyer = session('buyer');

# --- part 1: forced interleavings, one alert each -----------------------------

my $closed_list = q{'retained', 'churned', 'dismissed'};

sub alert_of
{
	my ($cust) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT alert_id FROM churn.alert WHERE pipeline = 'p1' AND customer_id = '$cust' AND status IN ('open', 'contacted')});
}

# "status|to_status:actor,..." of the alert's closing events
sub outcome
{
	my ($id) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT a.status || '|' || coalesce(string_agg(e.to_status || ':' || e.actor, ',' ORDER BY e.event_id)
		                                     FILTER (WHERE e.to_status IN ($closed_list)), '')
		FROM churn.alert a LEFT JOIN churn.alert_event e USING (alert_id)
		WHERE a.alert_id = $id GROUP BY a.status});
}

# the alert's whole trail: "event:to_status:actor,..."
sub trail
{
	my ($id) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(event || ':' || to_status || ':' || actor, ',' ORDER BY event_id)
		FROM churn.alert_event WHERE alert_id = $id});
}

sub buy
{
	my ($x, $cust) = @_;
	return ok_sql($x, "INSERT INTO src1 VALUES ('$cust', current_date + 1 + interval '10 hours', 30)");
}

sub shift_back
{
	my ($id) = @_;
	$node->safe_psql('postgres',
		"UPDATE churn.alert SET opened_at = opened_at - interval '200 days' WHERE alert_id = $id");
	return;
}

my $refresh_sql = q{SELECT status || ' ' || alerts_closed FROM churn.refresh('p1')};
my $final_error = qr/ERROR:  55000: alert \d+ cannot move from (retained|churned) to \w+\nDETAIL:  \1 is a closed status; closed alerts are final\./;

# The manual close commits first: the refresh leaves the alert alone.
for my $case (['s01', 'retained', 'dismissed'], ['s02', 'churned', 'churned'])
{
	my ($cust, $data, $manual) = @$case;
	my $id = alert_of($cust);
	my $what = "manual first ($data by the data, $manual by hand)";
	if ($data eq 'retained') { buy($buyer, $cust); } else { shift_back($id); }
	is(ok_sql($staff, "SELECT status FROM churn.alert_close($id, '$manual', 'anna', 'first')"), $manual, "$what: closed by hand");
	is(ok_sql($refresher, $refresh_sql), 'succeeded 0', "$what: the refresh closes nothing");
	is(outcome($id), "$manual|$manual:anna", "$what: one outcome, the manual one");
}

# The manual close holds the alert's lock while a refresh runs: the refresh
# does not wait for staff (it skips the alert); committed, the manual close
# wins; rolled back, the next refresh closes the alert.
for my $case (['s03', 'retained', 'dismissed', 'COMMIT'], ['s04', 'churned', 'churned', 'COMMIT'],
	['s05', 'retained', 'dismissed', 'ROLLBACK'], ['s06', 'churned', 'dismissed', 'ROLLBACK'])
{
	my ($cust, $data, $manual, $end) = @$case;
	my $id = alert_of($cust);
	my $what = "manual holds the lock, $end ($data by the data, $manual by hand)";
	if ($data eq 'retained') { buy($buyer, $cust); } else { shift_back($id); }
	ok_sql($staff, 'BEGIN');
	is(ok_sql($staff, "SELECT status FROM churn.alert_close($id, '$manual', 'anna', 'while refreshing')"), $manual,
		"$what: closed by hand, not committed");
	my ($out, $err) = run_sql($refresher, $refresh_sql);
	is("$out$err", 'succeeded 0', "$what: the refresh does not wait for staff and skips the alert");
	ok_sql($staff, $end);
	if ($end eq 'COMMIT')
	{
		is(ok_sql($refresher, $refresh_sql), 'succeeded 0', "$what: the next refresh closes nothing");
		is(outcome($id), "$manual|$manual:anna", "$what: one outcome, the manual one");
	}
	else
	{
		is(ok_sql($refresher, $refresh_sql), 'succeeded 1', "$what: the next refresh closes the alert");
		is(outcome($id), "$data|$data:churn.outcome", "$what: one outcome, the refresh's");
	}
}

# The refresh holds the alert's lock while the manual close waits for it:
# committed, the manual close fails cleanly; rolled back, it succeeds.
for my $case (['s07', 'retained', 'dismissed', 'COMMIT'], ['s08', 'churned', 'churned', 'COMMIT'],
	['s09', 'churned', 'dismissed', 'COMMIT'], ['s10', 'retained', 'churned', 'ROLLBACK'])
{
	my ($cust, $data, $manual, $end) = @$case;
	my $id = alert_of($cust);
	my $what = "refresh holds the lock, $end ($data by the data, $manual by hand)";
	if ($data eq 'retained') { buy($buyer, $cust); } else { shift_back($id); }
	ok_sql($refresher, 'BEGIN');
	is(ok_sql($refresher, $refresh_sql), 'succeeded 1', "$what: the refresh closes the alert, not committed");
	send_sql($staff, "SELECT status FROM churn.alert_close($id, '$manual', 'anna', 'too late?')");
	wait_blocked($staff, $refresher, $what);
	ok_sql($refresher, $end);
	my ($out, $err) = wait_sql($staff);
	if ($end eq 'COMMIT')
	{
		is($out, '', "$what: the manual close returns nothing");
		like($err, $final_error, "$what: the manual close fails with 55000, the alert is closed");
		is(outcome($id), "$data|$data:churn.outcome", "$what: one outcome, the refresh's");
		is(trail($id), "opened:open:p1,moved:$data:churn.outcome", "$what: the failed manual close wrote no event");
	}
	else
	{
		is("$out$err", $manual, "$what: the manual close succeeds after the rollback");
		is(outcome($id), "$manual|$manual:anna", "$what: one outcome, the manual one");
	}
}

# The purchase is not committed while the refresh runs: the refresh has
# nothing to close (it still locks the pipeline's active alerts, so the
# manual close may wait for it), the manual close goes through, and the
# refresh after the purchase's commit leaves it alone.
{
	my $cust = 's11';
	my $id = alert_of($cust);
	my $what = 'purchase open during the refresh';
	ok_sql($buyer, 'BEGIN');
	buy($buyer, $cust);
	ok_sql($refresher, 'BEGIN');
	is(ok_sql($refresher, $refresh_sql), 'succeeded 0', "$what: the refresh does not see the purchase");
	send_sql($staff, "SELECT status FROM churn.alert_close($id, 'dismissed', 'anna', 'no answer')");
	note 'the manual close '
	  . (blocked_on($staff, $refresher)
		? 'waits for the refresh (it locks every active alert of the pipeline)' : 'does not wait');
	ok_sql($refresher, 'COMMIT');
	my ($out, $err) = wait_sql($staff);
	is("$out$err", 'dismissed', "$what: the manual close succeeds");
	ok_sql($buyer, 'COMMIT');
	is(ok_sql($refresher, $refresh_sql), 'succeeded 0', "$what: the refresh after the purchase's commit closes nothing");
	is(outcome($id), 'dismissed|dismissed:anna', "$what: one outcome, the manual one");
}

# The purchase commits while staff hold the alert and a refresh runs: the
# refresh skips the alert; the manual close wins when committed, and when
# rolled back the next refresh closes the alert as retained, once.
for my $case (['s12', 'COMMIT'], ['s13', 'ROLLBACK'])
{
	my ($cust, $end) = @$case;
	my $id = alert_of($cust);
	my $what = "purchase commits while staff hold the alert, manual $end";
	ok_sql($buyer, 'BEGIN');
	buy($buyer, $cust);
	ok_sql($staff, 'BEGIN');
	ok_sql($staff, "SELECT status FROM churn.alert_close($id, 'dismissed', 'anna', 'moved away')");
	my ($out, $err) = run_sql($refresher, $refresh_sql);
	is("$out$err", 'succeeded 0', "$what: the refresh closes nothing");
	ok_sql($buyer, 'COMMIT');
	ok_sql($staff, $end);
	my $second = ok_sql($refresher, $refresh_sql);
	if ($end eq 'COMMIT')
	{
		is($second, 'succeeded 0', "$what: the next refresh closes nothing");
		is(outcome($id), 'dismissed|dismissed:anna', "$what: one outcome, the manual one");
	}
	else
	{
		is($second, 'succeeded 1', "$what: the next refresh closes it");
		is(outcome($id), 'retained|retained:churn.outcome', "$what: one outcome, the refresh's");
	}
}

# A contacted alert, retained by both sides: the manual close holds the
# lock, the refresh waits and must not write a second 'retained'; and the
# other way round, the manual 'retained' after the refresh's fails.
{
	my $id = alert_of('s14');
	my $what = 'contacted, retained by hand while a refresh runs';
	ok_sql($staff, "SELECT status FROM churn.alert_contact($id, 'anna', 'called')");
	buy($buyer, 's14');
	ok_sql($staff, 'BEGIN');
	ok_sql($staff, "SELECT status FROM churn.alert_close($id, 'retained', 'anna', 'bought again')");
	my ($out, $err) = run_sql($refresher, $refresh_sql);
	is("$out$err", 'succeeded 0', "$what: the refresh skips the alert staff hold");
	ok_sql($staff, 'COMMIT');
	is(outcome($id), 'retained|retained:anna', "$what: one outcome, the manual one");

	$id = alert_of('s15');
	$what = 'contacted, retained by the refresh while the manual close waits';
	ok_sql($staff, "SELECT status FROM churn.alert_contact($id, 'anna', 'called')");
	buy($buyer, 's15');
	ok_sql($refresher, 'BEGIN');
	is(ok_sql($refresher, $refresh_sql), 'succeeded 1', "$what: the refresh closes it, not committed");
	send_sql($staff, "SELECT status FROM churn.alert_close($id, 'retained', 'anna', 'bought again')");
	wait_blocked($staff, $refresher, $what);
	ok_sql($refresher, 'COMMIT');
	($out, $err) = wait_sql($staff);
	like($err, $final_error, "$what: the manual close fails with 55000");
	is(outcome($id), 'retained|retained:churn.outcome', "$what: one outcome, the refresh's");
}

# Two alerts closed by hand in one transaction, in either order, while a
# refresh runs: the refresh locks only the alerts it closes, in id order,
# skipping those staff hold, so neither side waits for the other in a cycle.
my $clerk = session('clerk');

sub active_p1
{
	return split /\n/, $node->safe_psql('postgres',
		q{SELECT alert_id FROM churn.alert WHERE pipeline = 'p1' AND status IN ('open', 'contacted') ORDER BY customer_id});
}

for my $order ('high id first', 'low id first')
{
	my $what = "two manual closes ($order) while a refresh runs";
	my @active = sort { $a <=> $b } active_p1();
	SKIP:
	{
		skip "$what: fewer than three active alerts left", 4 unless @active >= 3;
		my ($x, $y) = $order eq 'high id first' ? ($active[-1], $active[0]) : ($active[0], $active[-1]);
		# every active alert is due an outcome, so the refresh wants to lock them all
		shift_back($_) for @active;
		ok_sql($staff, 'BEGIN');
		is(ok_sql($staff, "SELECT status FROM churn.alert_close($x, 'dismissed', 'anna', 'bulk 1/2')"), 'dismissed',
			"$what: X closed by hand, not committed");
		ok_sql($clerk, 'BEGIN');
		ok_sql($clerk, "SELECT status FROM churn.alert_contact($active[1], 'clerk', 'calling')");
		send_sql($refresher, $refresh_sql);
		my ($rout, $rerr) = wait_sql($refresher);
		like("$rout$rerr", qr/^succeeded \d+$/, "$what: the refresh succeeds without waiting for staff");
		my ($out, $err) = run_sql($staff, "SELECT status FROM churn.alert_close($y, 'dismissed', 'anna', 'bulk 2/2')");
		ok_sql($staff, 'COMMIT');
		ok_sql($clerk, 'COMMIT');
		ok(("$out$err" eq 'dismissed' || $err =~ $final_error),
			"$what: Y closed by hand, or refused cleanly because the refresh closed it ($out$err)");
		is(trail_problems('p1'), '', "$what: the trail agrees with the alerts");
	}
}
$clerk->{s}->quit;

# The alert trail of a pipeline against the alerts: one row per problem.
sub trail_problems
{
	my ($pipeline) = @_;
	return $node->safe_psql('postgres', qq{
		WITH e AS (
			SELECT e.alert_id,
			       count(*) FILTER (WHERE e.to_status IN ($closed_list)) AS n_closing,
			       count(*) FILTER (WHERE e.event = 'opened') AS n_opened,
			       (array_agg(e.to_status ORDER BY e.event_id) FILTER (WHERE e.to_status IN ($closed_list)))[1] AS closing,
			       (array_agg(e.to_status ORDER BY e.event_id DESC))[1] AS last_to,
			       (array_agg(e.from_status ORDER BY e.event_id) FILTER (WHERE e.to_status IN ($closed_list)))[1] AS closing_from
			FROM churn.alert_event e GROUP BY e.alert_id)
		SELECT a.alert_id || ' ' || a.status || ': ' || concat_ws(', ',
		           CASE WHEN a.status IN ($closed_list) AND coalesce(e.n_closing, 0) <> 1
		                THEN coalesce(e.n_closing, 0) || ' closing events' END,
		           CASE WHEN a.status IN ('open', 'contacted') AND coalesce(e.n_closing, 0) <> 0
		                THEN e.n_closing || ' closing events on an active alert' END,
		           CASE WHEN a.status IN ($closed_list) AND e.closing IS DISTINCT FROM a.status
		                THEN 'closing event to ' || coalesce(e.closing, 'nothing') END,
		           CASE WHEN e.closing_from NOT IN ('open', 'contacted') THEN 'closed from ' || e.closing_from END,
		           CASE WHEN e.last_to IS DISTINCT FROM a.status THEN 'last event to ' || coalesce(e.last_to, 'nothing') END,
		           CASE WHEN coalesce(e.n_opened, 0) <> 1 THEN coalesce(e.n_opened, 0) || ' opened events' END,
		           CASE WHEN (a.closed_at IS NOT NULL) <> (a.status IN ($closed_list)) THEN 'closed_at' END)
		FROM churn.alert a LEFT JOIN e USING (alert_id)
		JOIN churn.pipeline p ON p.pipeline_id = a.pipeline_id
		WHERE p.name = '$pipeline'
		  AND (coalesce(e.n_closing, 0) <> (a.status IN ($closed_list))::int
		       OR (a.status IN ($closed_list) AND e.closing IS DISTINCT FROM a.status)
		       OR e.closing_from NOT IN ('open', 'contacted')
		       OR e.last_to IS DISTINCT FROM a.status
		       OR coalesce(e.n_opened, 0) <> 1
		       OR (a.closed_at IS NOT NULL) <> (a.status IN ($closed_list)))
		ORDER BY a.alert_id});
}

is(trail_problems('p1'), '', 'p1: every alert has one closing event matching its status, or none while active');
is($node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE status IN ('open', 'contacted')) || ' active, '
	       || count(*) FILTER (WHERE status NOT IN ('open', 'contacted')) || ' closed'
	FROM churn.alert WHERE pipeline = 'p1' AND customer_id <= 's15'}), '0 active, 15 closed',
	'p1: the 15 scenario alerts are closed');
is($node->safe_psql('postgres', q{
	SELECT (SELECT count(*) FROM churn.alert_event e JOIN churn.alert a USING (alert_id)
	        WHERE a.pipeline = 'p1' AND e.actor = 'churn.outcome')
	       = (SELECT sum(alerts_closed) FROM churn.pipeline_run r JOIN churn.pipeline p USING (pipeline_id)
	          WHERE p.name = 'p1' AND r.status = 'succeeded')}), 't',
	'p1: closing events by churn.outcome = alerts_closed of the committed runs');

$_->{s}->quit for ($staff, $refresher, $buyer);

# --- part 2: many alerts, refreshes and staff at once --------------------------

is($node->safe_psql('postgres', q{SELECT status || ' ' || alerts_raised FROM churn.refresh('p2')}),
	'succeeded 400', 'p2: the first refresh opens 400 alerts');
# groups: bought before the race (retained by data), shifted back (churned
# by data), bought during the race (a writer), nothing (stays open)
$node->safe_psql('postgres', q{
	CREATE TABLE orig AS
	SELECT a.alert_id, a.customer_id,
	       (ARRAY['bought', 'shifted', 'late', 'quiet'])[substr(a.customer_id, 2)::int % 4 + 1] AS grp
	FROM churn.alert a WHERE a.pipeline = 'p2';
	INSERT INTO src2 SELECT customer_id, current_date + 1 + interval '10 hours', 30 FROM orig WHERE grp = 'bought';
	UPDATE churn.alert a SET opened_at = a.opened_at - interval '200 days'
	FROM orig o WHERE o.alert_id = a.alert_id AND o.grp = 'shifted';
});
my ($lo, $hi) = split /\|/, $node->safe_psql('postgres', 'SELECT min(alert_id), max(alert_id) FROM orig');
my @late = split /\n/, $node->safe_psql('postgres', q{SELECT customer_id FROM orig WHERE grp = 'late' ORDER BY 1});

sub rid { return $lo + int(rand($hi - $lo + 1)); }
sub pause { return sprintf("SELECT pg_sleep(%.3f);\n", $_[0] * rand()); }

# Staff sessions: single closes, contacts, closes in transactions that sleep
# with the lock or roll back, and bulk closes of several alerts in one
# statement.  Committed closes print "ok <id> <status>".
my $staff_n = 4;
my $actions = int(6 * $seconds);
my @scripts;
for my $k (1 .. $staff_n)
{
	my $sql = "\\set VERBOSITY verbose\nSET application_name = 'staff$k';\n";
	for (1 .. $actions)
	{
		my $r = rand();
		my $outcome = (qw(dismissed churned))[int(rand(2))];
		my $id = rid();
		my $close = "SELECT '%s ' || alert_id || ' ' || status FROM churn.alert_close($id, '$outcome', 'staff$k', 'by hand')";
		if ($r < 0.45) { $sql .= sprintf("$close;\n", 'ok'); }
		elsif ($r < 0.60) { $sql .= "SELECT 'contact ' || alert_id FROM churn.alert_contact($id, 'staff$k', 'called');\n"; }
		elsif ($r < 0.65)
		{
			# retained needs a contact first (in the same transaction)
			$sql .= "BEGIN;\nSELECT 'contact ' || alert_id FROM churn.alert_contact($id, 'staff$k', 'called');\n"
			  . "SELECT 'ok ' || alert_id || ' ' || status FROM churn.alert_close($id, 'retained', 'staff$k', 'bought');\n"
			  . pause(0.05) . "COMMIT;\n";
		}
		elsif ($r < 0.80) { $sql .= "BEGIN;\n" . sprintf("$close;\n", 'ok') . pause(0.2) . "COMMIT;\n"; }
		elsif ($r < 0.90) { $sql .= "BEGIN;\n" . sprintf("$close;\n", 'rb') . pause(0.1) . "ROLLBACK;\n"; }
		else
		{
			# a bulk close: three alerts in one statement, in id order
			my @ids = sort { $a <=> $b } (rid(), rid(), rid());
			$sql .= "SELECT 'ok ' || c.alert_id || ' ' || c.status FROM unnest(ARRAY[" . join(',', @ids)
			  . "]::bigint[]) i, churn.alert_close(i, '$outcome', 'staff$k', 'bulk') c;\n";
		}
		$sql .= pause(0.15);
	}
	push @scripts, $sql;
}

# The refresher: refreshes back to back, some held open for a while (the
# staff then wait for it).  Prints "run <status> <alerts_closed>".
my $rsql = "\\set VERBOSITY verbose\nSET application_name = 'refresher';\n";
my $refreshes = int($seconds);
for my $i (1 .. $refreshes)
{
	my $run = q{SELECT 'run ' || status || ' ' || alerts_closed FROM churn.refresh('p2');} . "\n";
	$rsql .= $i % 3 == 0 ? "BEGIN;\n$run" . pause(0.6) . "COMMIT;\n" : $run;
	$rsql .= pause(0.8);
}

# The writer: purchases of the 'late' group during the race, some in
# transactions that stay open across a refresh.
my $wsql = "\\set VERBOSITY verbose\nSET application_name = 'writer';\n";
for my $c (@late)
{
	my $ins = "INSERT INTO src2 VALUES ('$c', current_date + 1 + interval '10 hours', 30);\n";
	$wsql .= rand() < 0.3 ? "BEGIN;\n$ins" . pause(1.0) . "COMMIT;\n" : $ins;
	$wsql .= pause($seconds / @late);
}

sub start_psql
{
	my ($name, $sql) = @_;
	my $file = $node->basedir . "/$name.sql";
	PostgreSQL::Test::Utils::append_to_file($file, $sql);
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start([ 'psql', '-X', '-At', '-d', $node->connstr('postgres'), '-f', $file ],
		'>', \$out, '2>', \$err);
	return { name => $name, h => $h, out => \$out, err => \$err };
}

my $log_from = -s $node->logfile;
my $started = time;
my @procs = (start_psql('refresher', $rsql), start_psql('writer', $wsql),
	map { start_psql("staff$_", $scripts[ $_ - 1 ]) } 1 .. $staff_n);
for my $p (@procs)
{
	$p->{h}->finish;
	$p->{rc} = $p->{h}->result(0);
}
note sprintf('part 2 load took %.1f s', time - $started);

my ($ref, $writer, @staffp) = @procs;
is($ref->{rc}, 0, 'the refresher ran to its end');
my @runs = ${ $ref->{out} } =~ /^run (\S+) (\d+)$/mg;
my %run_status;
my $closed_by_runs = 0;
while (my ($st, $n) = splice(@runs, 0, 2)) { $run_status{$st}++; $closed_by_runs += $n; }
note 'refreshes: ' . join(', ', map { "$_ $run_status{$_}" } sort keys %run_status)
  . "; they closed $closed_by_runs alerts";
is($run_status{succeeded} // 0, $refreshes, "every refresh succeeded ($refreshes)");
is(${ $ref->{err} }, '', 'no refresh error') or diag(${ $ref->{err} });
is($writer->{rc}, 0, 'the writer ran to its end');
is(${ $writer->{err} }, '', 'no writer error') or diag(${ $writer->{err} });

# staff results: committed closes, and every error classified
my ($staff_closes, $rolled_back, $contacts, $closed_errors, $other_55000) = (0, 0, 0, 0, 0);
my @unexpected;
for my $p (@staffp)
{
	my $out = ${ $p->{out} };
	# a close in a transaction that later failed (an error after it) did not commit
	$staff_closes += () = $out =~ /^ok \d+ \w+$/mg;
	$rolled_back += () = $out =~ /^rb \d+ \w+$/mg;
	$contacts += () = $out =~ /^contact \d+$/mg;
	for my $e (split /(?=^(?:psql:[^\n]*)?ERROR:)/m, ${ $p->{err} })
	{
		next unless $e =~ /ERROR:/;
		if ($e =~ /ERROR:  55000: alert \d+ cannot move from (retained|churned|dismissed) to \w+\nDETAIL:  \1 is a closed status; closed alerts are final\./)
		{
			$closed_errors++;
		}
		elsif ($e =~ /ERROR:  55000: alert \d+ cannot move from (open|contacted) to \w+/) { $other_55000++; }
		elsif ($e =~ /ERROR:  25P02:/) { }    # the rest of a transaction after an error
		else { push @unexpected, "$p->{name}: $e"; }
	}
	is($p->{rc}, 0, "$p->{name} ran to its end");
}
note "staff: $staff_closes closes printed, $rolled_back rolled back, $contacts contacts; "
  . "$closed_errors refused as already closed, $other_55000 other illegal moves";
is(scalar(@unexpected), 0, 'every staff error is "cannot move from <closed status>" (or an illegal move)')
  or diag(join("\n", @unexpected[0 .. ($#unexpected < 9 ? $#unexpected : 9)]));
ok($closed_errors > 0, 'some manual closes came too late and were refused');

# a close prints its line only when it succeeded, and nothing after it in
# its transaction can fail: the lines are the committed closes
my $staff_events = $node->safe_psql('postgres', q{
	SELECT count(*) FROM churn.alert_event e JOIN orig o USING (alert_id)
	WHERE e.actor LIKE 'staff%' AND e.to_status IN ('retained', 'churned', 'dismissed')});
is($staff_events, $staff_closes, 'closing events by staff = closes that committed');

# a final refresh picks up the purchases committed last
like($node->safe_psql('postgres', q{SELECT status || ' ' || alerts_closed FROM churn.refresh('p2')}),
	qr/^succeeded \d+$/, 'a final refresh');

is(trail_problems('p2'), '', 'p2: every alert has one closing event matching its status, or none while active');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT alert_id FROM churn.alert_event
	                      WHERE to_status IN ('retained', 'churned', 'dismissed') GROUP BY alert_id HAVING count(*) > 1) d}),
	'0', 'no alert has two closing events');
my $counts = $node->safe_psql('postgres', q{
	WITH ev AS (SELECT e.* FROM churn.alert_event e JOIN churn.alert a USING (alert_id)
	            WHERE a.pipeline = 'p2' AND e.to_status IN ('retained', 'churned', 'dismissed'))
	SELECT (SELECT count(*) FROM churn.alert WHERE pipeline = 'p2' AND status IN ('retained', 'churned', 'dismissed'))
	       || '|' || (SELECT count(*) FROM ev WHERE actor = 'churn.outcome')
	       || '|' || (SELECT count(*) FROM ev WHERE actor LIKE 'staff%')
	       || '|' || (SELECT sum(alerts_closed) FROM churn.pipeline_run r JOIN churn.pipeline p USING (pipeline_id)
	                  WHERE p.name = 'p2' AND r.status = 'succeeded')});
my ($n_closed, $by_outcome, $by_staff, $runs_closed) = split /\|/, $counts;
note "p2: $n_closed closed alerts, $by_outcome by the refreshes, $by_staff by staff";
is($n_closed, $by_outcome + $by_staff, 'closed alerts = closes by the refreshes + closes by staff');
is($by_outcome, $runs_closed, 'closes by the refreshes = alerts_closed of the succeeded runs');
ok($by_outcome > 0 && $by_staff > 0, 'both sides closed some alerts');

# each group ends as its data says, unless staff closed it first
is($node->safe_psql('postgres', q{
	SELECT string_agg(x.grp || ' ' || x.status || ' by ' || x.actor || ': ' || x.n, ', ' ORDER BY x.grp, x.status)
	FROM (SELECT o.grp, a.status, coalesce(c.actor, '-') AS actor, count(*) AS n
	      FROM orig o JOIN churn.alert a USING (alert_id)
	      LEFT JOIN churn.alert_event c ON c.alert_id = a.alert_id AND c.to_status IN ('retained', 'churned', 'dismissed')
	      WHERE NOT ((o.grp IN ('bought', 'late') AND a.status = 'retained' AND c.actor = 'churn.outcome')
	              OR (o.grp = 'shifted' AND a.status = 'churned' AND c.actor = 'churn.outcome')
	              OR (o.grp = 'quiet' AND a.status IN ('open', 'contacted'))
	              OR c.actor LIKE 'staff%')
	      GROUP BY 1, 2, 3) x}), '',
	'every alert ends as its data says (retained, churned or still open) unless staff closed it');

my $log = substr(slurp_file($node->logfile), $log_from);
unlike($log, qr/deadlock detected/, 'no deadlock in part 2');
my @waits = $log =~ /(still waiting for .*)/g;
note scalar(@waits) . ' lock waits over 100 ms logged';
my @errors = grep { !/cannot move from|current transaction is aborted/ } ($log =~ /((?:ERROR|FATAL|PANIC):.*)/g);
is(scalar(@errors), 0, 'no error in the server log of part 2 but refused moves')
  or diag(join("\n", @errors[0 .. ($#errors < 19 ? $#errors : 19)]));

$node->stop;
done_testing();
