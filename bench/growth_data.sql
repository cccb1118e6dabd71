-- The growth benches' source (bench/growth.sh, bench/refresh_floor.sh,
-- bench/agg_batches.sh): the demo generator's purchases of :customers
-- customers over the last 730 days, thinned to about :per rows per customer
-- (about 16.5 before thinning), stored in random order, analyzed.
-- public.u(k, seed) is a uniform [0, 1) draw from a hash, for the benches'
-- own draws.
SET work_mem = '1GB';
CREATE FUNCTION public.u(k bigint, seed bigint) RETURNS float8
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ((hashint8extended(k, seed) >> 11) + 4503599627370496)::float8 / 9007199254740992 $$;
CREATE TABLE purchases (customer_id text NOT NULL, ts timestamptz NOT NULL, amount numeric(12,2));
INSERT INTO purchases (customer_id, ts, amount)
SELECT customer_id::text, ts, amount
FROM churn.demo_purchases(:customers, 42, current_date - 729, current_date) d
WHERE u(hashtext(d.customer_id::text || d.ts::text || d.amount::text), 21) < least(1, :per / 16.5)
ORDER BY hashtext(d.customer_id::text || d.ts::text || d.amount::text);
VACUUM ANALYZE purchases;
RESET work_mem;
