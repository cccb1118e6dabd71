-- churn.demo_customers, churn.demo_purchases, churn.demo_events, churn.demo_load
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET extra_float_digits = 0;

-- determinism: same seed -> identical rows; another seed -> different rows
SELECT md5(string_agg(c::text, '|' ORDER BY customer_id)) = (SELECT md5(string_agg(c::text, '|' ORDER BY customer_id)) FROM churn.demo_customers(300, 7) c) AS customers_same,
       md5(string_agg(c::text, '|' ORDER BY customer_id)) <> (SELECT md5(string_agg(c::text, '|' ORDER BY customer_id)) FROM churn.demo_customers(300, 8) c) AS customers_differ
FROM churn.demo_customers(300, 7) c;
SELECT md5(string_agg(p::text, '|' ORDER BY customer_id, ts)) = (SELECT md5(string_agg(p::text, '|' ORDER BY customer_id, ts)) FROM churn.demo_purchases(300, 7) p) AS purchases_same,
       md5(string_agg(p::text, '|' ORDER BY customer_id, ts)) <> (SELECT md5(string_agg(p::text, '|' ORDER BY customer_id, ts)) FROM churn.demo_purchases(300, 8) p) AS purchases_differ
FROM churn.demo_purchases(300, 7) p;
SELECT md5(string_agg(e::text, '|' ORDER BY customer_id, ts)) = (SELECT md5(string_agg(e::text, '|' ORDER BY customer_id, ts)) FROM churn.demo_events(300, 7) e) AS events_same,
       md5(string_agg(e::text, '|' ORDER BY customer_id, ts)) <> (SELECT md5(string_agg(e::text, '|' ORDER BY customer_id, ts)) FROM churn.demo_events(300, 8) e) AS events_differ
FROM churn.demo_events(300, 7) e;
-- a customer's rows do not depend on how many customers are generated
SELECT (SELECT md5(string_agg(p::text, '|' ORDER BY customer_id, ts)) FROM churn.demo_purchases(50) p)
     = (SELECT md5(string_agg(p::text, '|' ORDER BY customer_id, ts)) FROM churn.demo_purchases(400) p WHERE customer_id <= 50) AS prefix_stable;
-- rows come out ordered by customer and time, with unique (customer_id, ts)
SELECT bool_and(ok) AS ordered FROM (
  SELECT (customer_id, ts) > lag((customer_id, ts)) OVER (ORDER BY n) OR lag(customer_id) OVER (ORDER BY n) IS NULL AS ok
  FROM churn.demo_purchases(300) WITH ORDINALITY AS p(customer_id, store_id, ts, amount, n)) s;

-- a small run: exact row counts
SELECT count(*) AS customers, count(*) FILTER (WHERE will_churn) AS churners FROM churn.demo_customers(200);
SELECT count(*) AS purchases FROM churn.demo_purchases(200);
SELECT kind, count(*) FROM churn.demo_events(200) GROUP BY kind ORDER BY kind;
SELECT * FROM churn.demo_customers(5);
SELECT * FROM churn.demo_purchases(1) LIMIT 5;
SELECT * FROM churn.demo_events(1) LIMIT 5;
SELECT * FROM churn.demo_stores() ORDER BY store_id LIMIT 3;

-- load a schema
SELECT * FROM churn.demo_load('cw_demo_test', 2000, 42);
SET search_path = cw_demo_test, public;
SELECT count(*) AS stores FROM stores;
\d purchases
-- loading twice needs replace => true
SELECT * FROM churn.demo_load('cw_demo_test', 100);
SELECT * FROM churn.demo_load('cw_demo_test', 2000, 42, replace => true);

-- churn share within the documented 20%..33%
SELECT avg(will_churn::int) BETWEEN 0.20 AND 0.33 AS churn_share_ok FROM customers;
-- every value tier, segment and store occurs
SELECT value_tier, count(*) > 0 AS present FROM customers GROUP BY 1 ORDER BY 1;
SELECT segment, count(*) > 0 AS present FROM customers GROUP BY 1 ORDER BY 1;
SELECT count(DISTINCT store_id) AS stores_used FROM purchases;
-- churn_date is the day after the last purchase; nothing of a churner on or after it
SELECT count(*) FILTER (WHERE c.churn_date <> s.last_day + 1) AS wrong_churn_date,
       count(*) FILTER (WHERE c.churn_date > '2024-12-31') AS churn_after_end
FROM customers c JOIN (SELECT customer_id, max(ts::date) AS last_day FROM purchases GROUP BY 1) s USING (customer_id)
WHERE c.will_churn;
SELECT count(*) AS churner_rows_after_churn FROM customers c JOIN purchases p USING (customer_id)
WHERE c.will_churn AND p.ts::date >= c.churn_date;
SELECT count(*) AS churner_events_after_churn FROM customers c JOIN events e USING (customer_id)
WHERE c.will_churn AND e.ts::date >= c.churn_date;
SELECT count(*) FILTER (WHERE will_churn <> (churn_date IS NOT NULL)) AS inconsistent FROM customers;
-- non-churners keep buying until the end: most bought in the last 90 days
SELECT avg((s.last_day >= '2024-10-01')::int) > 0.9 AS active_until_end
FROM customers c JOIN (SELECT customer_id, max(ts::date) AS last_day FROM purchases GROUP BY 1) s USING (customer_id)
WHERE NOT c.will_churn;
-- purchases are in the period and not before sign-up
SELECT min(ts::date) >= '2023-01-01' AND max(ts::date) <= '2024-12-31' AS in_period FROM purchases;
SELECT count(*) AS before_signup FROM purchases p JOIN customers c USING (customer_id) WHERE p.ts::date < c.signup;

