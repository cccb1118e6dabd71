/*-------------------------------------------------------------------------
 *
 * mlmodels.h
 *	  Logistic regression (logit.c) and XGBoost scoring (xgb.c).
 *
 * churn.logit_fit trains a logistic regression by Newton/IRLS inside one
 * aggregate call; churn.xgb_load compiles an XGBoost JSON model into the flat
 * varlena type churn.xgb that churn.xgb_predict and churn.xgb_contrib score.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHURN_MLMODELS_H
#define CHURN_MLMODELS_H

#include "churn_warning.h"

/* Most features a logistic regression accepts (the Hessian is k x k). */
#define LOGIT_MAX_FEATURES 4096

#endif							/* CHURN_MLMODELS_H */
