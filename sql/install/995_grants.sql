-- churn_warning install script, part 995 (0.3.0): what roles may use, for
-- the objects 0.3.0 adds (part 990 for the rest; the roles exist by now).
-- churn_user reads configuration: the stores' contact capacities.
GRANT SELECT ON churn.store_capacity TO churn_user;
