-- churn_warning install script, part 840 (0.3.0): model 'auto', the
-- early-warning model trained on a pipeline's or a backtest's own history.
--
-- The target is the early-warning label churn.gone_by: gone by the end of
-- the horizon (no purchase in the gone_days after as_of + horizon).
-- Training rows come from n_dates past dates td, step_days apart, whose
-- label is known by the training date (td + horizon + gone_days <= as_of),
-- for the customers who were not lost at td.  The candidates are trained
-- on all but the newest training date and compared by AUC on the newest
-- (out of time): the rule model (no training), BG/NBD (its p_churn),
-- logistic regression and XGBoost on the purchase and engagement features
-- plus the BG/NBD outputs bgnbd_p_alive and bgnbd_expected; a more complex
-- one must do strictly better.  The champion is refitted on every date and
-- returned as a churn.model row whose metrics say what was compared, what
-- was skipped and why the champion won.

-- A logit or xgb row may carry the BG/NBD model of its derived features.
ALTER TABLE churn.model DROP CONSTRAINT model_check,
    ADD CONSTRAINT model_check CHECK (
        CASE kind WHEN 'bgnbd' THEN num_nonnulls(bgnbd) = 1 AND num_nonnulls(pnbd, logit, xgb, ruleset) = 0
                  WHEN 'pnbd' THEN num_nonnulls(pnbd) = 1 AND num_nonnulls(bgnbd, logit, xgb, ruleset) = 0
                  WHEN 'logit' THEN num_nonnulls(logit) = 1 AND num_nonnulls(pnbd, xgb, ruleset) = 0
                  WHEN 'xgb' THEN num_nonnulls(xgb) = 1 AND num_nonnulls(pnbd, logit, ruleset) = 0
                  ELSE num_nonnulls(ruleset) = 1 AND num_nonnulls(bgnbd, pnbd, logit, xgb) = 0 END);
COMMENT ON COLUMN churn.model.bgnbd IS
    'the BG/NBD model of kind bgnbd; for logit and xgb the model behind the derived features bgnbd_p_alive and bgnbd_expected';

-- The features an auto model reads: every feature of churn.feature_names()
-- and the two BG/NBD outputs.
CREATE FUNCTION churn.auto_feature_names() RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.feature_names() || ARRAY['bgnbd_p_alive', 'bgnbd_expected']
$$;
COMMENT ON FUNCTION churn.auto_feature_names() IS
    'the inputs of an auto model: churn.feature_names() then bgnbd_p_alive and bgnbd_expected (over the horizon)';

