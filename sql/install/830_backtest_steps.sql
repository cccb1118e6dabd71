-- churn_warning install script, part 830 (0.3.0): the backtest in named
-- steps, scoring through churn.model_score.
--
-- churn.backtest_run (part 820) keeps its signature and its temp tables
-- pg_temp.churn_bt_*; each step below is one function with one purpose.

-- Signed log transform of the purchase features, the backtest's logistic
-- model's inputs (heavy-tailed counts and amounts become well-scaled).
CREATE OR REPLACE FUNCTION churn.backtest_logit_x(f churn.features) RETURNS float8[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT ARRAY(SELECT sign(u.e) * ln(1 + abs(u.e))
                 FROM unnest((churn.feature_vector(f, NULL, 0))[1:cardinality(churn.feature_names('purchase'))])
                      WITH ORDINALITY u(e, i)
                 ORDER BY u.i)
$$;
COMMENT ON FUNCTION churn.backtest_logit_x(churn.features) IS
    'backtest internal: sign(v) * ln(1 + |v|) of the purchase features of churn.feature_vector (NULL filled with 0)';

-- Step 1: the arguments.
CREATE FUNCTION churn.backtest_check_args(as_of date, horizon_days int, window_days int, lookback int,
                                          value_basis text, observed_until date, step_days int, gone_days int)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite date' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF horizon_days <= 0 THEN
        RAISE EXCEPTION 'horizon_days must be positive, got %', horizon_days
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF window_days < 1 OR window_days > 36525 THEN
        RAISE EXCEPTION 'window_days must be between 1 and 36525, got %', window_days
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF lookback < 0 OR lookback > 120 THEN
        RAISE EXCEPTION 'lookback must be between 0 and 120, got %', lookback
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'lookback is the number of earlier scoring dates, 30 days apart, used for the lead time.';
    END IF;
    IF value_basis NOT IN ('predicted', 'trailing') THEN
        RAISE EXCEPTION 'value_basis must be ''predicted'' or ''trailing'', got "%"', value_basis
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF observed_until IS NOT NULL AND NOT isfinite(observed_until) THEN
        RAISE EXCEPTION 'observed_until must be a finite date' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF step_days IS NULL OR step_days < 1 OR step_days > 365 THEN
        RAISE EXCEPTION 'step_days must be between 1 and 365, got %', coalesce(step_days::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF gone_days < 1 THEN
        RAISE EXCEPTION 'gone_days must be positive or NULL (= horizon_days), got %', gone_days
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;
COMMENT ON FUNCTION churn.backtest_check_args(date, int, int, int, text, date, int, int) IS
    'backtest step 1: argument checks';

-- Step 2: the model: a built-in name (rules, bgnbd, logit) or a registered
-- model, which scores over the backtest's horizon.
CREATE FUNCTION churn.backtest_model(model text, horizon_days int, OUT kind text, OUT reg churn.model)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    fname text;
BEGIN
    IF model IN ('auto', 'rules', 'bgnbd', 'logit') THEN
        kind := model;
        IF model = 'rules' THEN
            reg := churn.model_adhoc('rules', 'default', horizon_days);
        END IF;
        RETURN;
    END IF;
    SELECT * INTO reg FROM churn.model mo WHERE mo.name = backtest_model.model;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown model "%"', model
            USING ERRCODE = 'undefined_object',
                  HINT = 'Use auto, rules, bgnbd, logit or the name of a model registered in churn.model.';
    END IF;
    kind := 'registered';
    IF reg.kind IN ('logit', 'xgb') THEN
        FOREACH fname IN ARRAY reg.feature_names LOOP
            IF array_position(churn.feature_names(), fname) IS NULL THEN
                RAISE EXCEPTION 'model "%" uses the feature "%", which a backtest cannot compute', model, fname
                    USING ERRCODE = 'feature_not_supported',
                          HINT = 'A backtest computes the features of churn.feature_names() from purchases.';
            END IF;
        END LOOP;
    END IF;
    reg.horizon_days := horizon_days;
END
$$;
COMMENT ON FUNCTION churn.backtest_model(text, int) IS
    'backtest step 2: the built-in model (auto, rules, bgnbd, logit), or the registered model row (scoring over the backtest''s horizon)';

-- Step 3: the source's columns exist, have usable types and the caller may
-- read them; returns the expression that reads the timestamp column.
CREATE FUNCTION churn.backtest_check_source(source regclass, customer_col name, ts_col name, amount_col name)
    RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    col     name;
    typ     oid;
    ts_type oid;
    cat     "char";
BEGIN
    FOR i IN 1 .. 3 LOOP
        col := (ARRAY[customer_col, ts_col, amount_col])[i];
        CONTINUE WHEN i = 3 AND amount_col IS NULL;      -- an events relation has no amount
        SELECT a.atttypid INTO typ FROM pg_attribute a
        WHERE a.attrelid = source AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'column "%" does not exist in %', col, source
                USING ERRCODE = 'undefined_column',
                      HINT = 'Name the columns with customer_col, ts_col and amount_col.';
        END IF;
        IF NOT has_column_privilege(source::oid, col::text, 'SELECT') THEN
            RAISE EXCEPTION 'permission denied to read column "%" of %', col, source
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'A backtest runs with the caller''s rights; GRANT SELECT on the source.';
        END IF;
        IF i = 2 THEN
            ts_type := typ;
            IF typ NOT IN ('date'::regtype, 'timestamp'::regtype, 'timestamptz'::regtype) THEN
                RAISE EXCEPTION 'column "%" of % has type %, expected date, timestamp or timestamptz',
                    col, source, typ::regtype USING ERRCODE = 'datatype_mismatch';
            END IF;
        ELSIF i = 3 THEN
            SELECT t.typcategory INTO cat FROM pg_type t WHERE t.oid = typ;
            IF cat <> 'N' THEN
                RAISE EXCEPTION 'column "%" of % has type %, expected a number', col, source, typ::regtype
                    USING ERRCODE = 'datatype_mismatch';
            END IF;
        END IF;
    END LOOP;
    RETURN CASE WHEN ts_type = 'date'::regtype THEN format('%I', ts_col) ELSE format('%I::timestamptz', ts_col) END;
END
$$;
COMMENT ON FUNCTION churn.backtest_check_source(regclass, name, name, name) IS
    'backtest step 3: column checks; returns the SQL expression of the timestamp column';

-- Step 4: one history per customer (pg_temp.churn_bt_hist) and the first
-- and last purchase day of the source.
CREATE FUNCTION churn.backtest_read(source regclass, customer_col name, ts_expr text, amount_col name,
                                    as_of date, OUT first_day date, OUT last_day date)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    PERFORM churn.backtest_drop();
    EXECUTE format('CREATE TEMP TABLE churn_bt_hist ON COMMIT DROP AS '
                   'SELECT %1$I::text AS customer_id, churn.history_agg(%2$s, %3$I::float8) AS h '
                   'FROM %4$s WHERE %1$I IS NOT NULL GROUP BY %1$I',
                   customer_col, ts_expr, amount_col, source);
    SELECT min(dd.day), max(dd.day) INTO first_day, last_day
    FROM pg_temp.churn_bt_hist hh, churn.history_days(hh.h) dd WHERE dd.purchases > 0;
    IF first_day IS NULL OR first_day > as_of THEN
        RAISE EXCEPTION 'no purchases on or before % in %', as_of, source
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = CASE WHEN first_day IS NULL THEN 'The source has no purchase rows.'
                              ELSE format('The first purchase is on %s.', first_day) END;
    END IF;
END
$$;
COMMENT ON FUNCTION churn.backtest_read(regclass, name, text, name, date) IS
    'backtest step 4: read the source into pg_temp.churn_bt_hist; returns its first and last purchase day';

-- Step 4b: the events of each customer (pg_temp.churn_bt_events), when an
-- events relation is given.  Events with a NULL customer or time, an
-- unknown kind or a rating outside 1..5 are skipped (churn.event_valid);
-- returns how many were.
CREATE FUNCTION churn.backtest_read_events(events regclass, cols name[]) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    skipped bigint := 0;
    ts_expr text;
BEGIN
    CREATE TEMP TABLE churn_bt_events (customer_id text PRIMARY KEY, e churn.engagement) ON COMMIT DROP;
    IF events IS NULL THEN
        RETURN 0;
    END IF;
    -- the same column rules as the purchase source; the amount check does
    -- not apply to kind, so check it as text
    ts_expr := churn.backtest_check_source(events, cols[1], cols[2], NULL);
    IF NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = events AND a.attname = cols[3] AND a.attnum > 0
                   AND NOT a.attisdropped AND has_column_privilege(events::oid, cols[3]::text, 'SELECT'))
       OR NOT EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                      WHERE a.attrelid = events AND a.attname = cols[4] AND a.attnum > 0 AND NOT a.attisdropped
                        AND t.typcategory = 'N' AND has_column_privilege(events::oid, cols[4]::text, 'SELECT')) THEN
        RAISE EXCEPTION 'the events relation % needs a readable kind column "%" and a numeric rating column "%"',
            events, cols[3], cols[4]
            USING ERRCODE = 'undefined_column',
                  HINT = 'Name them with event_kind_col and event_rating_col.';
    END IF;
    EXECUTE format('INSERT INTO pg_temp.churn_bt_events '
                   'SELECT %1$I::text, churn.engagement_agg(%2$s::timestamptz, %3$I::text, %4$I::float8) '
                   'FROM %5$s WHERE %1$I IS NOT NULL AND %2$s IS NOT NULL '
                   'AND churn.event_valid(%3$I::text, %4$I::float8) GROUP BY 1',
                   cols[1], ts_expr, cols[3], cols[4], events);
    EXECUTE format('SELECT count(*) FROM %5$s WHERE NOT (%1$I IS NOT NULL AND %2$s IS NOT NULL '
                   'AND churn.event_valid(%3$I::text, %4$I::float8))',
                   cols[1], ts_expr, cols[3], cols[4], events) INTO skipped;
    RETURN skipped;
