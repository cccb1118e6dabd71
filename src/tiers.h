/*-------------------------------------------------------------------------
 *
 * tiers.h
 *	  Warning tiers: a churn probability and an annual value become a code
 *	  (N0, B2, B1, Y4, Y3, Y2, Y1, R3, R2, R1) under a policy read from
 *	  churn.tier_policy.
 *
 * Codes are numbered by urgency 0 (N0) to 9 (R1); code k (k >= 1) starts at
 * cut point cuts[k - 1] of the customer's value segment and holds up to the
 * next cut (exclusive), R1 up to and including 1.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHURN_TIERS_H
#define CHURN_TIERS_H

#include "churn_warning.h"

#define TIER_NCUTS		9		/* b2 b1 y4 y3 y2 y1 r3 r2 r1 */
#define TIER_NCODES		(TIER_NCUTS + 1)

/* Zone, level and code of each urgency 0..9. */
typedef struct TierCodeInfo
{
	const char *code;
	const char *zone;
	int			level;
} TierCodeInfo;

extern const TierCodeInfo TierCodes[TIER_NCODES];

/* One value segment of a policy. */
typedef struct TierSegment
{
	char	   *name;
	double		min_value;		/* inclusive lower bound of annual value */
	int32		lead_days;
	double		margin;			/* default hysteresis margin */
	double		cuts[TIER_NCUTS];	/* strictly increasing, in [0, 1] */
	/* lifecycle bounds (0.3.0), see churn.lifecycle */
	double		new_days;
	double		lapsing_gaps;
	double		lost_gaps;
	double		lost_min_days;
	double		lost_max_days;
	double		default_gap_days;
} TierSegment;

/* Urgency 0..9 of p in a segment. */
extern int	TierUrgency(const TierSegment *seg, double p);

/* Urgency 0..9 of a code text, or -1 if it is not one. */
extern int	TierCodeUrgency(const char *code, int len);

#endif							/* CHURN_TIERS_H */