-- A model row over the auto features (its kind's column still NULL): the
-- template that churn.model_input reads training vectors with.
CREATE FUNCTION churn.auto_template(kind text, bg churn.bgnbd, horizon_days int) RETURNS churn.model
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT ROW('auto', kind, bg, NULL, NULL, NULL, NULL, churn.auto_feature_names(), horizon_days, 7,
               now(), '{}', NULL, current_user)::churn.model
$$;
COMMENT ON FUNCTION churn.auto_template(text, churn.bgnbd, int) IS
    'auto internal: a model row of the kind with the auto features and its BG/NBD, without the model itself';

-- Step 1: the training rows (pg_temp.churn_auto_rows) from
-- pg_temp.churn_auto_input (customer_id text, h churn.history,
-- e churn.engagement), with the BG/NBD fitted at the newest training date.
CREATE FUNCTION churn.auto_rows(as_of date, horizon_days int, gone_days int, window_days int, policy text,
                                n_dates int, step_days int, max_rows int DEFAULT 250000) RETURNS churn.bgnbd
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    td0 date := as_of - horizon_days - gone_days;
    bg  churn.bgnbd;
    -- a large history trains on a deterministic sample of its customers, so
    -- that training costs what max_rows rows cost, whatever the size
    share float8 := least(1, max_rows::float8 / greatest(1, n_dates * (SELECT count(*) FROM pg_temp.churn_auto_input)));
BEGIN
    IF to_regclass('pg_temp.churn_auto_rows') IS NOT NULL THEN
        DROP TABLE pg_temp.churn_auto_rows;
    END IF;
    CREATE TEMP TABLE churn_auto_rows ON COMMIT DROP AS
    SELECT k, td, i.customer_id, f, churn.engagement_features(i.e, td, window_days) AS e,
           churn.gone_by(i.h, td, horizon_days, gone_days) AS y
    FROM pg_temp.churn_auto_input i
    CROSS JOIN LATERAL generate_series(0, n_dates - 1) k
    CROSS JOIN LATERAL (SELECT td0 - k * step_days AS td) d
    CROSS JOIN LATERAL (SELECT churn.features(i.h, d.td, window_days) AS f OFFSET 0) ff
    WHERE (share >= 1 OR (hashtextextended(i.customer_id, 3) & 1048575)::float8 / 1048576 < share)
      AND (ff.f).first_purchase IS NOT NULL
      AND churn.lifecycle(ff.f, greatest(0, churn.history_spend(i.h, d.td, 365)), policy) <> 'lost';
    BEGIN
        bg := (SELECT churn.bgnbd_fit((f).x, (f).t_x / 7, (f).t / 7) FROM pg_temp.churn_auto_rows WHERE k = 0);
    EXCEPTION WHEN OTHERS THEN
        bg := NULL;                 -- no derived features, no BG/NBD candidate
    END;
    RETURN bg;
END
$$;
COMMENT ON FUNCTION churn.auto_rows(date, int, int, int, text, int, int, int) IS
    'auto step 1: training rows with the early-warning label into pg_temp.churn_auto_rows (at most about max_rows: a deterministic sample of the customers); returns the BG/NBD at the newest date';

-- Step 2: the candidates, fitted on the rows of dates k >= min_k.
-- logit reads z-scored features, folded into its coefficients so that the
-- returned model reads the raw features.
CREATE FUNCTION churn.auto_fit(kind text, bg churn.bgnbd, horizon_days int, min_k int, params jsonb)
    RETURNS churn.model
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    m   churn.model := churn.auto_template(kind, bg, horizon_days);
    mu  float8[];
    sd  float8[];
    lg  churn.logit;
BEGIN
    IF kind = 'rules' THEN
        RETURN churn.model_adhoc('auto', 'default', horizon_days);
    ELSIF kind = 'bgnbd' THEN
        RETURN churn.model_adhoc('auto', bg, horizon_days);
    ELSIF kind = 'xgb' THEN
        m.xgb := (SELECT churn.xgb_fit(r.y, churn.model_input(m, r.f, r.e), params ORDER BY r.k, r.customer_id)
                  FROM pg_temp.churn_auto_rows r WHERE r.k >= min_k AND r.y IS NOT NULL);
        RETURN CASE WHEN m.xgb IS NOT NULL THEN m END;
    END IF;
    SELECT array_agg(s.m ORDER BY s.i), array_agg(s.s ORDER BY s.i) INTO mu, sd
    FROM (SELECT u.i, avg(u.v) AS m, stddev_pop(u.v) AS s
          FROM pg_temp.churn_auto_rows r, unnest(churn.model_input(m, r.f, r.e)) WITH ORDINALITY u(v, i)
          WHERE r.k >= min_k AND r.y IS NOT NULL GROUP BY u.i) s;
    lg := (SELECT churn.logit_fit(r.y, churn.backtest_zscore(churn.model_input(m, r.f, r.e), mu, sd), 1.0)
           FROM pg_temp.churn_auto_rows r WHERE r.k >= min_k AND r.y IS NOT NULL);
    -- b0 + sum b_j (x_j - mu_j) / sd_j = (b0 - sum b_j mu_j / sd_j) + sum (b_j / sd_j) x_j
    lg.coef := ARRAY[lg.coef[1] - coalesce((SELECT sum(lg.coef[i + 1] * mu[i] / sd[i])
                                             FROM generate_subscripts(mu, 1) i WHERE sd[i] > 0), 0)]
               || ARRAY(SELECT CASE WHEN sd[i] > 0 THEN lg.coef[i + 1] / sd[i] ELSE 0 END
                        FROM generate_subscripts(mu, 1) i ORDER BY i);
    m.logit := lg;
    RETURN m;
EXCEPTION WHEN OTHERS THEN
    RETURN NULL;                    -- a candidate that cannot be trained here is not a candidate
END
$$;
COMMENT ON FUNCTION churn.auto_fit(text, churn.bgnbd, int, int, jsonb) IS
    'auto step 2: one candidate (bgnbd, logit or xgb) fitted on the training rows of dates k >= min_k; NULL when it cannot be';

-- Train, compare out of time and return the champion (see the top of this
-- part).  params are XGBoost's (churn.xgb_fit).
CREATE FUNCTION churn.auto_train(name text, as_of date, horizon_days int, gone_days int DEFAULT NULL,
                                 window_days int DEFAULT 90, policy text DEFAULT 'default', n_dates int DEFAULT 8,
                                 step_days int DEFAULT 14,
                                 params jsonb DEFAULT '{"max_depth": 4, "eta": 0.1, "num_boost_round": 150, "tree_method": "hist",
                                                        "subsample": 0.8, "colsample_bytree": 0.8,
                                                        "min_child_weight": 5, "seed": 42}')
    RETURNS churn.model
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    w      int := coalesce(gone_days, horizon_days);
    bg     churn.bgnbd;
    cand   churn.model;
    best   text;
    best_auc float8;
    aucs   jsonb := '{}';
    a      float8;
    kind   text;
    champ  churn.model;
    n_rows bigint;
    n_used int;
    skipped jsonb := '{}';
BEGIN
    IF n_dates < 2 OR n_dates > 52 OR step_days < 1 OR w < 1 OR horizon_days < 1 THEN
        RAISE EXCEPTION 'auto model: n_dates must be 2..52 and step_days, horizon_days and gone_days positive'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    bg := churn.auto_rows(as_of, horizon_days, w, window_days, policy, n_dates, step_days);
    SELECT count(*) INTO n_rows FROM pg_temp.churn_auto_rows WHERE y IS NOT NULL;
    SELECT count(DISTINCT k) INTO n_used FROM pg_temp.churn_auto_rows WHERE y IS NOT NULL;
    -- the rule model needs no training: it is there when nothing else can be
    FOREACH kind IN ARRAY ARRAY['rules', 'bgnbd', 'logit', 'xgb'] LOOP
        IF kind = 'bgnbd' AND bg IS NULL THEN
            skipped := skipped || jsonb_build_object(kind, 'cannot be fitted');
            CONTINUE;
        END IF;
        cand := churn.auto_fit(kind, bg, horizon_days, 1, params);
        IF cand.kind IS NULL THEN
            skipped := skipped || jsonb_build_object(kind, 'cannot be trained on the older dates');
            CONTINUE;
        END IF;
        SELECT churn.auc(churn.model_score(cand, r.f, r.e), r.y) INTO a
        FROM pg_temp.churn_auto_rows r WHERE r.k = 0 AND r.y IS NOT NULL;
        IF a IS NULL OR a = 'NaN' THEN
            skipped := skipped || jsonb_build_object(kind, 'no labelled rows of both classes on the newest date');
            -- without validation rows only the rule model, which needs no training, can be chosen
            IF kind = 'rules' THEN
                best := kind;
                best_auc := '-Infinity';
            END IF;
            CONTINUE;
        END IF;
        aucs := aucs || jsonb_build_object(kind, round(a::numeric, 4));
        -- a more complex candidate must beat the simpler ones
        IF best IS NULL OR a > best_auc THEN
            best := kind;
            best_auc := a;
        END IF;
    END LOOP;
    IF best IS NULL THEN
        RAISE EXCEPTION 'auto model: no candidate could be trained on the history up to %', as_of
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('%s labelled training rows on %s of the %s training dates, %s days apart.', n_rows, n_used, n_dates, step_days),
                  HINT = 'Choose a model explicitly, or wait for a longer history (horizon + gone_days + the training dates).';
    END IF;
    champ := churn.auto_fit(best, bg, horizon_days, 0, params);
    champ.name := name;
    champ.metrics := jsonb_build_object('model', 'auto', 'champion', best, 'validation_auc', aucs,
                                        'reason', format('highest AUC on the newest training date (%s) among %s',
                                                         to_char(as_of - horizon_days - w, 'YYYY-MM-DD'),
                                                         (SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys(aucs) k)),
                                        'label', format('gone_by(horizon %s, gone_days %s)', horizon_days, w),
                                        'training_rows', n_rows, 'training_dates', n_used, 'step_days', step_days,
                                        'skipped', skipped, 'bgnbd_converged', (bg).converged);
    champ.description := format('auto: %s trained on the early-warning label as of %s', best, as_of);
    RETURN champ;
END
$$;
COMMENT ON FUNCTION churn.auto_train(text, date, int, int, int, text, int, int, jsonb) IS
    'the auto model: candidates bgnbd, logit and xgb trained on pg_temp.churn_auto_input, compared out of time; returns the champion row';
