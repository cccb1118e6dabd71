-- churn_warning install script, part 920 (0.3.0): the refresh, with alerts
-- tied to the pipeline's identity and nothing private in NOTIFY.
--
-- Changes against 0.2.0 (part 900):
--   - a refresh checks that the source still exists and that its columns
--     still have types a pipeline accepts, before reading anything;
--   - alerts are opened and escalated by pipeline id, not by name, so a new
--     pipeline that reuses a dropped one's name starts clean;
--   - NOTIFY churn_refresh says only 'refreshed' (LISTEN cannot be
--     restricted: applications read what they may see from the views);
--   - retention prunes runs of every status, failed ones included;
--   - the events relation (part 910): captured events are merged like
--     purchases, or the relation is read whole; events a refresh skips are
--     counted in the run; every model scores with the engagement features.

-- The customer's lifecycle stage as of the refresh (0.3.0, part 816).
ALTER TABLE churn.pipeline_warning ADD COLUMN lifecycle text;
COMMENT ON COLUMN churn.pipeline_warning.lifecycle IS 'new, active, lapsing or lost as of the refresh (churn.lifecycle)';

-- What a run did with the events relation (0.3.0).
ALTER TABLE churn.pipeline_run
    ADD COLUMN event_mode text CHECK (event_mode IN ('full', 'incremental')),
    ADD COLUMN new_event_rows bigint,
    ADD COLUMN late_event_rows bigint,
    ADD COLUMN skipped_event_rows bigint;
COMMENT ON COLUMN churn.pipeline_run.event_mode IS
    'full (the events relation was read whole) or incremental (captured events merged); NULL without events';
COMMENT ON COLUMN churn.pipeline_run.new_event_rows IS 'captured events merged; NULL on a full read of the events';
COMMENT ON COLUMN churn.pipeline_run.late_event_rows IS
    'of the new events, those dated before the as_of of the previous refresh; NULL on a full read of the events';
COMMENT ON COLUMN churn.pipeline_run.skipped_event_rows IS
    'event rows skipped: no or unknown kind, a rating outside 1-5 or on a kind other than review, a day no timestamp holds';

-- The engagement features the snapshot was scored with (0.3.0).
ALTER TABLE churn.pipeline_warning ADD COLUMN engagement churn.engagement_features;
COMMENT ON COLUMN churn.pipeline_warning.engagement IS
    'engagement features as of the refresh over the pipeline''s window_days; NULL without events (or none by as_of)';

-- churn.pipeline_read_events (the whole events relation, its rejected rows
-- apart) is declared in part 921 with the type of those rows.

-- Retention of one pipeline: finished runs and tier changes older than its
-- run_retention go; the last 10 runs always stay.
CREATE FUNCTION churn.pipeline_prune(p_pipeline_id int) RETURNS void
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS
$$
    DELETE FROM churn.pipeline_run r
    USING churn.pipeline p
    WHERE p.pipeline_id = p_pipeline_id AND r.pipeline_id = p.pipeline_id AND r.status <> 'running'
      AND r.finished_at < now() - p.run_retention
      AND r.run_id < (SELECT min(k.run_id) FROM (SELECT r2.run_id FROM churn.pipeline_run r2
                                                  WHERE r2.pipeline_id = p_pipeline_id
                                                  ORDER BY r2.run_id DESC LIMIT 10) k);
    DELETE FROM churn.pipeline_tier_change tc
    USING churn.pipeline p
    WHERE p.pipeline_id = p_pipeline_id AND tc.pipeline_id = p.pipeline_id AND tc.at < now() - p.run_retention;
$$;

-- The refresh, step by step.  Each step is a function with one purpose;
-- churn.pipeline_execute runs them in one transaction.  Nested loops are off
-- in the steps that join the histories (see part 900).

