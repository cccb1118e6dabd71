-- churn_warning install script, part 950 (0.3.0): the visibility check of
-- the pipeline views with a fixed search_path.
--
-- In 0.2.0 churn.pipeline_visible had no SET search_path and was inlined
-- into the caller's query, where an = operator of the caller's schema
-- could be chosen.  Every function a view uses now fixes its search_path.

CREATE OR REPLACE FUNCTION churn.pipeline_visible(owner oid) RETURNS boolean
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE WHEN pg_catalog.pg_has_role('churn_reader', 'USAGE') THEN true
                WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) $1) THEN false
                ELSE pg_catalog.pg_has_role($1, 'USAGE') END
$$;
