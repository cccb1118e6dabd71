-- churn_warning install script, part 820: backtests.
--
-- churn.backtest reads a purchase table, goes back to a past date, fits the
-- chosen model on what was known then, scores and tiers every customer, and
-- reports what happened after that date as long-format rows a BI tool can
-- chart.  churn.backtest_scores returns the per-customer rows behind it.
-- Both call churn.backtest_run, which leaves its work in temp tables
-- pg_temp.churn_bt_* (dropped again before the caller returns).

-- Signed log transform of the 19 purchase features, the logistic model's
-- inputs (heavy-tailed counts and amounts become well-scaled).
CREATE FUNCTION churn.backtest_logit_x(f churn.features) RETURNS float8[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT ARRAY(SELECT sign(u.e) * ln(1 + abs(u.e))
                 FROM unnest((churn.feature_vector(f, NULL, 0))[1:19]) WITH ORDINALITY u(e, i)
                 ORDER BY u.i)
$$;
COMMENT ON FUNCTION churn.backtest_logit_x(churn.features) IS
    'backtest internal: sign(v) * ln(1 + |v|) of the 19 purchase features of churn.feature_vector (NULL filled with 0)';

-- Standardise a vector with per-element means and standard deviations
-- (an element whose standard deviation is 0 becomes 0).
CREATE FUNCTION churn.backtest_zscore(v float8[], mu float8[], sd float8[]) RETURNS float8[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT ARRAY(SELECT CASE WHEN sd[i] > 0 THEN (v[i] - mu[i]) / sd[i] ELSE 0 END
                 FROM generate_subscripts(v, 1) i ORDER BY i)
$$;
COMMENT ON FUNCTION churn.backtest_zscore(float8[], float8[], float8[]) IS
    'backtest internal: (v - mu) / sd element by element, 0 where sd = 0';

-- Drop the backtest's temp tables that exist (quietly: no pg_temp schema
-- may exist yet).
CREATE FUNCTION churn.backtest_drop() RETURNS void
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['churn_bt_hist', 'churn_bt_feat', 'churn_bt_fit', 'churn_bt_score', 'churn_bt_train',
                                'churn_bt_rule'] LOOP
        IF to_regclass('pg_temp.' || t) IS NOT NULL THEN
            EXECUTE format('DROP TABLE pg_temp.%I', t);
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION churn.backtest_drop() IS
    'backtest internal: drops the temp tables pg_temp.churn_bt_* of this session';

-- The work of a backtest: validate, read the source, fit at every scoring
-- date on what was known then, score and tier.  Leaves
-- pg_temp.churn_bt_score (one row per customer and scoring date) and
-- pg_temp.churn_bt_fit (one row per scoring date) for the caller.
CREATE FUNCTION churn.backtest_run(source regclass, as_of date, horizon_days int, model text,
                                   customer_col name, ts_col name, amount_col name, policy text,
                                   window_days int, lookback int, value_basis text, observed_until date)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    kind       text;
    reg        churn.model;
    col        name;
    typ        oid;
    ts_type    oid;
    cat        "char";
    ts_expr    text;
    first_day  date;
    last_day   date;
    obs        date;
    dates      date[];
    d          date;
    bg         churn.bgnbd;
    gg         churn.gg;
    lg         churn.logit;
    mu         float8[];
    sd         float8[];
    tr_date    date;
    tr_h       int;
    tr_rows    bigint;
    tr_rate    float8;
    value_ok   boolean;
    fname      text;
    vec_fill   float8;
    rs         text;
    i          int;
BEGIN
    -- arguments
    IF source IS NULL OR as_of IS NULL OR horizon_days IS NULL OR model IS NULL OR customer_col IS NULL
       OR ts_col IS NULL OR amount_col IS NULL OR policy IS NULL OR window_days IS NULL OR lookback IS NULL
       OR value_basis IS NULL THEN
        RAISE EXCEPTION 'backtest arguments must not be NULL (only observed_until may be)'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
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

    -- the model: a built-in name, else a registered model
    IF model IN ('rules', 'bgnbd', 'logit') THEN
        kind := model;
    ELSE
        SELECT * INTO reg FROM churn.model mo WHERE mo.name = backtest_run.model;
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
        vec_fill := CASE WHEN reg.kind = 'logit' THEN 0 END;
    END IF;

    -- the source: columns exist, have usable types, and the caller may read them
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
    -- an unknown tier policy fails here, with churn.warning_tier's own error
    PERFORM churn.warning_tier(0.5, 0, policy);
    ts_expr := CASE WHEN ts_type = 'date'::regtype THEN format('%I', ts_col)
                    ELSE format('%I::timestamptz', ts_col) END;

    -- histories, one per customer
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
    obs := coalesce(observed_until, last_day);

    -- scoring dates: as_of and lookback earlier dates 30 days apart
    dates := ARRAY(SELECT as_of - 30 * k FROM generate_series(0, lookback) k ORDER BY k);
    CREATE TEMP TABLE churn_bt_feat ON COMMIT DROP AS
    SELECT hh.customer_id, dd.d AS as_of_date, ff AS f, churn.feature_vector(ff) AS fv,
           greatest(0, coalesce((churn.features(hh.h, dd.d, 365)).recent_days
                                * (churn.features(hh.h, dd.d, 365)).recent_avg_spend, 0)) AS spend_365,
           CASE WHEN dd.d + horizon_days <= obs THEN churn.churned(hh.h, dd.d, horizon_days) END AS churned
    FROM pg_temp.churn_bt_hist hh
    CROSS JOIN unnest(dates) dd(d)
    CROSS JOIN LATERAL churn.features(hh.h, dd.d, window_days) ff
    WHERE ff.first_purchase IS NOT NULL;

    CREATE TEMP TABLE churn_bt_fit (as_of_date date, bg churn.bgnbd, gg churn.gg,
                                    lg churn.logit, mu float8[], sd float8[], train_as_of date,
                                    train_horizon int, train_rows bigint, train_rate float8,
                                    value_ok boolean) ON COMMIT DROP;

    FOREACH d IN ARRAY dates LOOP
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_temp.churn_bt_feat WHERE as_of_date = d);
        bg := NULL; gg := NULL; lg := NULL; mu := NULL; sd := NULL;
        tr_date := NULL; tr_h := NULL; tr_rows := NULL; tr_rate := NULL; value_ok := false;

        -- BG/NBD (weeks): the model 'bgnbd', and predicted annual value
        IF kind = 'bgnbd' OR value_basis = 'predicted' THEN
            BEGIN
                bg := (SELECT churn.bgnbd_fit((f).x, (f).t_x / 7, (f).t / 7)
                       FROM pg_temp.churn_bt_feat WHERE as_of_date = d);
            EXCEPTION WHEN OTHERS THEN
                IF kind = 'bgnbd' AND d = as_of THEN
                    RAISE EXCEPTION 'backtest: BG/NBD cannot be fitted at %: %', d, SQLERRM
                        USING ERRCODE = SQLSTATE;
                END IF;
                bg := NULL;
            END;
        END IF;
        IF value_basis = 'predicted' AND (bg).converged THEN
            BEGIN
                gg := (SELECT churn.gg_fit((f).x, (f).repeat_avg_spend)
                              FILTER (WHERE (f).x > 0 AND (f).repeat_avg_spend > 0)
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

        IF kind = 'bgnbd' AND bg IS NULL THEN
            CONTINUE;
        END IF;

        -- logistic regression: trained on features at d - h with labels over
        -- (d - h, d], all known at d; h is the horizon, shortened to half the
        -- purchase history before d when the history is shorter than 2 horizons
        IF kind = 'logit' THEN
            tr_h := least(horizon_days, (d - first_day) / 2);
            IF tr_h < 1 THEN
                IF d = as_of THEN
                    RAISE EXCEPTION 'backtest: too little history before % to train the logistic model', d
                        USING ERRCODE = 'invalid_parameter_value',
                              HINT = format('The first purchase is on %s.', first_day);
                END IF;
                CONTINUE;
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
                lg := (SELECT churn.logit_fit(t.y, churn.backtest_zscore(t.v, mu, sd), 1.0)
                       FROM pg_temp.churn_bt_train t);
                IF lg IS NULL THEN
                    RAISE EXCEPTION 'no training rows' USING ERRCODE = 'data_exception';
                END IF;
            EXCEPTION WHEN OTHERS THEN
                IF d = as_of THEN
                    RAISE EXCEPTION 'backtest: the logistic model cannot be trained at % (horizon % days): %',
                        tr_date, tr_h, SQLERRM USING ERRCODE = SQLSTATE;
                END IF;
                DROP TABLE pg_temp.churn_bt_train;
                CONTINUE;
            END;
            DROP TABLE pg_temp.churn_bt_train;
        END IF;

        INSERT INTO pg_temp.churn_bt_fit
        VALUES (d, bg, gg, lg, mu, sd, tr_date, tr_h, tr_rows, tr_rate, value_ok);
    END LOOP;

    -- the rule model, set-based (the same noisy-OR as churn.rule_score, whose
    -- per-row SQL function calls would dominate the run time)
    IF kind = 'rules' OR reg.kind = 'rules' THEN
        rs := CASE WHEN kind = 'rules' THEN 'default' ELSE reg.ruleset END;
        IF NOT EXISTS (SELECT 1 FROM churn.rules r WHERE r.ruleset = rs) THEN
            RAISE EXCEPTION 'ruleset "%" does not exist', rs USING ERRCODE = 'undefined_object';
        END IF;
        CREATE TEMP TABLE churn_bt_rule ON COMMIT DROP AS
        SELECT f.customer_id, f.as_of_date,
               1 - coalesce(exp(sum(ln(greatest(1 - r.weight, 1e-300))) FILTER (WHERE r.rule IS NOT NULL)), 1) AS p
        FROM pg_temp.churn_bt_feat f
        LEFT JOIN churn.rules r
          ON r.ruleset = rs
         AND CASE r.op WHEN '<' THEN f.fv[array_position(churn.feature_names(), r.feature)] < r.threshold
                       WHEN '<=' THEN f.fv[array_position(churn.feature_names(), r.feature)] <= r.threshold
                       WHEN '>' THEN f.fv[array_position(churn.feature_names(), r.feature)] > r.threshold
                       WHEN '>=' THEN f.fv[array_position(churn.feature_names(), r.feature)] >= r.threshold
                       WHEN '=' THEN f.fv[array_position(churn.feature_names(), r.feature)] = r.threshold
                       ELSE f.fv[array_position(churn.feature_names(), r.feature)] <> r.threshold END
        GROUP BY f.customer_id, f.as_of_date;
    ELSE
        CREATE TEMP TABLE churn_bt_rule (customer_id text, as_of_date date, p float8) ON COMMIT DROP;
    END IF;

    -- scores and tiers
    CREATE TEMP TABLE churn_bt_score ON COMMIT DROP AS
    WITH s AS MATERIALIZED (
        SELECT f.customer_id, f.as_of_date, (f.f).last_purchase AS last_purchase, f.churned,
               CASE WHEN kind = 'rules' OR reg.kind = 'rules' THEN ru.p
                    WHEN kind = 'bgnbd'
                    THEN churn.bgnbd_p_churn(m.bg, horizon_days / 7.0, (f.f).x, (f.f).t_x / 7, (f.f).t / 7)
                    WHEN kind = 'logit'
                    THEN churn.logit_predict(m.lg, churn.backtest_zscore(churn.backtest_logit_x(f.f), m.mu, m.sd))
                    WHEN reg.kind = 'bgnbd'
                    THEN churn.bgnbd_p_churn(reg.bgnbd, horizon_days / reg.time_unit_days, (f.f).x,
                                             (f.f).t_x / reg.time_unit_days, (f.f).t / reg.time_unit_days)
                    WHEN reg.kind = 'pnbd'
                    THEN churn.pnbd_p_churn(reg.pnbd, horizon_days / reg.time_unit_days, (f.f).x,
                                            (f.f).t_x / reg.time_unit_days, (f.f).t / reg.time_unit_days)
                    ELSE (SELECT CASE reg.kind WHEN 'logit' THEN churn.logit_predict(reg.logit, x.x)
                                               ELSE churn.xgb_predict(reg.xgb, x.x) END
                          FROM (SELECT ARRAY(SELECT coalesce(f.fv[array_position(churn.feature_names(), fn.n)],
                                                             vec_fill)
                                             FROM unnest(reg.feature_names) WITH ORDINALITY fn(n, i)
                                             ORDER BY fn.i) AS x) x)
               END AS p_churn,
               CASE WHEN v.pv >= 0 AND v.pv < 'Infinity' THEN v.pv ELSE f.spend_365 END AS annual_value,
               CASE WHEN v.pv >= 0 AND v.pv < 'Infinity' THEN 'predicted' ELSE 'trailing_365d' END AS value_source
        FROM pg_temp.churn_bt_feat f
        JOIN pg_temp.churn_bt_fit m USING (as_of_date)
        LEFT JOIN pg_temp.churn_bt_rule ru ON ru.customer_id = f.customer_id AND ru.as_of_date = f.as_of_date
        -- predicted annual value: BG/NBD expected purchases in the next 365
        -- days times Gamma-Gamma expected spend (the population mean for
        -- customers without a positive repeat spend); NULL when unusable
        CROSS JOIN LATERAL (SELECT CASE WHEN m.value_ok THEN greatest(0,
                   churn.bgnbd_expected(m.bg, 365 / 7.0, (f.f).x, (f.f).t_x / 7, (f.f).t / 7)
                   * churn.gg_expected_spend(m.gg, CASE WHEN (f.f).repeat_avg_spend > 0 THEN (f.f).x ELSE 0 END,
                                             coalesce((f.f).repeat_avg_spend, 0))) END AS pv) v)
    SELECT s.customer_id, s.as_of_date, s.p_churn, s.annual_value, s.value_source,
           t.zone, t.level, t.code, t.value_segment, t.lead_days, s.last_purchase, s.churned
    FROM s LEFT JOIN LATERAL churn.warning_tier(s.p_churn, s.annual_value, policy) t ON true;
END
$$;
COMMENT ON FUNCTION churn.backtest_run(regclass, date, int, text, name, name, name, text, int, int, text, date) IS
    'backtest internal: fits and scores into the temp tables pg_temp.churn_bt_fit and pg_temp.churn_bt_score';

-- Per-customer rows of a backtest: score, annual value, tier and outcome
-- at as_of and at the lookback earlier dates.
CREATE FUNCTION churn.backtest_scores(source regclass, as_of date, horizon_days int, model text DEFAULT 'rules',
                                      customer_col name DEFAULT 'customer_id', ts_col name DEFAULT 'ts',
                                      amount_col name DEFAULT 'amount', policy text DEFAULT 'default',
                                      window_days int DEFAULT 90, lookback int DEFAULT 0,
                                      value_basis text DEFAULT 'predicted', observed_until date DEFAULT NULL)
    RETURNS TABLE (customer_id text, as_of_date date, p_churn float8, annual_value float8, value_source text,
                   zone text, level int, code text, value_segment text, lead_days int,
                   last_purchase date, churned boolean)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
#variable_conflict use_column
BEGIN
    PERFORM churn.backtest_run(source, as_of, horizon_days, model, customer_col, ts_col, amount_col, policy,
                               window_days, lookback, value_basis, observed_until);
    RETURN QUERY SELECT s.customer_id, s.as_of_date, s.p_churn, s.annual_value, s.value_source, s.zone, s.level,
                        s.code, s.value_segment, s.lead_days, s.last_purchase, s.churned
                 FROM pg_temp.churn_bt_score s ORDER BY s.as_of_date DESC, s.customer_id;
    PERFORM churn.backtest_drop();
END
$$;
COMMENT ON FUNCTION churn.backtest_scores(regclass, date, int, text, name, name, name, text, int, int, text, date) IS
    'per customer and scoring date: churn probability, annual value, warning tier, last purchase and the churn label';

-- The backtest: fit at a past date, score, tier, and report what happened.
CREATE FUNCTION churn.backtest(source regclass, as_of date, horizon_days int, model text DEFAULT 'rules',
                               customer_col name DEFAULT 'customer_id', ts_col name DEFAULT 'ts',
                               amount_col name DEFAULT 'amount', policy text DEFAULT 'default',
                               window_days int DEFAULT 90, lookback int DEFAULT 6,
                               value_basis text DEFAULT 'predicted', observed_until date DEFAULT NULL)
    RETURNS TABLE (section text, label text, bin int, metric text, value float8, n bigint)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
#variable_conflict use_column
DECLARE
    obs date;
BEGIN
    PERFORM churn.backtest_run(source, as_of, horizon_days, model, customer_col, ts_col, amount_col, policy,
                               window_days, lookback, value_basis, observed_until);
    IF NOT EXISTS (SELECT 1 FROM pg_temp.churn_bt_score s WHERE s.as_of_date = as_of AND s.churned IS NOT NULL) THEN
        SELECT coalesce(observed_until, max(dd.day)) INTO obs
        FROM pg_temp.churn_bt_hist hh, churn.history_days(hh.h) dd WHERE dd.purchases > 0;
        RAISE EXCEPTION 'as_of + horizon_days (%) is after the end of the data (%): no outcome to compare with',
            as_of + horizon_days, obs
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pick an earlier as_of or a shorter horizon, or pass observed_until if the data runs longer than its last purchase.';
    END IF;

    RETURN QUERY
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
    calib AS (SELECT b.* FROM unnest((SELECT churn.calibration(s.p_churn, s.churned, 10) FROM s)) b),
    -- lead time: for every churner, the first scoring date at which they were red or yellow
    firstw AS (SELECT w.customer_id, min(w.as_of_date) AS first_warning FROM pg_temp.churn_bt_score w
               WHERE w.zone IN ('red', 'yellow') GROUP BY w.customer_id),
    warn AS (SELECT s.customer_id, s.last_purchase, fw.first_warning
             FROM s LEFT JOIN firstw fw ON fw.customer_id = s.customer_id WHERE s.churned),
    lead AS (SELECT w.*, w.last_purchase - w.first_warning AS lead FROM warn w),
    dates AS (SELECT k, as_of - 30 * k AS d FROM generate_series(0, lookback) k),
    r AS (
        SELECT 1 AS ord, 'summary' AS section, model AS label, NULL::int AS bin, 'customers' AS metric,
               tot.n::float8 AS value, tot.n AS n FROM tot
        UNION ALL SELECT 2, 'summary', model, NULL, 'churn_rate', tot.pos::float8 / nullif(tot.n, 0), tot.pos FROM tot
        UNION ALL SELECT 3, 'summary', model, NULL, 'auc', churn.auc(s.p_churn, s.churned), count(*) FROM s
        UNION ALL SELECT 4, 'summary', model, NULL, 'log_loss', churn.log_loss(s.p_churn, s.churned), count(*) FROM s
        UNION ALL SELECT 5, 'summary', model, NULL, 'brier', churn.brier(s.p_churn, s.churned), count(*) FROM s
        UNION ALL SELECT 6, 'summary', model, NULL, 'mean_p', avg(s.p_churn), count(*) FROM s
        UNION ALL SELECT 7, 'summary', model, NULL, 'horizon_days', horizon_days::float8, NULL FROM tot
        UNION ALL
        -- model fits at as_of
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
            (20, 'logit', 'converged', (fit.lg).converged::int::float8)) v(o, l, m, v)
        WHERE v.v IS NOT NULL
        UNION ALL
        SELECT 40, 'value', 'annual_value', NULL, 'predicted_share',
               avg((s.value_source = 'predicted')::int), count(*) FILTER (WHERE s.value_source = 'predicted') FROM s
        UNION ALL SELECT 41, 'value', 'annual_value', NULL, 'mean', avg(s.annual_value), count(*) FROM s
        UNION ALL SELECT 42, 'value', 'annual_value', NULL, 'median',
               percentile_cont(0.5) WITHIN GROUP (ORDER BY s.annual_value), count(*) FROM s
        UNION ALL
        -- zones
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
        SELECT 400, 'calibration', NULL, c.bin, v.m, v.v, c.n
        FROM calib c, LATERAL (VALUES (1, 'predicted', c.mean_score), (2, 'observed', c.rate)) v(o, m, v)
        UNION ALL
        SELECT 500, 'lead_time', 'red+yellow', NULL, 'churners', count(*)::float8, count(*) FROM lead
        UNION ALL SELECT 501, 'lead_time', 'red+yellow', NULL, 'warned_share',
               avg((lead.first_warning IS NOT NULL)::int), count(lead.first_warning) FROM lead
        UNION ALL SELECT 502, 'lead_time', 'red+yellow', NULL, 'warned_before_last_purchase_share',
               avg((coalesce(lead.lead, 0) > 0)::int), count(*) FILTER (WHERE lead.lead > 0) FROM lead
        UNION ALL SELECT 503, 'lead_time', 'red+yellow', NULL, 'median_days',
               percentile_cont(0.5) WITHIN GROUP (ORDER BY lead.lead), count(lead.lead) FROM lead
        UNION ALL SELECT 504, 'lead_time', 'red+yellow', NULL, 'p25_days',
               percentile_cont(0.25) WITHIN GROUP (ORDER BY lead.lead), count(lead.lead) FROM lead
        UNION ALL SELECT 505, 'lead_time', 'red+yellow', NULL, 'p75_days',
               percentile_cont(0.75) WITHIN GROUP (ORDER BY lead.lead), count(lead.lead) FROM lead
        UNION ALL SELECT 506, 'lead_time', 'red+yellow', NULL, 'mean_days', avg(lead.lead), count(lead.lead) FROM lead
        UNION ALL SELECT 507, 'lead_time', 'red+yellow', NULL, 'scoring_dates',
               count(*)::float8, count(*) FROM pg_temp.churn_bt_fit
        UNION ALL
        SELECT 600, 'first_warning', to_char(dates.d, 'YYYY-MM-DD'), dates.k, 'churners',
               count(lead.customer_id)::float8 / nullif((SELECT count(*) FROM lead), 0), count(lead.customer_id)
        FROM dates LEFT JOIN lead ON lead.first_warning = dates.d GROUP BY dates.k, dates.d
    )
    SELECT r.section, r.label, r.bin, r.metric, r.value, r.n FROM r ORDER BY r.ord, r.bin, r.label, r.metric;

    PERFORM churn.backtest_drop();
END
$$;
COMMENT ON FUNCTION churn.backtest(regclass, date, int, text, name, name, name, text, int, int, text, date) IS
    'fit a churn model at a past date, score and tier every customer, report AUC, log loss, Brier, precision/recall per zone, lift, calibration and lead time as (section, label, bin, metric, value, n) rows';
