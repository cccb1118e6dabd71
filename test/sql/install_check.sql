-- The extension installs into schema churn and is not relocatable.
SELECT extname, extversion, extrelocatable, extnamespace::regnamespace
FROM pg_extension WHERE extname = 'churn_warning';