END
$$;
COMMENT ON FUNCTION churn.backtest_read_events(regclass, name[]) IS
    'backtest step 4b: events per customer into pg_temp.churn_bt_events; returns the number of events skipped';

-- Step 5: features, engagement features, trailing spend and the
-- early-warning label of every customer at every scoring date
-- (pg_temp.churn_bt_feat).  The label is churn.gone_by: no purchase in the
-- gone_days after d + horizon_days; NULL when that is after obs.
CREATE FUNCTION churn.backtest_features(dates date[], window_days int, horizon_days int, gone_days int, obs date)
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    CREATE TEMP TABLE churn_bt_feat ON COMMIT DROP AS
    SELECT hh.customer_id, dd.d AS as_of_date, ff AS f,
           churn.engagement_features(ev.e, dd.d, window_days) AS e,
           greatest(0, coalesce((churn.features(hh.h, dd.d, 365)).recent_days
                                * (churn.features(hh.h, dd.d, 365)).recent_avg_spend, 0)) AS spend_365,
           CASE WHEN dd.d + horizon_days + gone_days <= obs THEN churn.gone_by(hh.h, dd.d, horizon_days, gone_days)
           END AS churned
    FROM pg_temp.churn_bt_hist hh
    LEFT JOIN pg_temp.churn_bt_events ev ON ev.customer_id = hh.customer_id
    CROSS JOIN unnest(dates) dd(d)
    CROSS JOIN LATERAL churn.features(hh.h, dd.d, window_days) ff
    WHERE ff.first_purchase IS NOT NULL;
