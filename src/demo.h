/*-------------------------------------------------------------------------
 *
 * demo.h
 *	  Deterministic demo data for a pet-supply store chain: customers,
 *	  purchases and interaction events (SQL objects in 600_demo.sql).
 *
 * Every customer is simulated from its own random stream, seeded by
 * (seed, customer_id), so a customer's rows do not depend on how many
 * customers are generated or in which order.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHURN_DEMO_H
#define CHURN_DEMO_H

#include "churn_warning.h"

/* Number of stores in the demo chain (churn.demo_stores()). */
#define CHURN_DEMO_STORES 10

/* Upper limits on the arguments of the generators. */
#define CHURN_DEMO_MAX_CUSTOMERS 50000000
#define CHURN_DEMO_MAX_DAYS 7320		/* about 20 years */

#endif							/* CHURN_DEMO_H */