-- Step 0: lock the pipeline, open or check the run, and check that the
-- owner, the source and its column types are still what they were.
CREATE FUNCTION churn.pipeline_begin(p_pipeline_id int, p_run_id bigint, OUT p churn.pipeline, OUT run bigint)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    SELECT * INTO p FROM churn.pipeline WHERE pipeline_id = p_pipeline_id FOR NO KEY UPDATE NOWAIT;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pipeline % does not exist', p_pipeline_id USING ERRCODE = 'undefined_object';
    END IF;
    run := p_run_id;
    IF run IS NULL THEN
        INSERT INTO churn.pipeline_run (pipeline_id, pipeline, trigger, status, started_at, pid, attempt)
        VALUES (p.pipeline_id, p.name, 'manual', 'running', clock_timestamp(), pg_backend_pid(), 1)
        RETURNING run_id INTO run;
    ELSIF NOT EXISTS (SELECT 1 FROM churn.pipeline_run r
                      WHERE r.run_id = run AND r.pipeline_id = p.pipeline_id AND r.status = 'running') THEN
        RAISE EXCEPTION 'run % of pipeline "%" is not running', run, p.name
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE oid = p.owner) THEN
        RAISE EXCEPTION 'the role that owned pipeline "%" no longer exists', p.name
            USING ERRCODE = 'undefined_object',
                  HINT = 'A superuser can give the pipeline to another role with churn.alter_pipeline(name, owner => ...).';
    END IF;
    -- a source dropped or retyped since the pipeline was set up stops here,
    -- before any of its values is read
    IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = p.source) THEN
        RAISE EXCEPTION 'the source of pipeline "%" no longer exists', p.name
            USING ERRCODE = 'undefined_table',
                  HINT = 'Drop the pipeline, or point it at another relation with churn.alter_pipeline(name, source => ...).';
    END IF;
    PERFORM churn.pipeline_check_columns(p.source, p.customer_col, p.ts_col, p.amount_col, p.ts_kind);
    IF p.events IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = p.events) THEN
            RAISE EXCEPTION 'the events relation of pipeline "%" no longer exists', p.name
                USING ERRCODE = 'undefined_table',
                      HINT = 'Point the pipeline at another relation with churn.alter_pipeline(name, events => ...), or stop reading events with events => NULL.';
        END IF;
        PERFORM churn.pipeline_check_event_columns(p.events, p.event_customer_col, p.event_ts_col, p.event_kind_col,
                                                   p.event_rating_col, p.event_ts_kind);
    END IF;
END
$$;
COMMENT ON FUNCTION churn.pipeline_begin(int, bigint) IS
    'refresh step 0: lock the pipeline, open (or check) its run, check owner, source, events relation and column types';

-- Step 1a: the whole source into the stored histories (first refresh,
-- capture 'full', a changed state key or a rebuild request).  Captured rows
-- the read already saw are dropped from the queue.  A customer no longer in
-- the source keeps their events (history NULL) or goes.
CREATE FUNCTION churn.pipeline_merge_full(p churn.pipeline, run bigint, key text, OUT n_merged bigint,
                                          OUT n_rows bigint)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET enable_nestloop = off SET jit = off AS
$$
DECLARE
    snap     pg_snapshot;
BEGIN
    -- r: every customer with a row kept (history) or rejected (rejects, part
    -- 921); a customer without a row kept is not in the source
    WITH r AS MATERIALIZED (
        SELECT * FROM churn.pipeline_read_purchases(p.pipeline_id)
    ), s AS (
        SELECT r.snapshot FROM r WHERE r.snapshot IS NOT NULL
    ), rj AS (
        INSERT INTO churn.pipeline_reject (pipeline_id, run_id, relation, customer_id, day, amount, reason)
        SELECT p.pipeline_id, run, 'purchases', r.customer_id, x.day, x.amount, x.reason
        FROM r CROSS JOIN LATERAL unnest(r.rejects) x WHERE r.rejects IS NOT NULL
        RETURNING 1
    ), dq AS (
        DELETE FROM churn.pipeline_queue q
        WHERE q.pipeline_id = p.pipeline_id
          AND (q.rebuild OR pg_visible_in_snapshot(q.xid, (SELECT s.snapshot FROM s)))
        RETURNING 1
    ), dc AS (
        DELETE FROM churn.pipeline_customer c
        WHERE c.pipeline_id = p.pipeline_id AND c.engagement IS NULL
          AND NOT EXISTS (SELECT 1 FROM r WHERE r.customer_id = c.customer_id AND r.history IS NOT NULL)
        RETURNING 1
    ), dh AS (
        -- (only a pipeline with events has customers with events)
        UPDATE churn.pipeline_customer c SET history = NULL, touched_run = run
        WHERE p.events IS NOT NULL AND c.pipeline_id = p.pipeline_id AND c.engagement IS NOT NULL
          AND c.history IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM r WHERE r.customer_id = c.customer_id AND r.history IS NOT NULL)
        RETURNING 1
    ), dw AS (
        DELETE FROM churn.pipeline_warning w
        WHERE w.pipeline_id = p.pipeline_id
          AND NOT EXISTS (SELECT 1 FROM r WHERE r.customer_id = w.customer_id AND r.history IS NOT NULL)
        RETURNING 1
    ), ins AS (
        -- plain INSERT and UPDATE rather than ON CONFLICT (twice as
        -- fast): no one else writes a pipeline's rows while it is locked
        INSERT INTO churn.pipeline_customer (pipeline_id, customer_id, history, stores, touched_run)
        SELECT p.pipeline_id, r.customer_id, r.history, r.stores, run FROM r
        WHERE r.history IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM churn.pipeline_customer c
                          WHERE c.pipeline_id = p.pipeline_id AND c.customer_id = r.customer_id)
        RETURNING 1
    ), upd AS (
        UPDATE churn.pipeline_customer c SET history = r.history, stores = r.stores, touched_run = run
        FROM r
        WHERE c.pipeline_id = p.pipeline_id AND c.customer_id = r.customer_id AND r.history IS NOT NULL
          AND (c.history::text IS DISTINCT FROM r.history::text OR c.stores IS DISTINCT FROM r.stores)
        RETURNING 1
    )
    SELECT (SELECT s.snapshot FROM s),
           (SELECT count(*) FROM ins) + (SELECT count(*) FROM upd) + (SELECT count(*) FROM dc)
           + (SELECT count(*) FROM dh) + 0 * (SELECT count(*) FROM dq) + 0 * (SELECT count(*) FROM dw),
           -- the rows read: counted only for a limit on the share rejected (part 927)
           CASE WHEN p.max_rejected_share IS NOT NULL
                THEN (SELECT coalesce(sum(r.kept), 0) FROM r) + (SELECT count(*) FROM rj) END
    INTO snap, n_merged, n_rows;
    UPDATE churn.pipeline SET base_snapshot = snap, state_key = key WHERE pipeline_id = p.pipeline_id;
