-- The extension installs into schema churn and is not relocatable.
SELECT extname, extversion, extrelocatable, extnamespace::regnamespace
FROM pg_extension WHERE extname = 'churn_warning';

-- Every function that turns nested loops off also turns JIT off: a
-- disabled plan node's cost (10^10) would otherwise make PostgreSQL
-- compile each of its statements, about 0.3 s for nothing (none listed).
SELECT p.oid::regprocedure AS function
FROM pg_proc p
WHERE p.pronamespace = 'churn'::regnamespace
  AND 'enable_nestloop=off' = ANY (p.proconfig) AND NOT 'jit=off' = ANY (p.proconfig)
ORDER BY 1::text;