END
$$;
COMMENT ON FUNCTION churn.backtest_features(date[], int, int, int, date) IS
    'backtest step 5: features, engagement and the early-warning label at every scoring date into pg_temp.churn_bt_feat';

-- Step 6a: BG/NBD (in weeks) and Gamma-Gamma at one scoring date, for the
-- model 'bgnbd' and for the predicted annual value.  A fit that fails is
-- NULL, unless fatal (the model 'bgnbd' at as_of).
CREATE FUNCTION churn.backtest_fit_value(d date, fit_bg boolean, value_basis text, fatal boolean,
                                         OUT bg churn.bgnbd, OUT gg churn.gg, OUT value_ok boolean)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    value_ok := false;
    IF fit_bg OR value_basis = 'predicted' THEN
        BEGIN
            bg := (SELECT churn.bgnbd_fit((f).x, (f).t_x / 7, (f).t / 7)
                   FROM pg_temp.churn_bt_feat WHERE as_of_date = d);
        EXCEPTION WHEN OTHERS THEN
            IF fatal THEN
                RAISE EXCEPTION 'backtest: BG/NBD cannot be fitted at %: %', d, SQLERRM USING ERRCODE = SQLSTATE;
            END IF;
            bg := NULL;
        END;
    END IF;
    IF value_basis = 'predicted' AND (bg).converged THEN
        BEGIN
            gg := (SELECT churn.gg_fit((f).x, (f).repeat_avg_spend) FILTER (WHERE (f).x > 0 AND (f).repeat_avg_spend > 0)
                   FROM pg_temp.churn_bt_feat WHERE as_of_date = d);
        EXCEPTION WHEN OTHERS THEN
            gg := NULL;
        END;
        -- usable only when the fitted population mean spend p·v/(q − 1) is
        -- within a factor 2 of the observed mean repeat spend (a
        -- degenerate fit, q → 1 with p → ∞, is rejected)
        value_ok := coalesce((gg).converged AND (gg).q > 1
                             AND (SELECT ((gg).p * (gg).v / ((gg).q - 1)) / avg((f).repeat_avg_spend)
                                  FROM pg_temp.churn_bt_feat
                                  WHERE as_of_date = d AND (f).x > 0 AND (f).repeat_avg_spend > 0)
                                 BETWEEN 0.5 AND 2, false);
    END IF;
END
$$;
COMMENT ON FUNCTION churn.backtest_fit_value(date, boolean, text, boolean) IS
    'backtest step 6a: BG/NBD and Gamma-Gamma at one scoring date, and whether the predicted value is usable';

-- Step 6b: the logistic model at one scoring date d, trained on features at
-- d - h with labels over (d - h, d], all known at d; h is the horizon,
-- shortened to half the purchase history before d when the history is
-- shorter than two horizons.  NULL lg when it cannot be trained (an error
-- when fatal: at as_of), and all NULL for a NULL d (no logistic model).
CREATE FUNCTION churn.backtest_fit_logit(d date, horizon_days int, window_days int, first_day date, fatal boolean,
                                         OUT lg churn.logit, OUT mu float8[], OUT sd float8[],
                                         OUT tr_date date, OUT tr_h int, OUT tr_rows bigint, OUT tr_rate float8)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF d IS NULL THEN
        RETURN;
    END IF;
    tr_h := least(horizon_days, (d - first_day) / 2);
    IF tr_h < 1 THEN
        IF fatal THEN
            RAISE EXCEPTION 'backtest: too little history before % to train the logistic model', d
                USING ERRCODE = 'invalid_parameter_value', HINT = format('The first purchase is on %s.', first_day);
        END IF;
        RETURN;
    END IF;
    tr_date := d - tr_h;
    CREATE TEMP TABLE churn_bt_train ON COMMIT DROP AS
    SELECT churn.backtest_logit_x(ff) AS v, churn.churned(hh.h, tr_date, tr_h) AS y
    FROM pg_temp.churn_bt_hist hh CROSS JOIN LATERAL churn.features(hh.h, tr_date, window_days) ff
    WHERE ff.first_purchase IS NOT NULL;
    SELECT array_agg(s.m ORDER BY s.i), array_agg(s.s ORDER BY s.i) INTO mu, sd
    FROM (SELECT u.i, avg(u.e) AS m, stddev_pop(u.e) AS s
          FROM pg_temp.churn_bt_train t, unnest(t.v) WITH ORDINALITY u(e, i) GROUP BY u.i) s;
    SELECT count(*), avg(y::int) INTO tr_rows, tr_rate FROM pg_temp.churn_bt_train;
    BEGIN
        lg := (SELECT churn.logit_fit(t.y, churn.backtest_zscore(t.v, mu, sd), 1.0) FROM pg_temp.churn_bt_train t);
        IF lg IS NULL THEN
            RAISE EXCEPTION 'no training rows' USING ERRCODE = 'data_exception';
        END IF;
    EXCEPTION WHEN OTHERS THEN
        IF fatal THEN
            RAISE EXCEPTION 'backtest: the logistic model cannot be trained at % (horizon % days): %',
                tr_date, tr_h, SQLERRM USING ERRCODE = SQLSTATE;
        END IF;
        lg := NULL;
    END;
    DROP TABLE pg_temp.churn_bt_train;
END
$$;
COMMENT ON FUNCTION churn.backtest_fit_logit(date, int, int, date, boolean) IS
    'backtest step 6b: the logistic model at one scoring date (trained on labels known by then)';

