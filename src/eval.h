/*-------------------------------------------------------------------------
 *
 * eval.h
 *	  Evaluation aggregates of churn_warning: ROC AUC, log loss, Brier
 *	  score, lift and calibration bins (SQL objects in 500_eval.sql).
 *
 * Every aggregate keeps an internal state in the aggregate memory context and
 * has combine, serialize and deserialize functions, so that it runs under
 * parallel query.  Sums are accumulated exactly (see ExactSum in eval.c), so
 * a parallel plan gives bit-for-bit the result of a serial one.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHURN_EVAL_H
#define CHURN_EVAL_H

#include "churn_warning.h"

/* Largest number of bins churn.lift and churn.calibration accept. */
#define CHURN_EVAL_MAX_BINS 1000

/* Bins used when the aggregate is called without a bins argument. */
#define CHURN_EVAL_DEFAULT_BINS 10

#endif							/* CHURN_EVAL_H */