-- churners' frequency drop: purchase days in the 90 days before churn_date
-- against the 90 days before that, for churners with 180 days of history
WITH w AS (
  SELECT c.customer_id,
         count(DISTINCT p.ts::date) FILTER (WHERE p.ts::date >= c.churn_date - 90) AS recent,
         count(DISTINCT p.ts::date) FILTER (WHERE p.ts::date < c.churn_date - 90 AND p.ts::date >= c.churn_date - 180) AS prior,
         avg(p.amount) FILTER (WHERE p.amount > 0 AND p.ts::date >= c.churn_date - 90) AS recent_aov,
         avg(p.amount) FILTER (WHERE p.amount > 0 AND p.ts::date < c.churn_date - 90 AND p.ts::date >= c.churn_date - 180) AS prior_aov
  FROM customers c JOIN purchases p USING (customer_id)
  WHERE c.will_churn AND c.churn_date - 180 >= greatest(c.signup, '2023-01-01')
  GROUP BY 1)
SELECT sum(recent)::float8 / sum(prior) <= 0.7 AS frequency_drop_30,
       avg(recent_aov / prior_aov) <= 0.85 AS order_value_drop_15
FROM w;
-- the same comparison for non-churners at 2024-10-01 shows no drop
SELECT count(DISTINCT (customer_id, ts::date)) FILTER (WHERE ts >= '2024-10-01')::float8
     / count(DISTINCT (customer_id, ts::date)) FILTER (WHERE ts < '2024-10-01' AND ts >= '2024-07-03') > 0.9 AS no_drop
FROM purchases JOIN customers USING (customer_id) WHERE NOT will_churn AND signup < '2024-01-01';
-- logins and member interactions stop before churn; bad reviews and complaints
SELECT avg(c.churn_date - l.last_login) >= 20 AS logins_stop
FROM customers c JOIN (SELECT customer_id, max(ts::date) AS last_login FROM events WHERE kind = 'login' GROUP BY 1) l USING (customer_id)
WHERE c.will_churn;
SELECT c.will_churn,
       avg((EXISTS (SELECT 1 FROM events e WHERE e.customer_id = c.customer_id AND e.kind = 'review' AND e.rating <= 2
                    AND e.ts::date >= coalesce(c.churn_date, '2025-01-01') - 60))::int) > 0.2 AS bad_review_share_over_20pct
FROM customers c GROUP BY 1 ORDER BY 1;

-- amounts: never NULL, a small share of returns (negative) and zero rows
SELECT count(*) FILTER (WHERE amount IS NULL) AS null_amounts,
       avg((amount < 0)::int) BETWEEN 0.01 AND 0.04 AS returns_share_ok,
       avg((amount = 0)::int) BETWEEN 0.002 AND 0.012 AS zero_share_ok,
       min(amount) > -100000 AND max(amount) < 1000000 AS amounts_in_range
FROM purchases;
-- value tiers agree with the realised annual spend of customers active all period
WITH s AS (SELECT c.value_tier, sum(p.amount) / 2 AS annual
           FROM customers c JOIN purchases p USING (customer_id)
           WHERE NOT c.will_churn AND c.signup < '2023-01-01' GROUP BY c.customer_id, c.value_tier)
SELECT avg((CASE WHEN annual > 100000 THEN 'high' WHEN annual >= 10000 THEN 'medium' ELSE 'low' END = value_tier)::int) >= 0.95 AS tiers_agree
FROM s;
-- ratings only for reviews
SELECT kind, min(rating), max(rating), count(rating) = count(*) AS all_rated, count(rating) = 0 AS none_rated FROM events GROUP BY 1 ORDER BY 1;
-- weekend and December peaks
SELECT avg(CASE WHEN extract(isodow FROM ts) IN (6, 7) THEN 1 ELSE 0 END) > 2.0 / 7 AS weekend_peak FROM purchases;
SELECT extract(month FROM ts) = 12 AS december_is_peak FROM purchases WHERE ts >= '2024-01-01'
GROUP BY extract(month FROM ts) ORDER BY count(*) DESC LIMIT 1;
RESET search_path;

-- timestamps are local wall-clock times in the session TimeZone
SET TimeZone = 'America/New_York';
SELECT count(*) FILTER (WHERE extract(hour FROM ts) BETWEEN 8 AND 23) = count(*) AS store_hours_local
FROM churn.demo_purchases(100);
SET TimeZone = 'UTC';

-- bad input
SELECT * FROM churn.demo_customers(0);
SELECT * FROM churn.demo_purchases(-5);
SELECT * FROM churn.demo_events(10, 42, '2024-01-01', '2023-01-01');
SELECT * FROM churn.demo_purchases(10, 42, '2023-01-01', 'infinity');
SELECT * FROM churn.demo_load('cw_demo_bad', 0);
SELECT * FROM churn.demo_load('cw_demo_bad', 10, 42, '2024-01-01', '2023-01-01');
SELECT * FROM churn.demo_load('churn', 10);
-- NULL arguments of the generators: no rows (STRICT)
SELECT count(*) FROM churn.demo_purchases(NULL);
-- a period too short to churn in: no churners, still purchases
SELECT count(*) FILTER (WHERE will_churn) AS churners FROM churn.demo_customers(100, 1, '2024-01-01', '2024-03-31');
SELECT count(*) > 0 AS has_purchases FROM churn.demo_purchases(100, 1, '2024-01-01', '2024-03-31');

DROP SCHEMA cw_demo_test CASCADE;