END
$$;
COMMENT ON FUNCTION churn.pipeline_merge_full(churn.pipeline, bigint, text) IS
    'refresh step 1a: read the whole source into the stored histories, its rejected rows into churn.pipeline_reject; returns the customers changed and the rows read';

-- Step 1b: the captured purchases (of transactions that committed after
-- the last full read; late timestamps included) merged into the histories.
-- A re-read request that committed meanwhile stays for the next refresh.
CREATE FUNCTION churn.pipeline_merge_queue(p churn.pipeline, run bigint, OUT n_new bigint, OUT n_merged bigint,
                                           OUT n_rejected bigint)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET enable_nestloop = off SET jit = off AS
$$
BEGIN
    WITH q AS (
        -- the captured rows, off the queue (part 932: batches unnested)
        SELECT * FROM churn.pipeline_queue_take(p.pipeline_id)
    ), n AS MATERIALIZED (
        -- w: why the row is rejected (part 921), NULL for a row merged
        SELECT q.*, churn.pipeline_purchase_reject(q.customer_id, q.day, q.amount) AS w
        FROM q WHERE NOT pg_visible_in_snapshot(q.xid, p.base_snapshot)
    ), rj AS (
        INSERT INTO churn.pipeline_reject (pipeline_id, run_id, relation, customer_id, day, amount, reason)
        SELECT p.pipeline_id, run, 'purchases', n.customer_id, n.day, n.amount, n.w FROM n WHERE n.w IS NOT NULL
        RETURNING 1
    ), d AS (
        SELECT n.customer_id, churn.history_agg(n.day, n.amount) AS h, churn.store_counts(array_agg(n.store)) AS st
        FROM n WHERE n.w IS NULL GROUP BY n.customer_id
    ), mu AS (
        UPDATE churn.pipeline_customer c SET history = churn.merge(c.history, d.h),
               stores = churn.store_counts_merge(c.stores, d.st), touched_run = run
        FROM d
        WHERE c.pipeline_id = p.pipeline_id AND c.customer_id = d.customer_id AND d.h IS NOT NULL
        RETURNING c.customer_id
    ), mi AS (
        -- the customers mu did not find (not a second lookup of each one)
        INSERT INTO churn.pipeline_customer (pipeline_id, customer_id, history, stores, touched_run)
        SELECT p.pipeline_id, d.customer_id, d.h, d.st, run FROM d
        WHERE d.h IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM mu WHERE mu.customer_id = d.customer_id)
        RETURNING customer_id
    )
    SELECT (SELECT count(*) FROM n WHERE n.w IS NULL), (SELECT count(*) FROM mi) + (SELECT count(*) FROM mu),
           (SELECT count(*) FROM rj)
    INTO n_new, n_merged, n_rejected;
END
$$;
COMMENT ON FUNCTION churn.pipeline_merge_queue(churn.pipeline, bigint) IS
    'refresh step 1b: merge the captured purchases into the stored histories, the rejected ones into churn.pipeline_reject; returns new rows, customers changed and rows rejected';

-- Step 1c (0.3.0): the whole events relation into the stored engagement,
-- read with the owner's rights (first refresh with events, capture 'full',
-- changed events settings, lost state or a re-read request).  Customers
-- no longer in it lose their events, and go when they have no purchases.
-- Returns the rows skipped and the customers changed that step 1 did not
-- change already.
CREATE FUNCTION churn.pipeline_merge_events_full(p churn.pipeline, run bigint, OUT n_skipped bigint,
                                                 OUT n_merged bigint, OUT n_rows bigint)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET enable_nestloop = off SET jit = off AS
$$
DECLARE
    snap pg_snapshot;
