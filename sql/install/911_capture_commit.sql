-- churn_warning install script, part 911 (0.3.0): capture off the write
-- path.  The capture trigger (src/capture.c, src/capture_queue.c) runs no
-- SQL: it keeps what it captures in memory for the transaction and writes
-- it to the queue just before commit.  It keeps what it knows about its
-- pipeline per backend; this trigger on churn.pipeline tells every backend
-- when that changes: a relcache invalidation of the empty table
-- churn.pipeline_capture_signal, sent at commit (one of churn.pipeline
-- itself would make every cached plan that reads it be planned again).

CREATE TABLE churn.pipeline_capture_signal ();
COMMENT ON TABLE churn.pipeline_capture_signal IS
    'pipeline internal: never holds rows; a change of churn.pipeline invalidates it in every session, which makes the capture triggers read their pipeline again';

CREATE FUNCTION churn.pipeline_config_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'pipeline_config_changed' LANGUAGE C;
COMMENT ON FUNCTION churn.pipeline_config_changed() IS
    'pipeline internal: trigger on churn.pipeline that makes the capture triggers of every session read their pipeline again (through churn.pipeline_capture_signal)';
REVOKE EXECUTE ON FUNCTION churn.pipeline_config_changed() FROM PUBLIC;

CREATE TRIGGER pipeline_config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON churn.pipeline
    FOR EACH STATEMENT EXECUTE FUNCTION churn.pipeline_config_changed();
