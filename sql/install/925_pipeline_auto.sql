-- churn_warning install script, part 925 (0.3.0): pipelines with model
-- 'auto' (the default).  The refresh keeps a champion, a versioned model
-- in churn.model named <pipeline>_auto_v<N>, trained by churn.auto_train on
-- the pipeline's own histories and events.  Every retrain_days days a
-- challenger is trained; it replaces the champion only when it is not worse
-- out of time: its validation AUC (trained on the older dates, measured on
-- the newest labelled one) against the champion's AUC on that same date,
-- which the champion never saw.  The run history says which model scored
-- and why.

ALTER TABLE churn.pipeline
    ADD COLUMN auto_model text,
    ADD COLUMN auto_trained_on date,
    ADD COLUMN retrain_days int NOT NULL DEFAULT 7 CHECK (retrain_days BETWEEN 1 AND 365);
COMMENT ON COLUMN churn.pipeline.auto_model IS 'model auto: the champion''s name in churn.model';
COMMENT ON COLUMN churn.pipeline.auto_trained_on IS 'model auto: the day a challenger was last trained (or tried)';
COMMENT ON COLUMN churn.pipeline.retrain_days IS 'model auto: days between trainings of a challenger';
ALTER TABLE churn.pipeline_run ADD COLUMN model_used text, ADD COLUMN model_note text;
COMMENT ON COLUMN churn.pipeline_run.model_used IS 'the model that scored the run (a name in churn.model, or the pipeline''s own BG/NBD)';
COMMENT ON COLUMN churn.pipeline_run.model_note IS 'why that model scored: champion kept, challenger won or lost, or why none could be trained';

-- A model is one a pipeline can use: bgnbd, auto, or a registered model
-- whose features a pipeline computes.
CREATE OR REPLACE FUNCTION churn.pipeline_check_model(model text) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    reg churn.model;
    fname text;
BEGIN
    IF model IN ('bgnbd', 'auto') THEN
        RETURN;
    END IF;
    SELECT * INTO reg FROM churn.model m WHERE m.name = pipeline_check_model.model;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown model "%"', model
            USING ERRCODE = 'undefined_object',
                  HINT = 'Use auto, bgnbd or the name of a model registered in churn.model (churn.register_rules(''rules'') registers the default rule model).';
    END IF;
    IF reg.kind IN ('logit', 'xgb', 'rules') THEN
        FOREACH fname IN ARRAY reg.feature_names LOOP
            IF array_position(churn.auto_feature_names(), fname) IS NULL THEN
                RAISE EXCEPTION 'model "%" uses the feature "%", which a pipeline cannot compute', model, fname
                    USING ERRCODE = 'feature_not_supported',
                          HINT = 'A pipeline computes churn.auto_feature_names(): the features of churn.feature_names() and the BG/NBD outputs.';
            END IF;
        END LOOP;
    END IF;
END
$$;

-- Train a challenger on the pipeline's histories and events; NULL and the
-- reason when none can be trained.
CREATE FUNCTION churn.pipeline_auto_train(p churn.pipeline, today date, OUT cand churn.model, OUT note text)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    CREATE TEMP TABLE churn_auto_input ON COMMIT DROP AS
    SELECT c.customer_id, c.history AS h, c.engagement AS e FROM churn.pipeline_customer c
    WHERE c.pipeline_id = p.pipeline_id AND c.history IS NOT NULL;
    BEGIN
        cand := churn.auto_train(p.name || '_auto', today, p.horizon_days, NULL, p.window_days, p.policy);
    EXCEPTION WHEN OTHERS THEN
        note := format('no model could be trained on the history up to %s: %s', today, SQLERRM);
        cand := NULL;
    END;
    DROP TABLE pg_temp.churn_auto_input;
END
$$;
COMMENT ON FUNCTION churn.pipeline_auto_train(churn.pipeline, date) IS
    'pipeline internal: a challenger auto model trained on the pipeline''s histories and events, or NULL and why';

-- Step 2 for model auto: the champion, retrained every retrain_days days.
-- bgm scores while no model can be trained yet.
CREATE FUNCTION churn.pipeline_auto(p churn.pipeline, today date, bgm churn.model,
                                    OUT scorer churn.model, OUT changed boolean, OUT note text)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    cur    churn.model;
    cand   churn.model;
    a_cur  float8;
    a_new  float8;
    n      int;
    t      record;
BEGIN
    changed := false;
    SELECT * INTO cur FROM churn.model m WHERE m.name = p.auto_model;
    IF cur.name IS NOT NULL AND p.auto_trained_on > today - p.retrain_days THEN
        scorer := cur;
        note := format('auto: champion %s (%s) since %s; next training on %s', cur.name, cur.kind,
                       p.auto_trained_on, p.auto_trained_on + p.retrain_days);
        RETURN;
    END IF;
    UPDATE churn.pipeline SET auto_trained_on = today WHERE pipeline_id = p.pipeline_id;
    t := churn.pipeline_auto_train(p, today);
    cand := t.cand;
    note := t.note;
    IF cand.kind IS NULL THEN
        scorer := CASE WHEN cur.name IS NOT NULL THEN cur ELSE bgm END;
        note := 'auto: ' || note || CASE WHEN cur.name IS NOT NULL THEN format('; champion %s keeps scoring', cur.name)
                                          ELSE '; the pipeline''s BG/NBD scores meanwhile' END;
        RETURN;
    END IF;
    a_new := ((cand.metrics -> 'validation_auc') ->> (cand.metrics ->> 'champion'))::float8;
    IF cur.name IS NOT NULL THEN
        SELECT churn.auc(churn.model_score(cur, r.f, r.e), r.y) INTO a_cur
        FROM pg_temp.churn_auto_rows r WHERE r.k = 0 AND r.y IS NOT NULL;
        IF a_new < a_cur THEN
            scorer := cur;
            note := format('auto: champion %s kept: AUC %s against the challenger''s %s (%s) on the newest labelled date',
                           cur.name, round(a_cur::numeric, 4), round(a_new::numeric, 4), cand.metrics ->> 'champion');
            RETURN;
        END IF;
    END IF;
    SELECT count(*) + 1 INTO n FROM churn.model m WHERE m.name LIKE p.name || '\_auto\_v%';
    cand.name := format('%s_auto_v%s', p.name, n);
    cand.registered_by := (SELECT r.rolname FROM pg_roles r WHERE r.oid = p.owner);
    cand.metrics := cand.metrics || jsonb_build_object('pipeline', p.name, 'pipeline_id', p.pipeline_id, 'replaced', cur.name,
                                                       'replaced_auc', round(a_cur::numeric, 4));
    INSERT INTO churn.model SELECT cand.*;
    UPDATE churn.pipeline SET auto_model = cand.name WHERE pipeline_id = p.pipeline_id;
    scorer := cand;
    changed := true;
    note := format('auto: %s (%s) is the new champion: %s%s', cand.name, cand.metrics ->> 'champion',
                   coalesce('validation AUC ' || round(a_new::numeric, 4), 'no labelled history to validate on yet'),
                   CASE WHEN cur.name IS NOT NULL
                        THEN format(' against %s''s %s', cur.name, round(a_cur::numeric, 4)) ELSE '' END);
END
$$;
COMMENT ON FUNCTION churn.pipeline_auto(churn.pipeline, date, churn.model) IS
    'pipeline internal: the auto champion of a refresh, retrained every retrain_days days; says which model scores and why';

REVOKE EXECUTE ON FUNCTION churn.pipeline_auto_train(churn.pipeline, date),
    churn.pipeline_auto(churn.pipeline, date, churn.model) FROM PUBLIC;