-- Step 7: scores, predicted annual values and tiers of every customer at
-- every scoring date (pg_temp.churn_bt_score).  The logistic model of a
-- backtest reads standardised log features; every other model reads the
-- features themselves.
CREATE FUNCTION churn.backtest_score(policy text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    CREATE TEMP TABLE churn_bt_score ON COMMIT DROP AS
    WITH s AS MATERIALIZED (
        SELECT f.customer_id, f.as_of_date, f.f, (f.f).last_purchase AS last_purchase, f.churned,
               CASE WHEN m.mu IS NOT NULL
                    THEN churn.model_score(m.scorer, churn.backtest_zscore(churn.backtest_logit_x(f.f), m.mu, m.sd))
                    ELSE churn.model_score(m.scorer, f.f, f.e) END AS p_churn,
               -- the recency baseline: days since the last purchase in usual gaps
               (f.f).recency_days / coalesce(nullif((f.f).mean_gap_days, 0), gap.d) AS overdue,
               CASE WHEN v.pv >= 0 AND v.pv < 'Infinity' THEN v.pv ELSE f.spend_365 END AS annual_value,
               CASE WHEN v.pv >= 0 AND v.pv < 'Infinity' THEN 'predicted' ELSE 'trailing_365d' END AS value_source
        FROM pg_temp.churn_bt_feat f
        JOIN pg_temp.churn_bt_fit m USING (as_of_date)
        -- the usual gap of a customer who bought once: the policy's default_gap_days
        CROSS JOIN (SELECT min(tp.default_gap_days) AS d FROM churn.tier_policy tp WHERE tp.policy = backtest_score.policy) gap
        -- predicted annual value: BG/NBD expected purchases in the next 365
        -- days times Gamma-Gamma expected spend (the population mean for
        -- customers without a positive repeat spend); NULL when unusable
        CROSS JOIN LATERAL (SELECT CASE WHEN m.value_ok THEN greatest(0,
                   churn.model_expected(m.value_model, f.f, 365)
                   * churn.gg_expected_spend(m.gg, CASE WHEN (f.f).repeat_avg_spend > 0 THEN (f.f).x ELSE 0 END,
                                             coalesce((f.f).repeat_avg_spend, 0))) END AS pv) v)
    SELECT s.customer_id, s.as_of_date, s.p_churn, s.annual_value, s.value_source,
           t.zone, t.level, t.code, t.value_segment, t.lead_days, s.last_purchase, s.churned, s.lifecycle, s.overdue
    FROM (SELECT s.*, churn.lifecycle(s.f, s.annual_value, policy) AS lifecycle FROM s) s
    LEFT JOIN LATERAL churn.lifecycle_tier(churn.warning_tier(s.p_churn, s.annual_value, policy), s.lifecycle) t
      ON true;
END
$$;
COMMENT ON FUNCTION churn.backtest_score(text) IS
    'backtest step 7: score, value and tier every customer at every scoring date into pg_temp.churn_bt_score';

-- The work of a backtest: the steps above.  Leaves pg_temp.churn_bt_score
-- (one row per customer and scoring date) and pg_temp.churn_bt_fit (one row
-- per scoring date) for the caller.  The auto model is trained once, on
-- what was known at the earliest scoring date, and scores every date.
DROP FUNCTION churn.backtest(regclass, date, int, text, name, name, name, text, int, int, text, date);
DROP FUNCTION churn.backtest_run(regclass, date, int, text, name, name, name, text, int, int, text, date);
CREATE FUNCTION churn.backtest_run(source regclass, as_of date, horizon_days int, model text,
                                   customer_col name, ts_col name, amount_col name, policy text,
                                   window_days int, lookback int, value_basis text, observed_until date,
                                   events regclass, event_cols name[], step_days int, gone_days int)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    mo      record;
    rd      record;
    fv      record;
    fl      record;
    ts_expr text;
    dates   date[];
    d       date;
    w       int := coalesce(gone_days, horizon_days);
    skipped bigint;
BEGIN
    policy := coalesce(policy, churn.tier_policy_for(model));   -- none given: the model's
    IF source IS NULL OR as_of IS NULL OR horizon_days IS NULL OR model IS NULL OR customer_col IS NULL
       OR ts_col IS NULL OR amount_col IS NULL OR policy IS NULL OR window_days IS NULL OR lookback IS NULL
       OR value_basis IS NULL OR (events IS NOT NULL AND array_position(event_cols, NULL) IS NOT NULL) THEN
        RAISE EXCEPTION 'backtest arguments must not be NULL (only observed_until, events and gone_days may be)'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM churn.backtest_check_args(as_of, horizon_days, window_days, lookback, value_basis, observed_until,
                                      step_days, gone_days);
    mo := churn.backtest_model(model, horizon_days);
    ts_expr := churn.backtest_check_source(source, customer_col, ts_col, amount_col);
    -- an unknown tier policy fails here, with churn.warning_tier's own error
    PERFORM churn.warning_tier(0.5, 0, policy);
    rd := churn.backtest_read(source, customer_col, ts_expr, amount_col, as_of);
    skipped := churn.backtest_read_events(events, event_cols);

    -- scoring dates: as_of and lookback earlier dates step_days apart
    dates := ARRAY(SELECT as_of - step_days * k FROM generate_series(0, lookback) k ORDER BY k);
    PERFORM churn.backtest_features(dates, window_days, horizon_days, w, coalesce(observed_until, rd.last_day));
    IF mo.kind = 'auto' THEN
        CREATE TEMP TABLE churn_auto_input ON COMMIT DROP AS
        SELECT hh.customer_id, hh.h, ev.e FROM pg_temp.churn_bt_hist hh
        LEFT JOIN pg_temp.churn_bt_events ev ON ev.customer_id = hh.customer_id;
        mo.reg := churn.auto_train('auto', dates[cardinality(dates)], horizon_days, w, window_days, policy);
        DROP TABLE pg_temp.churn_auto_input;
    END IF;
    CREATE TEMP TABLE churn_bt_fit (as_of_date date, bg churn.bgnbd, gg churn.gg,
                                    lg churn.logit, mu float8[], sd float8[], train_as_of date,
                                    train_horizon int, train_rows bigint, train_rate float8,
                                    value_ok boolean, value_model churn.model, scorer churn.model) ON COMMIT DROP;
    FOREACH d IN ARRAY dates LOOP
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_temp.churn_bt_feat WHERE as_of_date = d);
        fv := churn.backtest_fit_value(d, mo.kind = 'bgnbd', value_basis, mo.kind = 'bgnbd' AND d = as_of);
        CONTINUE WHEN mo.kind = 'bgnbd' AND fv.bg IS NULL;
        fl := churn.backtest_fit_logit(CASE WHEN mo.kind = 'logit' THEN d END, horizon_days, window_days,
                                       rd.first_day, d = as_of);
        CONTINUE WHEN mo.kind = 'logit' AND fl.lg IS NULL;
        INSERT INTO pg_temp.churn_bt_fit
        VALUES (d, fv.bg, fv.gg, fl.lg, fl.mu, fl.sd, fl.tr_date, fl.tr_h, fl.tr_rows, fl.tr_rate, fv.value_ok,
                churn.model_adhoc('bgnbd', fv.bg, horizon_days),
                CASE mo.kind WHEN 'bgnbd' THEN churn.model_adhoc('bgnbd', fv.bg, horizon_days)
                             WHEN 'logit' THEN churn.model_adhoc('logit', fl.lg,
                                                                 churn.feature_names('purchase'), horizon_days)
                             ELSE mo.reg END);
    END LOOP;
    PERFORM churn.backtest_score(policy);
    RETURN skipped;
