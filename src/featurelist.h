/*-------------------------------------------------------------------------
 *
 * featurelist.h
 *	  The model feature list: the one definition of which features a model
 *	  sees and in which order (feature_vector.c).
 *
 * churn.feature_names(), churn.feature_vector(), the rule model's feature
 * check and every scorer derive from ChurnFeatures.  A feature is read by
 * name from its composite (churn.features for purchase features,
 * churn.engagement_features for engagement features), so adding one means
 * adding a field to the composite and a line here.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHURN_FEATURELIST_H
#define CHURN_FEATURELIST_H

#include "churn_warning.h"

typedef enum FeatureSource
{
	FEATURE_PURCHASE,			/* a field of churn.features */
	FEATURE_ENGAGEMENT			/* a field of churn.engagement_features */
} FeatureSource;

typedef struct FeatureDef
{
	const char *name;
	FeatureSource source;
} FeatureDef;

#define CHURN_NFEATURES 30

extern const FeatureDef ChurnFeatures[CHURN_NFEATURES];

/* Position of a feature name in ChurnFeatures, or -1. */
extern int	FeatureIndex(const char *name);

/* Where a call site reads features from their composites (fn_mcxt lifetime). */
typedef struct FeatureReader FeatureReader;

extern FeatureReader *FeatureReaderCreate(MemoryContext mcxt);

/*
 * Read features of a customer from a churn.features and an optional
 * churn.engagement_features datum: out[i] and isnull[i] get feature which[i]
 * (an index into ChurnFeatures; -1 reads as missing) for i < n, or every
 * feature in ChurnFeatures order when which is NULL (n = CHURN_NFEATURES).
 * False when the customer has no purchase (first_purchase NULL).
 */
extern bool FeatureReaderRead(FeatureReader *r, HeapTupleHeader f, HeapTupleHeader e,
							  const int *which, int n, double *out, bool *isnull);

#endif							/* CHURN_FEATURELIST_H */
