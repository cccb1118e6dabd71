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
                                          value_basis text, observed_until date) RETURNS void
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
END
$$;
COMMENT ON FUNCTION churn.backtest_check_args(date, int, int, int, text, date) IS
    'backtest step 1: argument checks';

-- Step 2: the model: a built-in name (rules, bgnbd, logit) or a registered
-- model, which scores over the backtest's horizon.
CREATE FUNCTION churn.backtest_model(model text, horizon_days int, OUT kind text, OUT reg churn.model)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    fname text;
BEGIN
    IF model IN ('rules', 'bgnbd', 'logit') THEN
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
                  HINT = 'Use rules, bgnbd, logit or the name of a model registered in churn.model.';
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
    'backtest step 2: the built-in model kind, or the registered model row (scoring over the backtest''s horizon)';

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

-- Step 5: features, trailing spend and outcome of every customer at every
-- scoring date (pg_temp.churn_bt_feat).
CREATE FUNCTION churn.backtest_features(dates date[], window_days int, horizon_days int, obs date) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    CREATE TEMP TABLE churn_bt_feat ON COMMIT DROP AS
    SELECT hh.customer_id, dd.d AS as_of_date, ff AS f,
           greatest(0, coalesce((churn.features(hh.h, dd.d, 365)).recent_days
                                * (churn.features(hh.h, dd.d, 365)).recent_avg_spend, 0)) AS spend_365,
           CASE WHEN dd.d + horizon_days <= obs THEN churn.churned(hh.h, dd.d, horizon_days) END AS churned
    FROM pg_temp.churn_bt_hist hh
    CROSS JOIN unnest(dates) dd(d)
    CROSS JOIN LATERAL churn.features(hh.h, dd.d, window_days) ff
    WHERE ff.first_purchase IS NOT NULL;
END
$$;
COMMENT ON FUNCTION churn.backtest_features(date[], int, int, date) IS
    'backtest step 5: features and outcomes at every scoring date into pg_temp.churn_bt_feat';

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
                    ELSE churn.model_score(m.scorer, f.f) END AS p_churn,
               CASE WHEN v.pv >= 0 AND v.pv < 'Infinity' THEN v.pv ELSE f.spend_365 END AS annual_value,
               CASE WHEN v.pv >= 0 AND v.pv < 'Infinity' THEN 'predicted' ELSE 'trailing_365d' END AS value_source
        FROM pg_temp.churn_bt_feat f
        JOIN pg_temp.churn_bt_fit m USING (as_of_date)
        -- predicted annual value: BG/NBD expected purchases in the next 365
        -- days times Gamma-Gamma expected spend (the population mean for
        -- customers without a positive repeat spend); NULL when unusable
        CROSS JOIN LATERAL (SELECT CASE WHEN m.value_ok THEN greatest(0,
                   churn.model_expected(m.value_model, f.f, 365)
                   * churn.gg_expected_spend(m.gg, CASE WHEN (f.f).repeat_avg_spend > 0 THEN (f.f).x ELSE 0 END,
                                             coalesce((f.f).repeat_avg_spend, 0))) END AS pv) v)
    SELECT s.customer_id, s.as_of_date, s.p_churn, s.annual_value, s.value_source,
           t.zone, t.level, t.code, t.value_segment, t.lead_days, s.last_purchase, s.churned, s.lifecycle
    FROM (SELECT s.*, churn.lifecycle(s.f, s.annual_value, policy) AS lifecycle FROM s) s
    LEFT JOIN LATERAL churn.lifecycle_tier(churn.warning_tier(s.p_churn, s.annual_value, policy), s.lifecycle) t
      ON true;
END
$$;
COMMENT ON FUNCTION churn.backtest_score(text) IS
    'backtest step 7: score, value and tier every customer at every scoring date into pg_temp.churn_bt_score';

-- The work of a backtest: the steps above.  Leaves pg_temp.churn_bt_score
-- (one row per customer and scoring date) and pg_temp.churn_bt_fit (one row
-- per scoring date) for the caller.
CREATE OR REPLACE FUNCTION churn.backtest_run(source regclass, as_of date, horizon_days int, model text,
                                              customer_col name, ts_col name, amount_col name, policy text,
                                              window_days int, lookback int, value_basis text, observed_until date)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    mo     record;
    rd     record;
    fv     record;
    fl     record;
    ts_expr text;
    dates  date[];
    d      date;
BEGIN
    IF source IS NULL OR as_of IS NULL OR horizon_days IS NULL OR model IS NULL OR customer_col IS NULL
       OR ts_col IS NULL OR amount_col IS NULL OR policy IS NULL OR window_days IS NULL OR lookback IS NULL
       OR value_basis IS NULL THEN
        RAISE EXCEPTION 'backtest arguments must not be NULL (only observed_until may be)'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM churn.backtest_check_args(as_of, horizon_days, window_days, lookback, value_basis, observed_until);
    mo := churn.backtest_model(model, horizon_days);
    ts_expr := churn.backtest_check_source(source, customer_col, ts_col, amount_col);
    -- an unknown tier policy fails here, with churn.warning_tier's own error
    PERFORM churn.warning_tier(0.5, 0, policy);
    rd := churn.backtest_read(source, customer_col, ts_expr, amount_col, as_of);

    -- scoring dates: as_of and lookback earlier dates 30 days apart
    dates := ARRAY(SELECT as_of - 30 * k FROM generate_series(0, lookback) k ORDER BY k);
    PERFORM churn.backtest_features(dates, window_days, horizon_days, coalesce(observed_until, rd.last_day));
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
END
$$;

-- Per-customer rows of a backtest (0.3.0: with the lifecycle stage).
DROP FUNCTION churn.backtest_scores(regclass, date, int, text, name, name, name, text, int, int, text, date);
CREATE FUNCTION churn.backtest_scores(source regclass, as_of date, horizon_days int, model text DEFAULT 'rules',
                                      customer_col name DEFAULT 'customer_id', ts_col name DEFAULT 'ts',
                                      amount_col name DEFAULT 'amount', policy text DEFAULT 'default',
                                      window_days int DEFAULT 90, lookback int DEFAULT 0,
                                      value_basis text DEFAULT 'predicted', observed_until date DEFAULT NULL)
    RETURNS TABLE (customer_id text, as_of_date date, p_churn float8, annual_value float8, value_source text,
                   zone text, level int, code text, value_segment text, lead_days int,
                   last_purchase date, churned boolean, lifecycle text)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
#variable_conflict use_column
BEGIN
    PERFORM churn.backtest_run(source, as_of, horizon_days, model, customer_col, ts_col, amount_col, policy,
                               window_days, lookback, value_basis, observed_until);
    RETURN QUERY SELECT s.customer_id, s.as_of_date, s.p_churn, s.annual_value, s.value_source, s.zone, s.level,
                        s.code, s.value_segment, s.lead_days, s.last_purchase, s.churned, s.lifecycle
                 FROM pg_temp.churn_bt_score s ORDER BY s.as_of_date DESC, s.customer_id;
    PERFORM churn.backtest_drop();
END
$$;
COMMENT ON FUNCTION churn.backtest_scores(regclass, date, int, text, name, name, name, text, int, int, text, date) IS
    'per-customer backtest rows: score, annual value, tier, lifecycle and outcome at as_of and at the lookback earlier dates';
