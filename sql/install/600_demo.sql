-- churn_warning install script, part 600: demo data for a pet-supply chain.
--
-- churn.demo_stores, churn.demo_customers, churn.demo_purchases,
-- churn.demo_events (generators, deterministic by seed) and churn.demo_load
-- (creates and fills a demo schema).  See docs/reference/demo.md.

-- The ten stores of the demo chain (store_id matches the generators).
CREATE FUNCTION churn.demo_stores()
RETURNS TABLE (store_id int, name text, city text, opened date, size text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES
        (1,  'Happy Paws Central',        'Riverton',   date '2012-03-01', 'large'),
        (2,  'Happy Paws Harbour',        'Riverton',   date '2014-06-15', 'large'),
        (3,  'Happy Paws Northgate Mall', 'Northgate',  date '2015-09-01', 'large'),
        (4,  'Happy Paws Old Town',       'Millbrook',  date '2016-04-20', 'medium'),
        (5,  'Happy Paws Lakeside',       'Lakeside',   date '2017-02-10', 'medium'),
        (6,  'Happy Paws Westfield',      'Westfield',  date '2018-05-05', 'medium'),
        (7,  'Happy Paws Station Square', 'Riverton',   date '2019-08-30', 'medium'),
        (8,  'Happy Paws Hillcrest',      'Hillcrest',  date '2020-11-12', 'small'),
        (9,  'Happy Paws Bayview',        'Bayview',    date '2021-07-01', 'small'),
        (10, 'Happy Paws Airport Plaza',  'Northgate',  date '2022-10-01', 'small')
$$;
COMMENT ON FUNCTION churn.demo_stores() IS 'the ten stores of the churn_warning demo chain';

CREATE FUNCTION churn.demo_customers(customers int, seed int DEFAULT 42,
                                     start_date date DEFAULT '2023-01-01',
                                     end_date date DEFAULT '2024-12-31')
RETURNS TABLE (customer_id bigint, store_id int, signup date, segment text,
               value_tier text, will_churn boolean, churn_date date)
AS 'MODULE_PATHNAME', 'churn_demo_customers'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 10000;
COMMENT ON FUNCTION churn.demo_customers(int, int, date, date) IS
    'demo customers 1..customers of a pet-supply chain, deterministic by seed';

CREATE FUNCTION churn.demo_purchases(customers int, seed int DEFAULT 42,
                                     start_date date DEFAULT '2023-01-01',
                                     end_date date DEFAULT '2024-12-31')
RETURNS TABLE (customer_id bigint, store_id int, ts timestamptz, amount numeric(12,2))
AS 'MODULE_PATHNAME', 'churn_demo_purchases'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 250000;
COMMENT ON FUNCTION churn.demo_purchases(int, int, date, date) IS
    'demo purchases (sales, returns as negative amounts, zero-amount rows) of churn.demo_customers, deterministic by seed';

CREATE FUNCTION churn.demo_events(customers int, seed int DEFAULT 42,
                                  start_date date DEFAULT '2023-01-01',
                                  end_date date DEFAULT '2024-12-31')
RETURNS TABLE (customer_id bigint, ts timestamptz, kind text, rating int)
AS 'MODULE_PATHNAME', 'churn_demo_events'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 500000;
COMMENT ON FUNCTION churn.demo_events(int, int, date, date) IS
    'demo interaction events (visit, login, review, complaint, interaction) of churn.demo_customers, deterministic by seed';

-- Worker of churn.demo_load (PL/pgSQL cannot have an input and an output
-- parameter of the same name, so the public function is a SQL wrapper).
CREATE FUNCTION churn.demo_load_impl(target_schema text, n_customers int, seed int,
                                     start_date date, end_date date, replace boolean,
                                     OUT o_customers bigint, OUT o_purchases bigint,
                                     OUT o_events bigint, OUT o_churners bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    existing text;
BEGIN
    IF target_schema IS NULL OR target_schema = '' THEN
        RAISE EXCEPTION 'target_schema must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF target_schema IN ('churn', 'pg_catalog', 'information_schema') OR target_schema LIKE 'pg\_%' THEN
        RAISE EXCEPTION 'target_schema must not be %', target_schema
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use a schema of its own, such as churn_demo.';
    END IF;
    IF n_customers IS NULL OR n_customers <= 0 THEN
        RAISE EXCEPTION 'customers must be positive'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = format('The value was %s.', n_customers);
    END IF;
    IF seed IS NULL OR start_date IS NULL OR end_date IS NULL OR replace IS NULL THEN
        RAISE EXCEPTION 'seed, start_date, end_date and replace must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF end_date < start_date THEN
        RAISE EXCEPTION 'end_date must not be before start_date'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('start_date is %s, end_date is %s.', start_date, end_date);
    END IF;

    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = target_schema) THEN
        EXECUTE format('CREATE SCHEMA %I', target_schema);
    END IF;
    IF replace THEN
        EXECUTE format('DROP TABLE IF EXISTS %1$I.events, %1$I.purchases, %1$I.customers, %1$I.stores',
                       target_schema);
    ELSE
        SELECT string_agg(c.relname, ', ' ORDER BY c.relname) INTO existing
        FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = target_schema
          AND c.relname IN ('stores', 'customers', 'purchases', 'events');
        IF existing IS NOT NULL THEN
            RAISE EXCEPTION 'schema % already has demo tables: %', target_schema, existing
                USING ERRCODE = 'duplicate_table',
                      HINT = 'Pass replace => true to drop and reload them, or choose another schema.';
        END IF;
    END IF;

    EXECUTE format($$
        CREATE TABLE %1$I.stores (
            store_id int PRIMARY KEY,
            name     text NOT NULL,
            city     text NOT NULL,
            opened   date NOT NULL,
            size     text NOT NULL
        )$$, target_schema);
    EXECUTE format('INSERT INTO %I.stores SELECT * FROM churn.demo_stores()', target_schema);

    EXECUTE format($$
        CREATE TABLE %1$I.customers (
            customer_id bigint NOT NULL,
            store_id    int NOT NULL,
            signup      date NOT NULL,
            segment     text NOT NULL,
            value_tier  text NOT NULL,
            will_churn  boolean NOT NULL,
            churn_date  date
        )$$, target_schema);
    EXECUTE format('INSERT INTO %I.customers SELECT * FROM churn.demo_customers($1, $2, $3, $4)',
                   target_schema)
        USING n_customers, seed, start_date, end_date;
    GET DIAGNOSTICS o_customers = ROW_COUNT;

    EXECUTE format($$
        CREATE TABLE %1$I.purchases (
            purchase_id bigint GENERATED ALWAYS AS IDENTITY,
            customer_id bigint NOT NULL,
            store_id    int NOT NULL,
            ts          timestamptz NOT NULL,
            amount      numeric(12,2) NOT NULL
        )$$, target_schema);
    EXECUTE format('INSERT INTO %I.purchases (customer_id, store_id, ts, amount)
                    SELECT * FROM churn.demo_purchases($1, $2, $3, $4)', target_schema)
        USING n_customers, seed, start_date, end_date;
    GET DIAGNOSTICS o_purchases = ROW_COUNT;

    EXECUTE format($$
        CREATE TABLE %1$I.events (
            event_id    bigint GENERATED ALWAYS AS IDENTITY,
            customer_id bigint NOT NULL,
            ts          timestamptz NOT NULL,
            kind        text NOT NULL CHECK (kind IN ('visit', 'login', 'review', 'complaint', 'interaction')),
            rating      int CHECK (rating BETWEEN 1 AND 5),
            CHECK ((kind = 'review') = (rating IS NOT NULL))
        )$$, target_schema);
    EXECUTE format('INSERT INTO %I.events (customer_id, ts, kind, rating)
                    SELECT * FROM churn.demo_events($1, $2, $3, $4)', target_schema)
        USING n_customers, seed, start_date, end_date;
    GET DIAGNOSTICS o_events = ROW_COUNT;

    -- keys and indexes after the load (faster than maintaining them row by row)
    EXECUTE format($$
        ALTER TABLE %1$I.customers ADD PRIMARY KEY (customer_id),
            ADD FOREIGN KEY (store_id) REFERENCES %1$I.stores;
        ALTER TABLE %1$I.purchases ADD PRIMARY KEY (purchase_id),
            ADD FOREIGN KEY (customer_id) REFERENCES %1$I.customers,
            ADD FOREIGN KEY (store_id) REFERENCES %1$I.stores;
        CREATE INDEX ON %1$I.purchases (customer_id, ts);
        ALTER TABLE %1$I.events ADD PRIMARY KEY (event_id),
            ADD FOREIGN KEY (customer_id) REFERENCES %1$I.customers;
        CREATE INDEX ON %1$I.events (customer_id, ts);
        ANALYZE %1$I.stores, %1$I.customers, %1$I.purchases, %1$I.events;
        $$, target_schema);

    EXECUTE format('SELECT count(*) FILTER (WHERE will_churn) FROM %I.customers', target_schema)
        INTO o_churners;
END
$fn$;
COMMENT ON FUNCTION churn.demo_load_impl(text, int, int, date, date, boolean) IS
    'implementation of churn.demo_load';

CREATE FUNCTION churn.demo_load(target_schema text DEFAULT 'churn_demo',
                                customers int DEFAULT 10000,
                                seed int DEFAULT 42,
                                start_date date DEFAULT '2023-01-01',
                                end_date date DEFAULT '2024-12-31',
                                replace boolean DEFAULT false)
RETURNS TABLE (customers bigint, purchases bigint, events bigint, churners bigint)
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM churn.demo_load_impl($1, $2, $3, $4, $5, $6)
$$;
COMMENT ON FUNCTION churn.demo_load(text, int, int, date, date, boolean) IS
    'create schema target_schema with demo tables stores, customers, purchases, events and fill them';
