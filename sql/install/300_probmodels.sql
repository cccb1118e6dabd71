-- churn_warning install script, part 300: probabilistic buy-till-you-die
-- models (BG/NBD, Pareto/NBD, Gamma-Gamma).  C code: src/bgnbd.c,
-- src/paretonbd.c, src/gammagamma.c, src/probmodels_common.c.
--
-- Inputs follow the BTYD conventions: x = repeat purchase days, t_x = time
-- from the first to the last purchase day, t = time from the first purchase
-- day to the end of observation, all durations in one unit of the caller's
-- choice (days, weeks); model parameters alpha and beta are in that unit.

-- ---------------------------------------------------------------- types

CREATE TYPE churn.bgnbd AS (
    r          float8,
    alpha      float8,
    a          float8,
    b          float8,
    loglik     float8,
    n          float8,
    iterations int,
    converged  boolean
);
COMMENT ON TYPE churn.bgnbd IS
    'fitted BG/NBD model (Fader, Hardie & Lee 2005): lambda ~ Gamma(r, alpha), dropout p ~ Beta(a, b); loglik at the estimate, n = total weight';

CREATE TYPE churn.pnbd AS (
    r          float8,
    alpha      float8,
    s          float8,
    beta       float8,
    loglik     float8,
    n          float8,
    iterations int,
    converged  boolean
);
COMMENT ON TYPE churn.pnbd IS
    'fitted Pareto/NBD model (Schmittlein, Morrison & Colombo 1987): lambda ~ Gamma(r, alpha), mu ~ Gamma(s, beta)';

CREATE TYPE churn.gg AS (
    p          float8,
    q          float8,
    v          float8,
    loglik     float8,
    n          float8,
    iterations int,
    converged  boolean
);
COMMENT ON TYPE churn.gg IS
    'fitted Gamma-Gamma spend model (Fader & Hardie 2013): spend ~ Gamma(p, nu), nu ~ Gamma(q, v)';

-- ---------------------------------------------------- shared aggregate support

CREATE FUNCTION churn.prob_fit_combine(internal, internal)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'prob_fit_combine'
    LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION churn.prob_fit_serialize(internal)
    RETURNS bytea
    AS 'MODULE_PATHNAME', 'prob_fit_serialize'
    LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION churn.prob_fit_deserialize(bytea, internal)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'prob_fit_deserialize'
    LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

-- ---------------------------------------------------------------- BG/NBD