END
$$;
COMMENT ON FUNCTION churn.backtest_run(regclass, date, int, text, name, name, name, text, int, int, text, date,
                                       regclass, name[], int, int) IS
    'backtest internal: reads, fits and scores into pg_temp.churn_bt_fit and pg_temp.churn_bt_score; returns the events skipped';

-- Per-customer rows of a backtest (0.3.0: events, weekly dates, the
-- early-warning label, lifecycle, model auto by default).
DROP FUNCTION churn.backtest_scores(regclass, date, int, text, name, name, name, text, int, int, text, date);
CREATE FUNCTION churn.backtest_scores(source regclass, as_of date, horizon_days int, model text DEFAULT 'auto',
                                      customer_col name DEFAULT 'customer_id', ts_col name DEFAULT 'ts',
                                      amount_col name DEFAULT 'amount', policy text DEFAULT NULL,
                                      window_days int DEFAULT 90, lookback int DEFAULT 0,
                                      value_basis text DEFAULT 'predicted', observed_until date DEFAULT NULL,
                                      events regclass DEFAULT NULL, event_customer_col name DEFAULT 'customer_id',
                                      event_ts_col name DEFAULT 'ts', event_kind_col name DEFAULT 'kind',
                                      event_rating_col name DEFAULT 'rating', step_days int DEFAULT 30,
                                      gone_days int DEFAULT NULL)
    RETURNS TABLE (customer_id text, as_of_date date, p_churn float8, annual_value float8, value_source text,
                   zone text, level int, code text, value_segment text, lead_days int,
                   last_purchase date, churned boolean, lifecycle text)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
#variable_conflict use_column
BEGIN
    PERFORM churn.backtest_run(source, as_of, horizon_days, model, customer_col, ts_col, amount_col, policy,
                               window_days, lookback, value_basis, observed_until, events,
                               ARRAY[event_customer_col, event_ts_col, event_kind_col, event_rating_col],
                               step_days, gone_days);
    RETURN QUERY SELECT s.customer_id, s.as_of_date, s.p_churn, s.annual_value, s.value_source, s.zone, s.level,
                        s.code, s.value_segment, s.lead_days, s.last_purchase, s.churned, s.lifecycle
                 FROM pg_temp.churn_bt_score s ORDER BY s.as_of_date DESC, s.customer_id;
    PERFORM churn.backtest_drop();
END
$$;
COMMENT ON FUNCTION churn.backtest_scores(regclass, date, int, text, name, name, name, text, int, int, text, date,
                                          regclass, name, name, name, name, int, int) IS
    'per-customer backtest rows: score, annual value, tier, lifecycle and the early-warning label at as_of and at the lookback earlier dates';

-- The temp tables of a backtest, dropped when they exist (quietly: no
-- pg_temp schema may exist yet).
CREATE OR REPLACE FUNCTION churn.backtest_drop() RETURNS void
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['churn_bt_hist', 'churn_bt_events', 'churn_bt_feat', 'churn_bt_fit', 'churn_bt_score',
                             'churn_bt_train', 'churn_bt_rule', 'churn_auto_input', 'churn_auto_rows'] LOOP
        IF to_regclass('pg_temp.' || t) IS NOT NULL THEN
            EXECUTE format('DROP TABLE pg_temp.%I', t);
        END IF;
    END LOOP;
END
$$;