BEGIN
    WITH r AS MATERIALIZED (
        SELECT * FROM churn.pipeline_read_events(p.pipeline_id)
    ), s AS (
        SELECT r.snapshot FROM r WHERE r.snapshot IS NOT NULL
    ), rj AS (
        INSERT INTO churn.pipeline_reject (pipeline_id, run_id, relation, customer_id, day, kind, rating, reason)
        SELECT p.pipeline_id, run, 'events', r.customer_id, x.day, x.kind, x.rating, x.reason
        FROM r CROSS JOIN LATERAL unnest(r.rejects) x WHERE r.rejects IS NOT NULL
        RETURNING 1
    ), dq AS (
        DELETE FROM churn.pipeline_event_queue q
        WHERE q.pipeline_id = p.pipeline_id
          AND (q.rebuild OR pg_visible_in_snapshot(q.xid, (SELECT s.snapshot FROM s)))
        RETURNING 1
    ), e AS (
        SELECT r.customer_id, r.engagement FROM r WHERE r.customer_id IS NOT NULL AND r.engagement IS NOT NULL
    ), chg AS MATERIALIZED (
        -- the customers whose stored events differ from the relation's
        SELECT coalesce(e.customer_id, c.customer_id) AS customer_id, e.engagement,
               c.customer_id IS NULL AS is_new, c.history IS NULL AND e.engagement IS NULL AS gone,
               c.touched_run IS NOT DISTINCT FROM run AS touched
        FROM (SELECT * FROM churn.pipeline_customer c0 WHERE c0.pipeline_id = p.pipeline_id) c
        FULL JOIN e ON e.customer_id = c.customer_id
        WHERE c.engagement::text IS DISTINCT FROM e.engagement::text
    ), ins AS (
        INSERT INTO churn.pipeline_customer (pipeline_id, customer_id, history, engagement, touched_run)
        SELECT p.pipeline_id, chg.customer_id, NULL, chg.engagement, run FROM chg WHERE chg.is_new
        RETURNING 1
    ), del AS (
        DELETE FROM churn.pipeline_customer c USING chg
        WHERE c.pipeline_id = p.pipeline_id AND c.customer_id = chg.customer_id AND chg.gone
        RETURNING 1
    ), upd AS (
        UPDATE churn.pipeline_customer c SET engagement = chg.engagement, touched_run = run
        FROM chg
        WHERE c.pipeline_id = p.pipeline_id AND c.customer_id = chg.customer_id AND NOT chg.is_new AND NOT chg.gone
        RETURNING 1
    )
    SELECT (SELECT s.snapshot FROM s), (SELECT count(*) FROM rj),
           (SELECT count(*) FROM chg WHERE NOT chg.touched)
           + 0 * ((SELECT count(*) FROM dq) + (SELECT count(*) FROM ins) + (SELECT count(*) FROM del)
                  + (SELECT count(*) FROM upd)),
           CASE WHEN p.max_rejected_share IS NOT NULL
                THEN (SELECT coalesce(sum(r.kept), 0) FROM r) + (SELECT count(*) FROM rj) END
    INTO snap, n_skipped, n_merged, n_rows;
    UPDATE churn.pipeline SET event_snapshot = snap WHERE pipeline_id = p.pipeline_id;
END
$$;
COMMENT ON FUNCTION churn.pipeline_merge_events_full(churn.pipeline, bigint) IS
    'refresh step 1c: read the whole events relation into the stored engagement, its rejected rows into churn.pipeline_reject; returns rows rejected, customers changed and rows read';

-- Step 1d (0.3.0): the captured events (of transactions that committed
-- after the last full read of the events) merged into the stored
-- engagement.  Returns the events merged, those dated before the previous
-- refresh's as_of (late), the rows skipped (churn.pipeline_event_check),
-- and the customers changed that step 1 did not change already.
CREATE FUNCTION churn.pipeline_merge_event_queue(p churn.pipeline, run bigint, OUT n_new bigint, OUT n_late bigint,
                                                 OUT n_skipped bigint, OUT n_merged bigint)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET enable_nestloop = off SET jit = off AS
$$
BEGIN
    WITH q AS (
        -- the captured events, off the queue (part 932: batches unnested)
        SELECT * FROM churn.pipeline_event_queue_take(p.pipeline_id)
    ), n AS MATERIALIZED (
        -- w: why the event is rejected (part 921), NULL for one merged
        SELECT q.customer_id, q.day, q.rating, q.kind,
               churn.pipeline_event_reject(q.customer_id, q.day, q.kind, q.rating) AS w
        FROM q WHERE NOT pg_visible_in_snapshot(q.xid, p.event_snapshot)
    ), rj AS (
        INSERT INTO churn.pipeline_reject (pipeline_id, run_id, relation, customer_id, day, kind, rating, reason)
        SELECT p.pipeline_id, run, 'events', n.customer_id, n.day, n.kind, n.rating, n.w FROM n WHERE n.w IS NOT NULL
        RETURNING 1
    ), d AS (
        -- the day goes through the session's time zone and back: the same day
        SELECT n.customer_id, churn.engagement_agg(n.day::timestamptz, n.kind, n.rating) AS e
        FROM n WHERE n.w IS NULL GROUP BY n.customer_id
    ), cur AS MATERIALIZED (
        SELECT c.customer_id, c.touched_run FROM churn.pipeline_customer c JOIN d ON d.customer_id = c.customer_id
        WHERE c.pipeline_id = p.pipeline_id
    ), mi AS (
        INSERT INTO churn.pipeline_customer (pipeline_id, customer_id, history, engagement, touched_run)
        SELECT p.pipeline_id, d.customer_id, NULL, d.e, run FROM d
        WHERE NOT EXISTS (SELECT 1 FROM cur WHERE cur.customer_id = d.customer_id)
        RETURNING 1
    ), mu AS (
        UPDATE churn.pipeline_customer c SET engagement = churn.merge(c.engagement, d.e), touched_run = run
        FROM d
        WHERE c.pipeline_id = p.pipeline_id AND c.customer_id = d.customer_id
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM n WHERE n.w IS NULL),
           (SELECT count(*) FROM n WHERE n.w IS NULL AND n.day < p.as_of),
           (SELECT count(*) FROM rj),
           (SELECT count(*) FROM d) - (SELECT count(*) FROM cur WHERE cur.touched_run = run)
           + 0 * ((SELECT count(*) FROM mi) + (SELECT count(*) FROM mu))
    INTO n_new, n_late, n_skipped, n_merged;
