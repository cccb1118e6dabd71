-- churn_warning install script, part 987 (0.3.0): the rejected source rows
-- (part 921) hold customer ids, so row-level security covers them like the
-- other tables with customer rows (part 986): a role granted the table
-- directly sees the rejects of the pipelines it may see whole only (a
-- rejected row has no store).
ALTER TABLE churn.pipeline_reject ENABLE ROW LEVEL SECURITY;
CREATE POLICY store_access ON churn.pipeline_reject USING (churn.store_row_visible(pipeline_id, NULL));