-- Report part 1: summary, fits, value, zones, codes, lift, calibration
-- and the first warnings, over the customers scored at as_of whose label
-- is known.
CREATE FUNCTION churn.backtest_report(model text, as_of date, horizon_days int, lookback int, step_days int)
    RETURNS TABLE (ord int, section text, label text, bin int, metric text, value float8, n bigint)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    WITH s AS (SELECT * FROM pg_temp.churn_bt_score s WHERE s.as_of_date = as_of AND s.churned IS NOT NULL
                                                        AND s.p_churn IS NOT NULL),
    tot AS (SELECT count(*) AS n, count(*) FILTER (WHERE churned) AS pos FROM s),
    fit AS (SELECT * FROM pg_temp.churn_bt_fit f WHERE f.as_of_date = as_of),
    zones AS (SELECT z.ord, z.zone, z.members FROM (VALUES (1, 'red', ARRAY['red']), (2, 'yellow', ARRAY['yellow']),
                     (3, 'blue', ARRAY['blue']), (4, 'none', ARRAY['none']),
                     (5, 'red+yellow', ARRAY['red', 'yellow'])) z(ord, zone, members)),
    zstat AS (SELECT z.ord, z.zone, count(s.customer_id) AS k, count(*) FILTER (WHERE s.churned) AS pos,
                     avg(s.p_churn) AS mean_p
              FROM zones z LEFT JOIN s ON s.zone = ANY (z.members) GROUP BY z.ord, z.zone),
    cstat AS (SELECT s.zone, s.level, s.code, count(*) AS k, count(*) FILTER (WHERE s.churned) AS pos
              FROM s GROUP BY 1, 2, 3),
    lift AS (SELECT b.* FROM unnest((SELECT churn.lift(s.p_churn, s.churned, 10) FROM s)) b),
    lift_b AS (SELECT b.* FROM unnest((SELECT churn.lift(s.overdue, s.churned, 10) FROM s)) b),
    calib AS (SELECT b.* FROM unnest((SELECT churn.calibration(s.p_churn, s.churned, 10) FROM s)) b)
    SELECT 1, 'summary', model, NULL::int, 'customers', tot.n::float8, tot.n FROM tot
    UNION ALL SELECT 2, 'summary', model, NULL, 'churn_rate', tot.pos::float8 / nullif(tot.n, 0), tot.pos FROM tot
    UNION ALL SELECT 3, 'summary', model, NULL, 'auc', churn.auc(s.p_churn, s.churned), count(*) FROM s
    UNION ALL SELECT 4, 'summary', model, NULL, 'log_loss', churn.log_loss(s.p_churn, s.churned), count(*) FROM s
    UNION ALL SELECT 5, 'summary', model, NULL, 'brier', churn.brier(s.p_churn, s.churned), count(*) FROM s
    UNION ALL SELECT 6, 'summary', model, NULL, 'mean_p', avg(s.p_churn), count(*) FROM s
    UNION ALL SELECT 7, 'summary', model, NULL, 'horizon_days', horizon_days::float8, NULL FROM tot
    UNION ALL
    SELECT 10 + v.o, 'fit', v.l, NULL, v.m, v.v, NULL
    FROM fit, LATERAL (VALUES
        (1, 'bgnbd', 'r', (fit.bg).r), (2, 'bgnbd', 'alpha_weeks', (fit.bg).alpha), (3, 'bgnbd', 'a', (fit.bg).a),
        (4, 'bgnbd', 'b', (fit.bg).b), (5, 'bgnbd', 'converged', (fit.bg).converged::int::float8),
        (11, 'gamma_gamma', 'p', (fit.gg).p), (12, 'gamma_gamma', 'q', (fit.gg).q),
        (13, 'gamma_gamma', 'v', (fit.gg).v), (14, 'gamma_gamma', 'converged', (fit.gg).converged::int::float8),
        (15, 'logit', 'train_rows', fit.train_rows::float8), (16, 'logit', 'train_churn_rate', fit.train_rate),
        (17, 'logit', 'train_horizon_days', fit.train_horizon::float8),
        (18, 'logit', 'train_days_before_as_of', (as_of - fit.train_as_of)::float8),
        (19, 'logit', 'iterations', (fit.lg).iterations::float8),
        (20, 'logit', 'converged', (fit.lg).converged::int::float8),
        (21, 'auto', 'training_rows', ((fit.scorer).metrics ->> 'training_rows')::float8),
        (22, 'auto', 'validation_auc_' || ((fit.scorer).metrics ->> 'champion'),
         ((fit.scorer).metrics -> 'validation_auc' ->> ((fit.scorer).metrics ->> 'champion'))::float8)) v(o, l, m, v)
    WHERE v.v IS NOT NULL
    UNION ALL
    SELECT 40, 'value', 'annual_value', NULL, 'predicted_share',
           avg((s.value_source = 'predicted')::int), count(*) FILTER (WHERE s.value_source = 'predicted') FROM s
    UNION ALL SELECT 41, 'value', 'annual_value', NULL, 'mean', avg(s.annual_value), count(*) FROM s
    UNION ALL SELECT 42, 'value', 'annual_value', NULL, 'median',
           percentile_cont(0.5) WITHIN GROUP (ORDER BY s.annual_value), count(*) FROM s
    UNION ALL
    SELECT 100 + 10 * zs.ord + v.o, 'zone', zs.zone, NULL, v.m, v.v, v.n
    FROM zstat zs, tot, LATERAL (VALUES
        (1, 'customers', zs.k::float8 / nullif(tot.n, 0), zs.k),
        (2, 'precision', zs.pos::float8 / nullif(zs.k, 0), zs.k),
        (3, 'recall', zs.pos::float8 / nullif(tot.pos, 0), zs.pos),
        (4, 'mean_p', zs.mean_p, zs.k)) v(o, m, v, n)
    UNION ALL
    SELECT 200 + CASE cs.zone WHEN 'red' THEN 1 WHEN 'yellow' THEN 2 WHEN 'blue' THEN 3 ELSE 4 END,
           'code', cs.code, cs.level, v.m, v.v, v.n
    FROM cstat cs, tot, LATERAL (VALUES
        (1, 'customers', cs.k::float8 / nullif(tot.n, 0), cs.k),
        (2, 'precision', cs.pos::float8 / nullif(cs.k, 0), cs.k),
        (3, 'recall', cs.pos::float8 / nullif(tot.pos, 0), cs.pos)) v(o, m, v, n)
    UNION ALL
    SELECT 300, 'lift', NULL, l.bin, v.m, v.v, l.n
    FROM lift l, LATERAL (VALUES (1, 'mean_score', l.mean_score), (2, 'rate', l.rate), (3, 'lift', l.lift),
                                 (4, 'cum_capture', l.cum_capture)) v(o, m, v)
    UNION ALL
    -- the recency baseline's lift: ranked by days since the last purchase in usual gaps
    SELECT 301, 'lift', 'recency_baseline', l.bin, v.m, v.v, l.n
    FROM lift_b l, LATERAL (VALUES (1, 'mean_score', l.mean_score), (2, 'rate', l.rate), (3, 'lift', l.lift),
                                   (4, 'cum_capture', l.cum_capture)) v(o, m, v)
    UNION ALL
    SELECT 400, 'calibration', NULL, c.bin, v.m, v.v, c.n
    FROM calib c, LATERAL (VALUES (1, 'predicted', c.mean_score), (2, 'observed', c.rate)) v(o, m, v)