END
$$;
COMMENT ON FUNCTION churn.pipeline_merge_event_queue(churn.pipeline, bigint) IS
    'refresh step 1d: merge the captured events into the stored engagement; returns new, late and skipped rows and customers changed';

-- Step 2: the models of a refresh.  BG/NBD is refitted (in weeks) on the
-- pipeline's customers once a day: it gives p_alive and expected purchases
-- whatever model scores.  The scoring model is that BG/NBD for model
-- 'bgnbd', else the registered model.
CREATE FUNCTION churn.pipeline_models(p churn.pipeline, today date, rescore boolean,
                                      OUT bg churn.bgnbd, OUT bgm churn.model, OUT scorer churn.model,
                                      OUT changed boolean, OUT note text)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET enable_nestloop = off SET jit = off AS
$$
DECLARE
    a record;
    idx text := pg_catalog.current_setting('enable_indexscan');
    nl text := pg_catalog.current_setting('enable_nestloop');
BEGIN
    bg := p.bgnbd;
    IF rescore THEN
        BEGIN
            -- the whole slice in table order, not by index (part 926).
            -- EXECUTE runs the query to completion, so the planner may fit
            -- in parallel, where an assignment asks for one row and
            -- PostgreSQL then runs it in one process; partial fits combine
            -- to the same result (entries summed in key order).  A lateral
            -- call can only be a nested loop: with nested loops disabled its
            -- cost hides the parallel plan's saving.
            PERFORM pg_catalog.set_config('enable_indexscan', 'off', true);
            PERFORM pg_catalog.set_config('enable_nestloop', 'on', true);
            EXECUTE 'SELECT (s.bg).* FROM (
                         SELECT churn.bgnbd_fit(f.x, f.t_x / 7, f.t / 7) AS bg
                         FROM churn.pipeline_customer c
                         CROSS JOIN LATERAL churn.features(c.history, $1, $2) f
                         WHERE c.pipeline_id = $3 AND f.first_purchase IS NOT NULL) s'
                INTO bg USING today, p.window_days, p.pipeline_id;
            PERFORM pg_catalog.set_config('enable_indexscan', idx, true);
            PERFORM pg_catalog.set_config('enable_nestloop', nl, true);
        EXCEPTION WHEN OTHERS THEN
            IF p.model = 'bgnbd' THEN
                RAISE EXCEPTION 'BG/NBD cannot be fitted on the customers of pipeline "%": %', p.name, SQLERRM
                    USING ERRCODE = SQLSTATE;
            END IF;
            bg := NULL;
        END;
    END IF;
    bgm := churn.model_adhoc(p.name, bg, p.horizon_days);
    changed := false;
    IF p.model = 'auto' THEN
        a := churn.pipeline_auto(p, today, bgm);
        scorer := a.scorer;
        changed := a.changed;
        note := a.note;
    ELSE
        scorer := CASE WHEN p.model = 'bgnbd' THEN bgm ELSE churn.model_get(p.model) END;
        note := CASE WHEN p.model = 'bgnbd' THEN 'bgnbd: the pipeline''s BG/NBD, fitted on its customers'
                     ELSE format('the registered model %s (%s)', p.model, scorer.kind) END;
    END IF;
    IF scorer.kind IS NOT NULL THEN
        scorer.horizon_days := p.horizon_days; -- a registered model scores over the pipeline's horizon
    END IF;
END
$$;
COMMENT ON FUNCTION churn.pipeline_models(churn.pipeline, date, boolean) IS
    'refresh step 2: the day''s BG/NBD (refitted when rescoring; also as a model row) and the model that scores';

-- Step 3: score (every customer on a new day, else those with new
-- purchases or events), with the purchase and the engagement features;
-- write the rows that changed, record tier changes, and collect
-- the alert candidates: customers who moved into a more urgent code of an
-- alerting zone and bought within alert_max_idle_days.
CREATE FUNCTION churn.pipeline_score(p churn.pipeline, run bigint, today date, rescore boolean, bgm churn.model,
                                     scorer churn.model, OUT n_scored bigint, OUT n_written bigint,
                                     OUT n_changes bigint, OUT cands churn.pipeline_alert_candidate[])
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET enable_nestloop = off SET jit = off AS
$$
DECLARE
    idx text := pg_catalog.current_setting('enable_indexscan');
    -- part 927: no snapshot yet (a first refresh), no join with it: right
    -- after the first read every estimate is a few rows, and the join
    -- hashed all the scored customers (1M: 127 MB, spilled to disk)
    has_prev boolean := EXISTS (SELECT 1 FROM churn.pipeline_warning w WHERE w.pipeline_id = p.pipeline_id);
