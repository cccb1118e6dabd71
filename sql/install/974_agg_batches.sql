-- churn_warning install script, part 974 (0.3.0): the day-log aggregates
-- (history_agg, engagement_agg) give the planner the figures that make a
-- GROUP BY over many customers aggregate in cache-sized batches, in one
-- process.
--
-- Why (measured at 1M customers, 9.8M purchases in random order, work_mem
-- 64MB; docs/performance.md, "The default plan"): every input row of a hash
-- aggregate touches its group's entry and, for a state passed by reference,
-- the state too.  With a table of a million groups neither is in the CPU
-- cache, and the misses, not the work, set the time: the bare aggregate took
-- 7.8-8.8 s and count(*) 4.2-4.9 s, while the same aggregate run in batches
-- of about 15,000 customers took 3.8-5.8 s.  A hash aggregate keeps at most
-- (hash memory / the planner's state size) groups in memory before it
-- partitions the rest of its input to disk, so:
--
--   SSPACE = 8192, what PostgreSQL assumes for an aggregate with an internal
--   state (array_agg, numeric sum).  A 10-day state takes about 300 bytes;
--   the figure is not the state's size but the batch it sets: about 15,000
--   groups at work_mem 64MB.  2048 and 4096 made batches too large at 64MB
--   (4.5-9.5 s); at work_mem 4MB any figure from 1024 up makes the planner
--   sort instead for a million customers and more: at 1M a little slower
--   than the old plan (5.5 against 4.5-5.1 s), at 5M faster (28.9 against
--   44.2 s).  bench/agg_batches.sh measures the figures side by side.
--
--   COST 100 on the combine functions: in a parallel plan every worker sees
--   almost every customer, so each customer's partial states are sorted,
--   gathered and combined again (at 1M customers, 2.6M partial states: 3.2 s
--   of a 5.9 s query).  A combine expands a state and merges two day logs,
--   about 100 ns against a few ns for an operator, and the planner sizes a
--   partial state at 32 bytes where a real one takes 100 to 300.  With the
--   cost the planner aggregates a GROUP BY customer in one process, and it
--   still splits aggregates with few groups across workers.
--
-- CREATE OR REPLACE AGGREGATE keeps the aggregates' identity (grants,
-- dependencies); only SSPACE changes.

CREATE OR REPLACE AGGREGATE churn.history_agg(pg_catalog.timestamptz, pg_catalog.float8) (
    SFUNC = churn.history_trans, STYPE = churn.history, SSPACE = 8192,
    COMBINEFUNC = churn.history_combine, PARALLEL = SAFE);
CREATE OR REPLACE AGGREGATE churn.history_agg(pg_catalog.date, pg_catalog.float8) (
    SFUNC = churn.history_trans, STYPE = churn.history, SSPACE = 8192,
    COMBINEFUNC = churn.history_combine, PARALLEL = SAFE);
CREATE OR REPLACE AGGREGATE churn.history_agg(pg_catalog.timestamptz, pg_catalog.numeric) (
    SFUNC = churn.history_trans, STYPE = churn.history, SSPACE = 8192,
    COMBINEFUNC = churn.history_combine, PARALLEL = SAFE);
CREATE OR REPLACE AGGREGATE churn.history_agg(pg_catalog.date, pg_catalog.numeric) (
    SFUNC = churn.history_trans, STYPE = churn.history, SSPACE = 8192,
    COMBINEFUNC = churn.history_combine, PARALLEL = SAFE);
ALTER FUNCTION churn.history_combine(churn.history, churn.history) COST 100;

-- engagement_agg keeps the same kind of state (src/daylog.c), so the same
-- figures (measured as well; docs/performance.md).
CREATE OR REPLACE AGGREGATE churn.engagement_agg(ts pg_catalog.timestamptz, kind pg_catalog.text) (
    SFUNC = churn.engagement_trans, STYPE = churn.engagement, SSPACE = 8192,
    COMBINEFUNC = churn.engagement_combine, PARALLEL = SAFE);
CREATE OR REPLACE AGGREGATE churn.engagement_agg(ts pg_catalog.timestamptz, kind pg_catalog.text, rating pg_catalog.float8) (
    SFUNC = churn.engagement_trans, STYPE = churn.engagement, SSPACE = 8192,
    COMBINEFUNC = churn.engagement_combine, PARALLEL = SAFE);
ALTER FUNCTION churn.engagement_combine(churn.engagement, churn.engagement) COST 100;