-- transition shared by bgnbd_fit and pnbd_fit: both collect (x, t_x, t[, weight])
CREATE FUNCTION churn.rft_fit_trans(internal, int, float8, float8)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'prob_rft_fit_trans'
    LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION churn.rft_fit_trans(internal, int, float8, float8, float8)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'prob_rft_fit_trans'
    LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION churn.bgnbd_fit_final(internal)
    RETURNS churn.bgnbd
    AS 'MODULE_PATHNAME', 'bgnbd_fit_final'
    LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE churn.bgnbd_fit(x int, t_x float8, t float8) (
    SFUNC = churn.rft_fit_trans,
    STYPE = internal,
    FINALFUNC = churn.bgnbd_fit_final,
    COMBINEFUNC = churn.prob_fit_combine,
    SERIALFUNC = churn.prob_fit_serialize,
    DESERIALFUNC = churn.prob_fit_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE churn.bgnbd_fit(int, float8, float8) IS
    'maximum likelihood BG/NBD fit; rows with a NULL input are skipped; NULL for no rows';

CREATE AGGREGATE churn.bgnbd_fit(x int, t_x float8, t float8, weight float8) (
    SFUNC = churn.rft_fit_trans,
    STYPE = internal,
    FINALFUNC = churn.bgnbd_fit_final,
    COMBINEFUNC = churn.prob_fit_combine,
    SERIALFUNC = churn.prob_fit_serialize,
    DESERIALFUNC = churn.prob_fit_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE churn.bgnbd_fit(int, float8, float8, float8) IS
    'weighted maximum likelihood BG/NBD fit (weight = number of customers with this x, t_x, t)';

CREATE FUNCTION churn.bgnbd_p_alive(m churn.bgnbd, x int, t_x float8, t float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'bgnbd_p_alive'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.bgnbd_p_alive(churn.bgnbd, int, float8, float8) IS
    'BG/NBD probability that the customer is alive at t (1 when x = 0)';

CREATE FUNCTION churn.bgnbd_expected(m churn.bgnbd, horizon float8, x int, t_x float8, t float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'bgnbd_expected'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.bgnbd_expected(churn.bgnbd, float8, int, float8, float8) IS
    'BG/NBD conditional expected number of purchases in (t, t + horizon]';

CREATE FUNCTION churn.bgnbd_expected_new(m churn.bgnbd, t float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'bgnbd_expected_new'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.bgnbd_expected_new(churn.bgnbd, float8) IS
    'BG/NBD expected number of repeat purchases in (0, t] for a newly acquired customer';

CREATE FUNCTION churn.bgnbd_p_churn(m churn.bgnbd, horizon float8, x int, t_x float8, t float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'bgnbd_p_churn'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.bgnbd_p_churn(churn.bgnbd, float8, int, float8, float8) IS
    'BG/NBD probability of no purchase in (t, t + horizon]';

CREATE FUNCTION churn.bgnbd_loglik(m churn.bgnbd, x int, t_x float8, t float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'bgnbd_loglik'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.bgnbd_loglik(churn.bgnbd, int, float8, float8) IS
    'BG/NBD log-likelihood of one customer';

-- ------------------------------------------------------------- Pareto/NBD

CREATE FUNCTION churn.pnbd_fit_final(internal)
    RETURNS churn.pnbd
    AS 'MODULE_PATHNAME', 'pnbd_fit_final'
    LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE churn.pnbd_fit(x int, t_x float8, t float8) (
    SFUNC = churn.rft_fit_trans,
    STYPE = internal,
    FINALFUNC = churn.pnbd_fit_final,
    COMBINEFUNC = churn.prob_fit_combine,
    SERIALFUNC = churn.prob_fit_serialize,
    DESERIALFUNC = churn.prob_fit_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE churn.pnbd_fit(int, float8, float8) IS
    'maximum likelihood Pareto/NBD fit; rows with a NULL input are skipped; NULL for no rows';

CREATE AGGREGATE churn.pnbd_fit(x int, t_x float8, t float8, weight float8) (
    SFUNC = churn.rft_fit_trans,
    STYPE = internal,
    FINALFUNC = churn.pnbd_fit_final,
    COMBINEFUNC = churn.prob_fit_combine,
    SERIALFUNC = churn.prob_fit_serialize,
    DESERIALFUNC = churn.prob_fit_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE churn.pnbd_fit(int, float8, float8, float8) IS
    'weighted maximum likelihood Pareto/NBD fit';

CREATE FUNCTION churn.pnbd_p_alive(m churn.pnbd, x int, t_x float8, t float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'pnbd_p_alive'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.pnbd_p_alive(churn.pnbd, int, float8, float8) IS
    'Pareto/NBD probability that the customer is alive at t';

CREATE FUNCTION churn.pnbd_expected(m churn.pnbd, horizon float8, x int, t_x float8, t float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'pnbd_expected'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.pnbd_expected(churn.pnbd, float8, int, float8, float8) IS
    'Pareto/NBD conditional expected number of purchases in (t, t + horizon]';

CREATE FUNCTION churn.pnbd_expected_new(m churn.pnbd, t float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'pnbd_expected_new'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.pnbd_expected_new(churn.pnbd, float8) IS
    'Pareto/NBD expected number of repeat purchases in (0, t] for a newly acquired customer';

CREATE FUNCTION churn.pnbd_p_churn(m churn.pnbd, horizon float8, x int, t_x float8, t float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'pnbd_p_churn'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.pnbd_p_churn(churn.pnbd, float8, int, float8, float8) IS
    'Pareto/NBD probability of no purchase in (t, t + horizon]';

CREATE FUNCTION churn.pnbd_loglik(m churn.pnbd, x int, t_x float8, t float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'pnbd_loglik'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.pnbd_loglik(churn.pnbd, int, float8, float8) IS
    'Pareto/NBD log-likelihood of one customer';

-- ------------------------------------------------------------ Gamma-Gamma

CREATE FUNCTION churn.gg_fit_trans(internal, int, float8)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'gg_fit_trans'
    LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION churn.gg_fit_trans(internal, int, float8, float8)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'gg_fit_trans'
    LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION churn.gg_fit_final(internal)
    RETURNS churn.gg
    AS 'MODULE_PATHNAME', 'gg_fit_final'
    LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE churn.gg_fit(x int, avg_spend float8) (
    SFUNC = churn.gg_fit_trans,
    STYPE = internal,
    FINALFUNC = churn.gg_fit_final,
    COMBINEFUNC = churn.prob_fit_combine,
    SERIALFUNC = churn.prob_fit_serialize,
    DESERIALFUNC = churn.prob_fit_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE churn.gg_fit(int, float8) IS
    'maximum likelihood Gamma-Gamma fit on customers with x > 0 (x = 0 and NULL rows are skipped)';

CREATE AGGREGATE churn.gg_fit(x int, avg_spend float8, weight float8) (
    SFUNC = churn.gg_fit_trans,
    STYPE = internal,
    FINALFUNC = churn.gg_fit_final,
    COMBINEFUNC = churn.prob_fit_combine,
    SERIALFUNC = churn.prob_fit_serialize,
    DESERIALFUNC = churn.prob_fit_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE churn.gg_fit(int, float8, float8) IS
    'weighted maximum likelihood Gamma-Gamma fit';

CREATE FUNCTION churn.gg_expected_spend(m churn.gg, x int, avg_spend float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'gg_expected_spend'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.gg_expected_spend(churn.gg, int, float8) IS
    'Gamma-Gamma conditional expected spend per transaction (population mean when x = 0)';

CREATE FUNCTION churn.gg_loglik(m churn.gg, x int, avg_spend float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'gg_loglik'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.gg_loglik(churn.gg, int, float8) IS
    'Gamma-Gamma log density of a customer''s average spend over x > 0 transactions';

CREATE FUNCTION churn.predicted_value(m churn.bgnbd, g churn.gg, horizon float8,
                                      x int, t_x float8, t float8, avg_spend float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'predicted_value'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.predicted_value(churn.bgnbd, churn.gg, float8, int, float8, float8, float8) IS
    'expected purchases in (t, t + horizon] (BG/NBD) times expected spend (Gamma-Gamma), undiscounted';