BEGIN
    IF NOT rescore THEN
        -- only the touched customers: their snapshot rows by key (part 926)
        PERFORM pg_catalog.set_config('enable_nestloop', 'on', true);
    ELSE
        -- every customer: the slice in table order, not by index (part 926)
        PERFORM pg_catalog.set_config('enable_indexscan', 'off', true);
    END IF;
    WITH s AS (
        -- the features as one composite value per customer (OFFSET 0: computed
        -- once, not once per reference below); the engagement features over
        -- the same window as the purchase features (NULL without events)
        SELECT c.customer_id, churn.features(c.history, today, p.window_days) AS f,
               churn.engagement_features(c.engagement, today, p.window_days) AS e, churn.store_of(c.stores) AS store,
               greatest(0, churn.history_spend(c.history, today, 365)) AS spend_365
        FROM churn.pipeline_customer c
        WHERE c.pipeline_id = p.pipeline_id AND (rescore OR c.touched_run = run) AND c.history IS NOT NULL
        OFFSET 0
    ), sc AS (
        SELECT s.customer_id, s.f, s.e, s.store, s.spend_365,
               churn.model_score(scorer, s.f, s.e) AS p_churn,
               churn.model_p_alive(bgm, s.f) AS p_alive,
               churn.model_expected(bgm, s.f, p.horizon_days) AS expected,
               churn.model_expected(bgm, s.f, 365)
                   * greatest(0, coalesce((s.f).repeat_avg_spend, (s.f).avg_spend, 0)) AS predicted_value,
               churn.lifecycle(s.f, s.spend_365, p.policy) AS lifecycle
        FROM s
        WHERE (s.f).first_purchase IS NOT NULL
        OFFSET 0                            -- computed once, streamed, not stored
    ), t0 AS (
        -- the lifecycle and the tier are computed in select lists, once per
        -- customer, not as functions in FROM (part 927: this statement took
        -- 9.9-11.3 s at 1M customers with them in FROM, 8.7 s so)
        SELECT j.customer_id, j.f, j.e, j.store, j.spend_365, j.p_churn, j.p_alive, j.expected, j.predicted_value,
               j.lifecycle,
               churn.reason(j.f, j.e, j.lifecycle,
                            CASE WHEN (scorer).kind = 'rules' THEN (scorer).ruleset ELSE 'default' END) AS reason,
               (j.tt).zone, (j.tt).level, (j.tt).code, (j.tt).value_segment, (j.tt).lead_days,
               j.prev_code, j.is_new,
               j.is_new
               OR (j.w_features, j.w_p_churn, j.w_p_alive, j.w_expected, j.w_predicted_value, j.w_annual_value,
                   j.prev_code, j.w_value_segment, j.w_lifecycle, j.w_engagement, j.w_store)
                  IS DISTINCT FROM (j.f, j.p_churn, j.p_alive, j.expected, j.predicted_value, j.spend_365,
                                    (j.tt).code, (j.tt).value_segment, j.lifecycle, j.e, j.store) AS changed,
               j.prev_reason
        FROM (
            -- the tier once per customer (OFFSET 0), not once per field above
            SELECT sc.*,
                   churn.lifecycle_tier(churn.warning_tier(sc.p_churn, sc.spend_365, p.policy, w.code),
                                        sc.lifecycle) AS tt,
                   w.code AS prev_code, w.customer_id IS NULL AS is_new, w.reason AS prev_reason,
                   w.features AS w_features, w.p_churn AS w_p_churn, w.p_alive AS w_p_alive,
                   w.expected_purchases AS w_expected, w.predicted_value AS w_predicted_value,
                   w.annual_value AS w_annual_value, w.value_segment AS w_value_segment,
                   w.lifecycle AS w_lifecycle, w.engagement AS w_engagement, w.store AS w_store
            FROM sc
            LEFT JOIN churn.pipeline_warning w
                   ON has_prev AND w.pipeline_id = p.pipeline_id AND w.customer_id = sc.customer_id
            OFFSET 0
        ) j
        WHERE (j.tt).code IS NOT NULL       -- no score, no tier (p_churn NULL)
    ), t AS (
        -- an alert for a code more urgent than before in an alerting zone,
        -- unless the customer has been gone too long; its top drivers
        SELECT t0.*, a.alert,
               CASE WHEN a.alert AND (scorer).kind IN ('logit', 'xgb', 'rules')
                    THEN churn.top_drivers((scorer).name, churn.model_input(scorer, t0.f, t0.e), 3) END AS drivers
        FROM t0
        CROSS JOIN LATERAL (
            -- a lost customer is reactivated by campaign, not alerted one by one
            SELECT t0.code <> coalesce(t0.prev_code, 'N0') AND t0.zone = ANY (p.alert_zones)
                   AND t0.lifecycle <> 'lost'
                   AND churn.alert_urgency(t0.code) > churn.alert_urgency(coalesce(t0.prev_code, 'N0'))
                   AND (p.alert_max_idle_days IS NULL OR (t0.f).recency_days <= p.alert_max_idle_days) AS alert
        ) a
    ), ui AS (
        INSERT INTO churn.pipeline_warning
            (pipeline_id, customer_id, features, p_churn, p_alive, expected_purchases, predicted_value,
             annual_value, zone, level, code, value_segment, lead_days, drivers, previous_code, changed_at, run_id,
             lifecycle, engagement, store, reason)
        SELECT p.pipeline_id, t.customer_id, t.f, t.p_churn, t.p_alive, t.expected, t.predicted_value,
               t.spend_365, t.zone, t.level, t.code, t.value_segment, t.lead_days, coalesce(t.drivers, '{}'),
               NULL, now(), run, t.lifecycle, t.e, t.store, t.reason
        FROM t WHERE t.is_new
        RETURNING 1
    ), uu AS (
        UPDATE churn.pipeline_warning w
        SET features = t.f, p_churn = t.p_churn, p_alive = t.p_alive, expected_purchases = t.expected,
            predicted_value = t.predicted_value, annual_value = t.spend_365, zone = t.zone, level = t.level,
            code = t.code, value_segment = t.value_segment, lead_days = t.lead_days,
            drivers = CASE WHEN t.code = w.code THEN w.drivers ELSE coalesce(t.drivers, '{}') END,
            previous_code = CASE WHEN t.code <> w.code THEN w.code ELSE w.previous_code END,
            changed_at = CASE WHEN t.code <> w.code THEN now() ELSE w.changed_at END,
            run_id = run, lifecycle = t.lifecycle, engagement = t.e, store = t.store, reason = t.reason
        FROM t
        WHERE (t.changed OR t.reason IS DISTINCT FROM t.prev_reason) AND NOT t.is_new
          AND w.pipeline_id = p.pipeline_id AND w.customer_id = t.customer_id
        RETURNING 1
    ), tc AS (
        INSERT INTO churn.pipeline_tier_change (pipeline_id, run_id, customer_id, at, as_of, from_code, to_code,
                                                p_churn)
        SELECT p.pipeline_id, run, t.customer_id, now(), today, coalesce(t.prev_code, 'N0'), t.code, t.p_churn
        FROM t WHERE t.code <> coalesce(t.prev_code, 'N0')
        RETURNING 1
    )
    SELECT a.n, (SELECT count(*) FROM ui) + (SELECT count(*) FROM uu), (SELECT count(*) FROM tc), a.cands
    INTO n_scored, n_written, n_changes, cands
    FROM (SELECT count(*) AS n,
                 array_agg(ROW(t.customer_id, t.code, t.value_segment, t.p_churn, t.spend_365,
                               t.drivers, t.store, t.reason)::churn.pipeline_alert_candidate) FILTER (WHERE t.alert) AS cands
          FROM t) a;
    PERFORM pg_catalog.set_config('enable_indexscan', idx, true);
