-- churn_warning install script, part 200: RFM scoring and named segments.

CREATE FUNCTION churn.rfm_cuts_trans(internal, float8, int) RETURNS internal
    AS 'MODULE_PATHNAME', 'rfm_cuts_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.rfm_cuts_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'rfm_cuts_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.rfm_cuts_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'rfm_cuts_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION churn.rfm_cuts_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'rfm_cuts_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION churn.rfm_cuts_final(internal) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'rfm_cuts_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE churn.rfm_cuts(value float8, bins int) (
    SFUNC = churn.rfm_cuts_trans, STYPE = internal,
    FINALFUNC = churn.rfm_cuts_final, FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = churn.rfm_cuts_combine,
    SERIALFUNC = churn.rfm_cuts_serial, DESERIALFUNC = churn.rfm_cuts_deserial,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE churn.rfm_cuts(float8, int) IS
    'bins - 1 quantile cut points of the non-NULL values (percentile_cont interpolation)';

CREATE FUNCTION churn.rfm_bin(value float8, cuts float8[], higher_is_better boolean DEFAULT true)
    RETURNS int
    AS 'MODULE_PATHNAME', 'rfm_bin' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.rfm_bin(float8, float8[], boolean) IS
    'score 1..n of a value against n - 1 cut points; reversed when lower is better (recency)';

-- Named segments on the R score and the combined FM score (the rounded mean
-- of F and M), first match by priority.  The built-in scheme 'default' is
-- read-only so that pg_dump can keep user schemes apart from it; edit a copy
-- made with churn.rfm_copy_scheme().
CREATE TABLE churn.rfm_segments (
    scheme      text NOT NULL,
    segment     text NOT NULL,
    r_min       int  NOT NULL,
    r_max       int  NOT NULL,
    fm_min      int  NOT NULL,
    fm_max      int  NOT NULL,
    priority    int  NOT NULL,
    description text,
    builtin     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (scheme, segment),
    CHECK (r_min <= r_max AND fm_min <= fm_max)
);
COMMENT ON TABLE churn.rfm_segments IS
    'RFM segment bounds per scheme; a score pair (r, fm) gets the first segment by priority whose ranges contain it';

INSERT INTO churn.rfm_segments (scheme, segment, r_min, r_max, fm_min, fm_max, priority, description, builtin) VALUES
    ('default', 'Champions',          5, 5, 4, 5,  1, 'bought recently, buy often and spend the most', true),
    ('default', 'Loyal',              3, 4, 4, 5,  2, 'buy often and spend well; responsive to promotions', true),
    ('default', 'Potential Loyalist', 4, 5, 2, 3,  3, 'recent customers with average frequency', true),
    ('default', 'New',                5, 5, 1, 1,  4, 'bought most recently, but not often', true),
    ('default', 'Promising',          4, 4, 1, 1,  5, 'recent shoppers who have not spent much', true),
    ('default', 'Need Attention',     3, 3, 3, 3,  6, 'above-average recency, frequency and spend', true),
    ('default', 'About To Sleep',     3, 3, 1, 2,  7, 'below-average recency and frequency', true),
    ('default', 'Can''t Lose Them',   1, 2, 5, 5,  8, 'used to buy most often and spend the most, long ago', true),
    ('default', 'At Risk',            1, 2, 3, 4,  9, 'spent and bought often, but long ago', true),
    ('default', 'Hibernating',        2, 2, 1, 2, 10, 'last purchase long ago, few orders, low spend', true),
    ('default', 'Lost',               1, 1, 1, 2, 11, 'lowest recency, frequency and spend', true);

CREATE TRIGGER builtin_guard BEFORE INSERT OR UPDATE OR DELETE ON churn.rfm_segments
    FOR EACH ROW EXECUTE FUNCTION churn.builtin_guard('scheme',
        'the built-in RFM scheme "%s" cannot be changed',
        'Copy it and edit the copy: SELECT churn.rfm_copy_scheme(%L, ''my_scheme'');');
SELECT pg_catalog.pg_extension_config_dump('churn.rfm_segments', 'WHERE NOT builtin');

CREATE FUNCTION churn.rfm_copy_scheme(source text, target text) RETURNS int
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    n int;
BEGIN
    INSERT INTO churn.rfm_segments (scheme, segment, r_min, r_max, fm_min, fm_max, priority, description)
    SELECT target, segment, r_min, r_max, fm_min, fm_max, priority, description
    FROM churn.rfm_segments WHERE scheme = source;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE EXCEPTION 'RFM scheme "%" does not exist', source USING ERRCODE = 'undefined_object';
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION churn.rfm_copy_scheme(text, text) IS
    'copy an RFM segment scheme under a new name; returns the number of segments copied';

CREATE FUNCTION churn.rfm_segment(r int, f int, m int, scheme text DEFAULT 'default') RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT s.segment FROM churn.rfm_segments s
    WHERE s.scheme = $4
      AND $1 BETWEEN s.r_min AND s.r_max
      AND ($2 + $3 + 1) / 2 BETWEEN s.fm_min AND s.fm_max
    ORDER BY s.priority, s.segment
    LIMIT 1
$$;
COMMENT ON FUNCTION churn.rfm_segment(int, int, int, text) IS
    'named RFM segment of scores r, f, m (FM = rounded mean of f and m) in a scheme; NULL when no segment matches';

-- Which (r, fm) cells of a 1..n grid no segment of a scheme covers.
CREATE FUNCTION churn.rfm_uncovered(scheme text DEFAULT 'default', n int DEFAULT 5,
    OUT r int, OUT fm int) RETURNS SETOF record
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT r.r, fm.fm FROM generate_series(1, $2) r(r), generate_series(1, $2) fm(fm)
    WHERE NOT EXISTS (SELECT 1 FROM churn.rfm_segments s
                      WHERE s.scheme = $1 AND r.r BETWEEN s.r_min AND s.r_max
                        AND fm.fm BETWEEN s.fm_min AND s.fm_max)
    ORDER BY 1, 2
$$;
