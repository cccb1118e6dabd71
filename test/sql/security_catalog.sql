-- The catalog check of the security model (docs/security.md): every
-- SECURITY DEFINER function of the extension with its search_path and the
-- roles that may execute it, compared with this file's expected list; and
-- every SQL or PL/pgSQL function that a view of the extension uses, which
-- must fix its search_path (none may be listed in the second query).
WITH ext AS (
    SELECT d.objid FROM pg_depend d
    WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
      AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'churn_warning')
)
SELECT p.oid::regprocedure AS function, array_to_string(p.proconfig, ', ') AS config,
       (SELECT string_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END, ', '
                          ORDER BY 1)
        FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
        WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner) AS execute_by
FROM pg_proc p JOIN ext ON ext.objid = p.oid
WHERE p.prosecdef
ORDER BY 1::text;

SELECT DISTINCT c.oid::regclass::text AS view, p.oid::regprocedure::text AS function
FROM pg_rewrite r
JOIN pg_class c ON c.oid = r.ev_class AND c.relnamespace = 'churn'::regnamespace
JOIN pg_depend dep ON dep.classid = 'pg_rewrite'::regclass AND dep.objid = r.oid
                  AND dep.refclassid = 'pg_proc'::regclass
JOIN pg_proc p ON p.oid = dep.refobjid AND p.pronamespace = 'churn'::regnamespace
JOIN pg_language l ON l.oid = p.prolang AND l.lanname IN ('sql', 'plpgsql')
WHERE NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) cfg WHERE cfg LIKE 'search_path=%')
ORDER BY 1, 2;
