-- churn_warning install script, part 933 (0.3.0): the capture queues are
-- unlogged, like the histories they feed (part 900).  A captured row is a
-- copy of a source row, and the queue only matters together with the
-- stored histories: crash recovery empties both, and the next refresh of
-- every pipeline then reads its relations whole (churn.pipeline_execute:
-- "lost").  So the queue need not be WAL-logged, and the writer's commit
-- no longer pays for the queue row's WAL (bench/capture_cost.sh).  A
-- standby has neither, and a promoted one reads whole the same way.
ALTER TABLE churn.pipeline_queue SET UNLOGGED;
ALTER TABLE churn.pipeline_event_queue SET UNLOGGED;
COMMENT ON TABLE churn.pipeline_queue IS
    'pipeline internal: purchases inserted into pipeline sources since their last refresh (rebuild = the source was updated, deleted from or truncated); unlogged (0.3.0): emptied with the histories by crash recovery, after which refreshes read whole';
