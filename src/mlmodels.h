/*-------------------------------------------------------------------------
 *
 * mlmodels.h
 *	  Logistic regression (logit.c) and XGBoost scoring (xgb.c).
 *
 * churn.logit_fit trains a logistic regression by Newton/IRLS inside one
 * aggregate call; churn.xgb_load compiles an XGBoost JSON model into the flat
 * varlena type churn.xgb that churn.xgb_predict and churn.xgb_contrib score;
 * churn.xgb_fit (xgb_train.c) trains one with the XGBoost library.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHURN_MLMODELS_H
#define CHURN_MLMODELS_H

#include "churn_warning.h"

/* Most features a logistic regression accepts (the Hessian is k x k). */
#define LOGIT_MAX_FEATURES 4096

/* churn.xgb_load(jsonb) (xgb.c): churn.xgb_fit compiles its model with it. */
extern Datum xgb_load(PG_FUNCTION_ARGS);

/* Define the GUCs of churn.xgb_fit (xgb_train.c); called from _PG_init. */
extern void XgbFitInit(void);
extern void LogitFitInit(void);

#endif							/* CHURN_MLMODELS_H */
