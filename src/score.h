/*-------------------------------------------------------------------------
 *
 * score.h
 *	  Scoring in one place (score.c): churn.model_score scores a customer
 *	  with a churn.model row of any kind.
 *
 * The per-kind scorers are the kinds' own SQL-callable C functions
 * (bgnbd_p_churn, pnbd_p_churn, logit_predict, xgb_predict) and the rule
 * model (rules.h); score.c calls them through one FmgrInfo per call site
 * so their own per-call-site caches of parsed models keep working.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHURN_SCORE_H
#define CHURN_SCORE_H

#include "churn_warning.h"
#include "utils/array.h"

/*
 * The length of a one-dimensional float8[]; when it is at most max, its
 * elements are read into x and isnull (NULL elements are missing values).
 */
extern int	ScoreReadVector(ArrayType *a, int max, double *x, bool *isnull);

/* The SQL-callable per-kind scorers (bgnbd.c, paretonbd.c, logit.c, xgb.c). */
extern Datum bgnbd_p_churn(PG_FUNCTION_ARGS);
extern Datum bgnbd_p_alive(PG_FUNCTION_ARGS);
extern Datum bgnbd_expected(PG_FUNCTION_ARGS);
extern Datum pnbd_p_churn(PG_FUNCTION_ARGS);
extern Datum pnbd_p_alive(PG_FUNCTION_ARGS);
extern Datum pnbd_expected(PG_FUNCTION_ARGS);
extern Datum logit_predict(PG_FUNCTION_ARGS);
extern Datum xgb_predict(PG_FUNCTION_ARGS);

#endif							/* CHURN_SCORE_H */