$$;
COMMENT ON FUNCTION churn.backtest_report(text, date, int, int, int) IS
    'backtest internal: summary, fit, value, zone, code, lift and calibration rows of a report';

-- Report part 2: early warning.  Among the customers not lost at as_of
-- (active population): AUC, red+yellow precision and recall, and the
-- recency baseline (overdue = days since the last purchase in usual gaps)
-- alerting as many of them.  Leavers: customers whose last purchase falls
-- between the earliest scoring date and as_of and who bought nothing in the
-- gone_days after it; warned early when red or yellow at a scoring date at
-- least 14 days before that last purchase; lead = last purchase - first
-- warning; the same for the recency baseline warning as many customers as
-- the model at every scoring date.
CREATE FUNCTION churn.backtest_report_early(as_of date, lookback int, step_days int, gone_days int, obs date)
    RETURNS TABLE (ord int, section text, label text, bin int, metric text, value float8, n bigint)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    WITH s AS (SELECT * FROM pg_temp.churn_bt_score s WHERE s.as_of_date = as_of AND s.churned IS NOT NULL
                                                        AND s.p_churn IS NOT NULL AND s.lifecycle <> 'lost'),
    k AS (SELECT count(*) FILTER (WHERE s.zone IN ('red', 'yellow')) AS k FROM s),
    base AS (SELECT s.churned FROM s ORDER BY s.overdue DESC NULLS LAST, s.customer_id LIMIT (SELECT k FROM k)),
    dates AS (SELECT g AS k, as_of - step_days * g AS d FROM generate_series(0, lookback) g),
    final AS (SELECT hh.customer_id, max(dd.day) AS last_purchase
              FROM pg_temp.churn_bt_hist hh, churn.history_days(hh.h) dd
              WHERE dd.purchases > 0 AND dd.day <= obs GROUP BY hh.customer_id),
    leavers AS (SELECT f.customer_id, f.last_purchase FROM final f
                WHERE f.last_purchase > (SELECT min(d) FROM dates) AND f.last_purchase <= as_of
                  AND f.last_purchase + gone_days <= obs),
    lead AS (SELECT l.customer_id, l.last_purchase - min(w.as_of_date) AS lead,
                    bool_or(w.as_of_date <= l.last_purchase - 14) AS early
             FROM leavers l LEFT JOIN pg_temp.churn_bt_score w
               ON w.customer_id = l.customer_id AND w.zone IN ('red', 'yellow')
             GROUP BY l.customer_id, l.last_purchase),
    -- the recency baseline at every scoring date: as many warnings as the
    -- model's red and yellow there, the most overdue customers not lost
    kd AS (SELECT w.as_of_date, count(*) FILTER (WHERE w.zone IN ('red', 'yellow')) AS k
           FROM pg_temp.churn_bt_score w WHERE w.lifecycle <> 'lost' GROUP BY w.as_of_date),
    basew AS (SELECT r.customer_id, r.as_of_date
              FROM (SELECT w.customer_id, w.as_of_date,
                           row_number() OVER (PARTITION BY w.as_of_date
                                              ORDER BY w.overdue DESC NULLS LAST, w.customer_id) AS rn
                    FROM pg_temp.churn_bt_score w WHERE w.lifecycle <> 'lost') r
              JOIN kd ON kd.as_of_date = r.as_of_date WHERE r.rn <= kd.k),
    lead_b AS (SELECT l.customer_id, l.last_purchase - min(b.as_of_date) AS lead,
                      bool_or(b.as_of_date <= l.last_purchase - 14) AS early
               FROM leavers l LEFT JOIN basew b ON b.customer_id = l.customer_id
               GROUP BY l.customer_id, l.last_purchase),
    leads AS (SELECT 'red+yellow' AS label, x.* FROM lead x UNION ALL SELECT 'recency_baseline', x.* FROM lead_b x),
    ls AS (SELECT lb.label, lb.o, count(x.customer_id) AS leavers, count(x.lead) AS warned,
                  count(*) FILTER (WHERE x.early) AS early,
                  percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY x.lead) AS q, avg(x.lead) AS mean
           FROM (VALUES ('red+yellow', 500), ('recency_baseline', 510)) lb(label, o)
           LEFT JOIN leads x ON x.label = lb.label GROUP BY lb.label, lb.o),
    firstw AS (SELECT w.customer_id, min(w.as_of_date) AS first_warning FROM pg_temp.churn_bt_score w
               WHERE w.zone IN ('red', 'yellow') GROUP BY w.customer_id)
    SELECT 450, 'early_warning', 'active', NULL::int, 'customers', count(*)::float8, count(*) FROM s
    UNION ALL SELECT 451, 'early_warning', 'active', NULL, 'auc', churn.auc(s.p_churn, s.churned), count(*) FROM s
    UNION ALL SELECT 452, 'early_warning', 'red+yellow', NULL, 'precision',
           avg(s.churned::int) FILTER (WHERE s.zone IN ('red', 'yellow')),
           count(*) FILTER (WHERE s.zone IN ('red', 'yellow')) FROM s
    UNION ALL SELECT 453, 'early_warning', 'red+yellow', NULL, 'recall',
           count(*) FILTER (WHERE s.churned AND s.zone IN ('red', 'yellow'))::float8
           / nullif(count(*) FILTER (WHERE s.churned), 0), count(*) FILTER (WHERE s.churned) FROM s
    UNION ALL SELECT 454, 'early_warning', 'recency_baseline', NULL, 'auc', churn.auc(s.overdue, s.churned), count(*)
           FROM s
    UNION ALL SELECT 455, 'early_warning', 'recency_baseline', NULL, 'precision', avg(base.churned::int), count(*)
           FROM base
    UNION ALL SELECT 456, 'early_warning', 'lost', NULL, 'red', count(*)::float8, count(*)
           FROM pg_temp.churn_bt_score w WHERE w.lifecycle = 'lost' AND w.zone = 'red'
    UNION ALL
    -- leavers warned (share, and >= 14 days before the last purchase) and
    -- the lead-time distribution, of the model and of the baseline
    SELECT ls.o + v.o, 'lead_time', ls.label, NULL, v.m, v.v, v.n
    FROM ls, LATERAL (VALUES
        (0, 'leavers', ls.leavers::float8, ls.leavers),
        (1, 'warned_share', ls.warned::float8 / nullif(ls.leavers, 0), ls.warned),
        (2, 'warned_14_days_before_share', ls.early::float8 / nullif(ls.leavers, 0), ls.early),
        (3, 'median_days', ls.q[2], ls.warned), (4, 'p25_days', ls.q[1], ls.warned),
        (5, 'p75_days', ls.q[3], ls.warned), (6, 'mean_days', ls.mean, ls.warned)) v(o, m, v, n)
    UNION ALL SELECT 507, 'lead_time', 'red+yellow', NULL, 'scoring_dates',
           count(*)::float8, count(*) FROM pg_temp.churn_bt_fit
    UNION ALL
    SELECT 600, 'first_warning', to_char(dates.d, 'YYYY-MM-DD'), dates.k, 'customers',
           count(fw.customer_id)::float8 / nullif((SELECT count(*) FROM firstw), 0), count(fw.customer_id)
    FROM dates LEFT JOIN firstw fw ON fw.first_warning = dates.d GROUP BY dates.k, dates.d
