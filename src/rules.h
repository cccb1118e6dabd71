/*-------------------------------------------------------------------------
 *
 * rules.h
 *	  The rule model (rules.c): a ruleset of churn.rules scores a feature
 *	  vector with the noisy-OR of the weights of the rules that fire.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHURN_RULES_H
#define CHURN_RULES_H

#include "churn_warning.h"

typedef struct RulesCache RulesCache;

/* A cache of rulesets for one call site, living in mcxt. */
extern RulesCache *RulesCacheCreate(MemoryContext mcxt);

/*
 * Score a full feature vector (CHURN_NFEATURES values in ChurnFeatures
 * order; isnull marks missing values, which fire no rule) with a ruleset:
 * 1 - prod(1 - weight) over the rules that fire.  When fired is not NULL it
 * receives the names of the rules that fired, strongest first, as text
 * datums (*nfired of them).
 */
extern double RulesScore(RulesCache *c, const char *ruleset, int len, const double *x,
						 const bool *isnull, Datum **fired, int *nfired);

#endif							/* CHURN_RULES_H */
