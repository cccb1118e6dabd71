/*-------------------------------------------------------------------------
 *
 * compat.c
 *	  C symbols of released versions that have since been renamed.
 *
 * The install scripts of released versions (sql/churn_warning--0.1.0.sql,
 * --0.2.0.sql, assembled from frozen parts) declare their C functions with
 * the symbol names of that release.  CREATE EXTENSION ... VERSION '0.2.0'
 * followed by ALTER EXTENSION ... UPDATE runs those scripts against this
 * library, and PostgreSQL looks every symbol up when the function is
 * created, so each old name must stay exported until no release names it.
 * The update then re-points the functions to the new names (part
 * 970_naming.sql), and nothing calls these forwards in a current install.
 *
 * One line per old symbol: it forwards the call, with the same call info,
 * to the function that now has the name the rule in CONTRIBUTING.md gives
 * ("SQL name = C symbol").  This file only grows, when a release renames a
 * symbol; a forward is removed only together with the last release whose
 * install script names it.
 *
 *-------------------------------------------------------------------------
 */
#include "churn_warning.h"

/*
 * Export old_sym as a V1 function that calls new_sym.  new_sym is declared
 * here rather than in a header: nothing else calls SQL-callable functions.
 */
#define CHURN_RENAMED(old_sym, new_sym) \
	extern Datum new_sym(PG_FUNCTION_ARGS); \
	PG_FUNCTION_INFO_V1(old_sym); \
	Datum old_sym(PG_FUNCTION_ARGS) { return new_sym(fcinfo); } \
	extern int	no_such_variable

/* Renamed in 0.3.0: the evaluation aggregates (500_eval.sql, 0.1.0). */
CHURN_RENAMED(churn_eval_rank_trans, eval_rank_trans);
CHURN_RENAMED(churn_eval_rank_combine, eval_rank_combine);
CHURN_RENAMED(churn_eval_rank_serialize, eval_rank_serialize);
CHURN_RENAMED(churn_eval_rank_deserialize, eval_rank_deserialize);
CHURN_RENAMED(churn_eval_auc_final, eval_auc_final);
CHURN_RENAMED(churn_eval_lift_final, eval_lift_final);
CHURN_RENAMED(churn_eval_logloss_trans, eval_logloss_trans);
CHURN_RENAMED(churn_eval_brier_trans, eval_brier_trans);
CHURN_RENAMED(churn_eval_mean_combine, eval_mean_combine);
CHURN_RENAMED(churn_eval_mean_serialize, eval_mean_serialize);
CHURN_RENAMED(churn_eval_mean_deserialize, eval_mean_deserialize);
CHURN_RENAMED(churn_eval_mean_final, eval_mean_final);
CHURN_RENAMED(churn_eval_calib_trans, eval_calib_trans);
CHURN_RENAMED(churn_eval_calib_combine, eval_calib_combine);
CHURN_RENAMED(churn_eval_calib_serialize, eval_calib_serialize);
CHURN_RENAMED(churn_eval_calib_deserialize, eval_calib_deserialize);
CHURN_RENAMED(churn_eval_calib_final, eval_calib_final);

/* Renamed in 0.3.0: the demo data generators (600_demo.sql, 0.1.0). */
CHURN_RENAMED(churn_demo_customers, demo_customers);
CHURN_RENAMED(churn_demo_purchases, demo_purchases);
CHURN_RENAMED(churn_demo_events, demo_events);

/* Renamed in 0.3.0: the BG/NBD and Pareto/NBD transition (300_probmodels.sql). */
CHURN_RENAMED(prob_rft_fit_trans, rft_fit_trans);

/* Renamed in 0.3.0: serializers are _serialize / _deserialize (200, 400). */
CHURN_RENAMED(rfm_cuts_serial, rfm_cuts_serialize);
CHURN_RENAMED(rfm_cuts_deserial, rfm_cuts_deserialize);
CHURN_RENAMED(logit_fit_serial, logit_fit_serialize);
CHURN_RENAMED(logit_fit_deserial, logit_fit_deserialize);
