-- churn_warning install script, part 934 (0.3.0): the capture queues have
-- no index.
--
-- Every captured transaction adds a queue row at commit, and the index on
-- pipeline_id made all writers of a source insert the same key at the same
-- (rightmost) leaf page of one btree: with 4 clients of single-row
-- INSERTs, capture cost the writers 1.15-1.16x their throughput with the
-- index, 1.10-1.11x with a BRIN index, 1.04-1.11x with none (pgbench,
-- bench/capture_cost.sh).  The shop's checkout comes first, so the queues
-- are read by a scan: a refresh takes its pipeline's rows off the queue
-- (churn.pipeline_queue_take), which a refresh empties for its pipeline, so
-- the queue holds what the pipelines captured since their last refreshes.
-- A pipeline paused for long keeps capturing; its rows are scanned by the
-- others' refreshes until it is resumed or dropped (docs/performance.md).
DROP INDEX churn.pipeline_queue_pipeline;
DROP INDEX churn.pipeline_event_queue_pipeline;