END
$$;
COMMENT ON FUNCTION churn.pipeline_score(churn.pipeline, bigint, date, boolean, churn.model, churn.model) IS
    'refresh step 3: score, tier and write the warning rows, record tier changes, collect alert candidates';

-- One refresh: the steps above in one transaction, then the run record and
-- the next slot.  Returns the run id.
CREATE OR REPLACE FUNCTION churn.pipeline_execute(p_pipeline_id int, p_run_id bigint) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    b          record;
    p          churn.pipeline;
    run        bigint;
    t0         timestamptz := clock_timestamp();
    t1         timestamptz;
    t2         timestamptz;
    today      date;
    lost       boolean;
    full_read  boolean;
    events_full boolean;
    rescore    boolean;
    key        text := churn.pipeline_state_key();
    m          record;
    sc         record;
    ev_new     bigint;             -- the events: NULL without events
    ev_late    bigint;
    ev_skipped bigint;
    ev_merged  bigint;
    n_new      bigint := 0;
    n_merged   bigint := 0;
    n_alerts   bigint;
    n_closed   bigint;
    n_rows     bigint;             -- rows read, rejected ones included (part 921; part 927: NULL unless needed)
    ev_rows    bigint;
    n_rejected bigint;
BEGIN
    b := churn.pipeline_begin(p_pipeline_id, p_run_id);
    p := b.p;
    run := b.run;
    today := (now() AT TIME ZONE p.time_zone)::date;
    -- another cluster or database, or the unlogged histories were emptied
    -- by crash recovery: both relations are read whole
    lost := p.state_key IS DISTINCT FROM key
            OR NOT EXISTS (SELECT 1 FROM churn.pipeline_customer c WHERE c.pipeline_id = p.pipeline_id);
    full_read := lost OR p.capture = 'full' OR p.base_snapshot IS NULL
                 OR EXISTS (SELECT 1 FROM churn.pipeline_queue q WHERE q.pipeline_id = p.pipeline_id AND q.rebuild);
    events_full := p.events IS NOT NULL
                   AND (lost OR p.event_capture = 'full' OR p.event_snapshot IS NULL
                        OR EXISTS (SELECT 1 FROM churn.pipeline_event_queue q
                                   WHERE q.pipeline_id = p.pipeline_id AND q.rebuild));
    IF full_read THEN
        n_new := NULL;              -- a full read does not count new rows
        SELECT f.n_merged, f.n_rows INTO n_merged, n_rows FROM churn.pipeline_merge_full(p, run, key) f;
    ELSE
        SELECT q.n_new, q.n_merged, q.n_new + q.n_rejected INTO n_new, n_merged, n_rows
        FROM churn.pipeline_merge_queue(p, run) q;
    END IF;
    IF events_full THEN
        SELECT e.n_skipped, e.n_merged, e.n_rows INTO ev_skipped, ev_merged, ev_rows
        FROM churn.pipeline_merge_events_full(p, run) e;
    ELSIF p.events IS NOT NULL THEN
        SELECT e.n_new, e.n_late, e.n_skipped, e.n_merged, e.n_new + e.n_skipped
        INTO ev_new, ev_late, ev_skipped, ev_merged, ev_rows
        FROM churn.pipeline_merge_event_queue(p, run) e;
    END IF;
    n_merged := n_merged + coalesce(ev_merged, 0);
    n_rows := n_rows + coalesce(ev_rows, 0);
    -- rejected rows are kept aside; too many of them fail the run (part 921)
    n_rejected := churn.pipeline_check_rejects(p, run, n_rows);
    -- outcomes first: an alert closed by a purchase frees the customer for a new one
    n_closed := churn.pipeline_close_outcomes(p, today);
    t1 := clock_timestamp();

    rescore := full_read OR p.as_of IS DISTINCT FROM today OR p.scored_model IS DISTINCT FROM p.model;
    m := churn.pipeline_models(p, today, rescore);
    rescore := rescore OR m.changed;          -- a new champion scores everyone
    sc := churn.pipeline_score(p, run, today, rescore, m.bgm, m.scorer);
    n_alerts := churn.pipeline_raise_alerts(p.pipeline_id, sc.cands);
    t2 := clock_timestamp();

    UPDATE churn.pipeline
    SET as_of = today, scored_model = p.model, bgnbd = m.bg, consecutive_failures = 0, last_success_at = now(),
        next_run_at = churn.pipeline_next_slot(p.anchor_at, p.schedule, p.time_zone, now())
    WHERE pipeline_id = p.pipeline_id;
    UPDATE churn.pipeline_run
    SET status = 'succeeded', finished_at = clock_timestamp(), as_of = today,
        mode = CASE WHEN full_read THEN 'full' ELSE 'incremental' END,
        new_purchase_rows = n_new, customers_merged = n_merged,
        customers_total = (SELECT count(*) FROM churn.pipeline_customer c
                           WHERE c.pipeline_id = p.pipeline_id AND c.history IS NOT NULL),
        customers_scored = sc.n_scored, snapshot_rows_written = sc.n_written, tier_changes = sc.n_changes,
        alerts_raised = n_alerts,
        merge_ms = 1000 * extract(epoch FROM t1 - t0), score_ms = 1000 * extract(epoch FROM t2 - t1),
        finish_ms = 1000 * extract(epoch FROM clock_timestamp() - t2),
        event_mode = CASE WHEN events_full THEN 'full' WHEN p.events IS NOT NULL THEN 'incremental' END,
        new_event_rows = ev_new, late_event_rows = ev_late, skipped_event_rows = ev_skipped,
        model_used = (m.scorer).name, model_note = m.note, alerts_closed = n_closed, rejected_rows = n_rejected
    WHERE run_id = run;
    PERFORM churn.pipeline_prune(p.pipeline_id);
    -- no pipeline name or customer data: any role can LISTEN
    PERFORM pg_notify('churn_refresh', 'refreshed');
    IF n_rejected > 0 THEN
        PERFORM pg_notify('churn_reject', 'rejected');
    END IF;
    RETURN run;
END
$$;

REVOKE EXECUTE ON FUNCTION churn.pipeline_prune(int),
    churn.pipeline_begin(int, bigint), churn.pipeline_merge_full(churn.pipeline, bigint, text),
    churn.pipeline_merge_queue(churn.pipeline, bigint),
    churn.pipeline_merge_events_full(churn.pipeline, bigint), churn.pipeline_merge_event_queue(churn.pipeline, bigint),
    churn.pipeline_models(churn.pipeline, date, boolean),
    churn.pipeline_score(churn.pipeline, bigint, date, boolean, churn.model, churn.model) FROM PUBLIC;