$$;
COMMENT ON FUNCTION churn.backtest_report_early(date, int, int, int, date) IS
    'backtest internal: early-warning rows of a report (active population, recency baseline, leavers and lead time)';

-- Backtest as long-format rows a BI tool can chart (0.3.0: events, weekly
-- dates, the early-warning label and its measures, model auto by default).
CREATE FUNCTION churn.backtest(source regclass, as_of date, horizon_days int, model text DEFAULT 'auto',
                               customer_col name DEFAULT 'customer_id', ts_col name DEFAULT 'ts',
                               amount_col name DEFAULT 'amount', policy text DEFAULT NULL,
                               window_days int DEFAULT 90, lookback int DEFAULT 6,
                               value_basis text DEFAULT 'predicted', observed_until date DEFAULT NULL,
                               events regclass DEFAULT NULL, event_customer_col name DEFAULT 'customer_id',
                               event_ts_col name DEFAULT 'ts', event_kind_col name DEFAULT 'kind',
                               event_rating_col name DEFAULT 'rating', step_days int DEFAULT 30,
                               gone_days int DEFAULT NULL)
    RETURNS TABLE (section text, label text, bin int, metric text, value float8, n bigint)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
#variable_conflict use_column
DECLARE
    obs     date;
    skipped bigint;
BEGIN
    skipped := churn.backtest_run(source, as_of, horizon_days, model, customer_col, ts_col, amount_col, policy,
                                  window_days, lookback, value_basis, observed_until, events,
                                  ARRAY[event_customer_col, event_ts_col, event_kind_col, event_rating_col],
                                  step_days, gone_days);
    SELECT coalesce(observed_until, max(dd.day)) INTO obs
    FROM pg_temp.churn_bt_hist hh, churn.history_days(hh.h) dd WHERE dd.purchases > 0;
    IF NOT EXISTS (SELECT 1 FROM pg_temp.churn_bt_score s WHERE s.as_of_date = as_of AND s.churned IS NOT NULL) THEN
        RAISE EXCEPTION 'as_of + horizon_days + gone_days (%) is after the end of the data (%): no outcome to compare with',
            as_of + horizon_days + coalesce(gone_days, horizon_days), obs
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pick an earlier as_of or a shorter horizon, or pass observed_until if the data runs longer than its last purchase.';
    END IF;
    RETURN QUERY
    SELECT r.section, r.label, r.bin, r.metric, r.value, r.n
    FROM (SELECT * FROM churn.backtest_report(model, as_of, horizon_days, lookback, step_days)
          UNION ALL
          SELECT * FROM churn.backtest_report_early(as_of, lookback, step_days, coalesce(gone_days, horizon_days), obs)
          UNION ALL
          SELECT 8, 'summary', model, NULL, 'events_skipped', skipped::float8, skipped) r
    ORDER BY r.ord, r.bin, r.label, r.metric;
    PERFORM churn.backtest_drop();
END
$$;
COMMENT ON FUNCTION churn.backtest(regclass, date, int, text, name, name, name, text, int, int, text, date,
                                   regclass, name, name, name, name, int, int) IS
    'backtest report: summary, fits, zones, codes, lift, calibration, early warning against the recency baseline, lead times';
