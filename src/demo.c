/*-------------------------------------------------------------------------
 *
 * demo.c
 *	  Demo data generator for a pet-supply store chain:
 *	  churn.demo_customers, churn.demo_purchases, churn.demo_events.
 *
 * The model (documented in docs/reference/demo.md):
 *	- 10 stores of different sizes; a customer has a home store and buys
 *	  there 92% of the time.
 *	- Customers sign up across the period (30% were members before it).
 *	- Purchase days follow a renewal process with Gamma(3) gaps in
 *	  "operational time" whose clock runs at the customer's rate (Gamma
 *	  distributed across customers: pet food every 2-6 weeks) times a weekly
 *	  (weekend peak) and yearly (December peak) season.
 *	- A customer's planned annual spend is drawn within its value tier
 *	  (high > 100000, medium 10000-100000, low < 10000); order values are
 *	  lognormal around annual spend / purchases per year.
 *	- About 2.5% of sales get a later partial return (a negative row),
 *	  0.6% of sales are zero-amount rows, 3% get a small add-on sale the same
 *	  day.  Amounts are never NULL.
 *	- Churners stop at a latent day; in the 60-120 days before it their
 *	  purchase rate drops by 65-95%, in the last 80-100 days their order
 *	  value by 18-35%; visits, logins and member interactions stop 15-60 days
 *	  before; some leave a 1-2 star review or a complaint.  Their last
 *	  purchase is on the day before the stop; churn_date is the stop day, the
 *	  day after their last purchase row: no purchase or event of a churner
 *	  is on or after it.
 *
 * Randomness: xoshiro256** seeded by splitmix64 from (seed, customer_id,
 * stream), one stream for attributes, one for purchases, one for events.
 *
 *-------------------------------------------------------------------------
 */
#include "demo.h"

#include <math.h>

#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(demo_customers);
PG_FUNCTION_INFO_V1(demo_purchases);
PG_FUNCTION_INFO_V1(demo_events);

/* ------------------------------------------------------------------------
 * Random numbers
 * ------------------------------------------------------------------------
 */
typedef struct DemoRng
{
	uint64		s[4];
} DemoRng;

enum
{
	DEMO_STREAM_ATTR = 1,
	DEMO_STREAM_PURCHASE = 2,
	DEMO_STREAM_EVENT = 3
};

/* splitmix64 step: used to seed xoshiro from a 64-bit value. */
static uint64
DemoSplitMix(uint64 *x)
{
	uint64		z = (*x += UINT64CONST(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/* Seed a generator for one (seed, customer, stream). */
static void
DemoRngInit(DemoRng *r, int32 seed, int64 customer, int stream)
{
	uint64		x = (uint64) (uint32) seed;
	uint64		h;

	h = DemoSplitMix(&x);
	x = h ^ ((uint64) customer * UINT64CONST(0xD1B54A32D192ED03));
	h = DemoSplitMix(&x);
	x = h ^ ((uint64) stream * UINT64CONST(0xABC98388FB8FAC03));
	r->s[0] = DemoSplitMix(&x);
	r->s[1] = DemoSplitMix(&x);
	r->s[2] = DemoSplitMix(&x);
	r->s[3] = DemoSplitMix(&x);
}

static inline uint64
DemoRotl(uint64 x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256** next 64 bits. */
static inline uint64
DemoNext(DemoRng *r)
{
	uint64	   *s = r->s;
	uint64		result = DemoRotl(s[1] * 5, 7) * 9;
	uint64		t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = DemoRotl(s[3], 45);
	return result;
}

/* Uniform in [0, 1). */
static inline double
DemoUnif(DemoRng *r)
{
	return (double) (DemoNext(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform in (0, 1). */
static inline double
DemoUnifOpen(DemoRng *r)
{
	return ((double) (DemoNext(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Uniform in [lo, hi). */
static inline double
DemoRange(DemoRng *r, double lo, double hi)
{
	return lo + (hi - lo) * DemoUnif(r);
}

/* Uniform integer in [lo, hi]. */
static inline int
DemoInt(DemoRng *r, int lo, int hi)
{
	return lo + (int) (DemoUnif(r) * (double) (hi - lo + 1));
}

/* Bernoulli(p). */
static inline bool
DemoChance(DemoRng *r, double p)
{
	return DemoUnif(r) < p;
}

/* Standard normal (Box-Muller, one of the pair). */
static double
DemoNormal(DemoRng *r)
{
	double		u1 = DemoUnifOpen(r);
	double		u2 = DemoUnif(r);

	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Gamma(shape, 1) by Marsaglia and Tsang. */
static double
DemoGamma(DemoRng *r, double shape)
{
	double		d;
	double		c;

	if (shape < 1.0)
		return DemoGamma(r, shape + 1.0) * pow(DemoUnifOpen(r), 1.0 / shape);
	d = shape - 1.0 / 3.0;
	c = 1.0 / sqrt(9.0 * d);
	for (;;)
	{
		double		x;
		double		v;
		double		u;

		do
		{
			x = DemoNormal(r);
			v = 1.0 + c * x;
		} while (v <= 0.0);
		v = v * v * v;
		u = DemoUnifOpen(r);
		if (u < 1.0 - 0.0331 * x * x * x * x)
			return d * v;
		if (log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
			return d * v;
	}
}

/* Lognormal with mean 1 and log-sd sigma. */
static inline double
DemoLognormal1(DemoRng *r, double sigma)
{
	return exp(sigma * DemoNormal(r) - 0.5 * sigma * sigma);
}

/* Exponential with the given mean. */
static inline double
DemoExp(DemoRng *r, double mean)
{
	return -mean * log(DemoUnifOpen(r));
}

/* Index drawn from weights w[0..n-1] (need not sum to 1). */
static int
DemoPick(DemoRng *r, const double *w, int n)
{
	double		total = 0;
	double		u;
	int			i;

	for (i = 0; i < n; i++)
		total += w[i];
	u = DemoUnif(r) * total;
	for (i = 0; i < n - 1; i++)
	{
		if (u < w[i])
			return i;
		u -= w[i];
	}
	return n - 1;
}

/* ------------------------------------------------------------------------
 * Model constants
 * ------------------------------------------------------------------------
 */
static const double store_weight[CHURN_DEMO_STORES] =
{0.16, 0.14, 0.12, 0.11, 0.10, 0.09, 0.08, 0.08, 0.07, 0.05};

#define DEMO_SEGMENTS 4
static const char *const segment_name[DEMO_SEGMENTS] = {"dog", "cat", "aquarium", "small pets"};
static const double segment_weight[DEMO_SEGMENTS] = {0.45, 0.35, 0.10, 0.10};
/* mean days between purchases by segment */
static const double segment_gap[DEMO_SEGMENTS] = {28.0, 32.0, 42.0, 30.0};

#define DEMO_TIERS 3
enum
{
	TIER_HIGH, TIER_MEDIUM, TIER_LOW
};
static const char *const tier_name[DEMO_TIERS] = {"high", "medium", "low"};
static const double tier_weight[DEMO_TIERS] = {0.03, 0.22, 0.75};
/* planned annual spend: median, log-sd, bounds (well inside the tier) */
static const double tier_median[DEMO_TIERS] = {170000, 28000, 3000};
static const double tier_sigma[DEMO_TIERS] = {0.40, 0.45, 0.55};
static const double tier_lo[DEMO_TIERS] = {125000, 13000, 400};
static const double tier_hi[DEMO_TIERS] = {600000, 80000, 7500};
static const double tier_rate_mult[DEMO_TIERS] = {1.5, 1.2, 1.0};
static const double tier_churn_p[DEMO_TIERS] = {0.18, 0.28, 0.34};

/* day of week, 0 = Sunday */
static const double weekday_factor[7] = {1.20, 0.85, 0.85, 0.90, 0.95, 1.05, 1.30};
/* month 1..12 (index 0 = January) */
static const double month_factor[12] =
{0.92, 0.92, 0.97, 1.00, 1.02, 1.00, 0.98, 0.98, 1.00, 1.00, 1.08, 1.35};
static const double month_amount[12] =
{0.97, 0.97, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.03, 1.15};

/* store hours 9..20 */
static const double store_hour_weight[12] = {4, 6, 8, 9, 8, 7, 7, 8, 10, 11, 9, 5};
/* login hours 0..23 */
static const double login_hour_weight[24] =
{1, 0.5, 0.3, 0.2, 0.2, 0.3, 1, 2, 3, 3, 3, 3, 4, 4, 3, 3, 3, 4, 5, 6, 7, 7, 5, 3};

#define DEMO_KINDS 5
enum
{
	KIND_VISIT, KIND_LOGIN, KIND_REVIEW, KIND_COMPLAINT, KIND_INTERACTION
};
static const char *const kind_name[DEMO_KINDS] = {"visit", "login", "review", "complaint", "interaction"};
static const double rating_normal[5] = {0.03, 0.05, 0.12, 0.35, 0.45};
static const double rating_unhappy[5] = {0.15, 0.20, 0.30, 0.20, 0.15};

#define DEMO_MIN_CHURN_SPAN 240	/* days of activity needed to churn */
#define DEMO_SECONDS_PER_DAY 86400

/* ------------------------------------------------------------------------
 * Simulation
 * ------------------------------------------------------------------------
 */

/* Per-call context: the period and per-day tables. */
typedef struct DemoCtx
{
	int32		seed;
	DateADT		start;
	int32		ndays;
	double	   *season;			/* purchase intensity multiplier by day */
	double	   *amount_season;	/* order value multiplier by day */
	int64	   *tz_offset;		/* usec to add to local time, by day */
	bool	   *tz_simple;		/* no UTC offset change during the day */
} DemoCtx;

/* A customer's attributes and latent churn process. */
typedef struct DemoCustomer
{
	int64		id;
	int			store;			/* 1-based */
	int32		signup;			/* day index, may be negative */
	int			segment;
	int			tier;
	bool		will_churn;
	int32		first_day;		/* first day of activity in the period */
	int32		stop;			/* activity ends before this day index */
	int32		decline_day;	/* purchase rate falls from this day */
	int32		aov_decline_day;	/* order value falls from this day */
	double		freq_factor;
	double		aov_factor;
	double		rate;			/* purchase days per day at season 1 */
	double		aov;			/* mean order value */
	bool		app_user;
	bool		member;
	int32		visit_stop;
	int32		login_stop;
	int32		interaction_stop;
	bool		bad_review;
	bool		complaint;
	int32		last_day;		/* day of the last purchase row, -1 if none */
} DemoCustomer;

typedef struct DemoRow
{
	int32		day;
	int32		sec;
	int64		value;			/* cents (purchases) or rating (events) */
	int16		store;			/* purchases: store; events: kind */
	int16		main;			/* purchases: 1 for a main sale */
} DemoRow;

typedef struct DemoRows
{
	DemoRow    *rows;
	int			n;
	int			cap;
} DemoRows;

/* Append a row (arrays live in the per-customer context). */
static DemoRow *
DemoPush(DemoRows *r)
{
	if (r->n == r->cap)
	{
		r->cap = r->cap ? r->cap * 2 : 64;
		r->rows = r->rows ? repalloc(r->rows, sizeof(DemoRow) * r->cap)
			: palloc(sizeof(DemoRow) * r->cap);
	}
	memset(&r->rows[r->n], 0, sizeof(DemoRow));
	return &r->rows[r->n++];
}

/* Order rows by (day, sec). */
static int
DemoCmpRow(const void *a, const void *b)
{
	const DemoRow *x = a;
	const DemoRow *y = b;

	if (x->day != y->day)
		return x->day < y->day ? -1 : 1;
	if (x->sec != y->sec)
		return x->sec < y->sec ? -1 : 1;
	return 0;
}

/* Sort rows and make (day, sec) unique by nudging later duplicates. */
static void
DemoSortRows(DemoRows *r)
{
	int			i;

	if (r->n > 1)
		qsort(r->rows, r->n, sizeof(DemoRow), DemoCmpRow);
	for (i = 1; i < r->n; i++)
		if (r->rows[i].day == r->rows[i - 1].day &&
			r->rows[i].sec <= r->rows[i - 1].sec)
			r->rows[i].sec = r->rows[i - 1].sec + 1;
}

/* Draw a customer's attributes (stream ATTR). */
static void
DemoMakeCustomer(DemoCtx *ctx, int64 id, DemoCustomer *c)
{
	DemoRng		r;
	double		annual;
	double		gap;
	int			tries;
	int32		span;

	DemoRngInit(&r, ctx->seed, id, DEMO_STREAM_ATTR);
	memset(c, 0, sizeof(*c));
	c->id = id;
	c->store = DemoPick(&r, store_weight, CHURN_DEMO_STORES) + 1;
	c->segment = DemoPick(&r, segment_weight, DEMO_SEGMENTS);
	c->tier = DemoPick(&r, tier_weight, DEMO_TIERS);

	/* sign-up: 30% before the period, the rest during it */
	if (DemoChance(&r, 0.30))
		c->signup = -1 - DemoInt(&r, 0, 729);
	else
	{
		span = ctx->ndays > 120 ? ctx->ndays - 60 : ctx->ndays;
		c->signup = DemoInt(&r, 0, span - 1);
	}
	c->first_day = Max(c->signup, 0);

	/* purchase rate: Gamma heterogeneity around the segment's mean gap */
	gap = segment_gap[c->segment];
	c->rate = DemoGamma(&r, 5.0) / (5.0 * gap) * tier_rate_mult[c->tier];
	c->rate = Min(Max(c->rate, 1.0 / 90.0), 1.0 / 5.0);

	/* planned annual spend within the tier, lognormal, truncated */
	for (tries = 0;; tries++)
	{
		annual = tier_median[c->tier] * exp(tier_sigma[c->tier] * DemoNormal(&r));
		if ((annual >= tier_lo[c->tier] && annual <= tier_hi[c->tier]) || tries >= 20)
			break;
	}
	annual = Min(Max(annual, tier_lo[c->tier]), tier_hi[c->tier]);
	/* purchases per year: base rate plus ~3% add-on sales */
	c->aov = annual / (365.25 * c->rate);

	c->app_user = DemoChance(&r, c->tier == TIER_LOW ? 0.55 : 0.75);
	c->member = DemoChance(&r, 0.70);

	/* churn */
	c->stop = ctx->ndays;
	c->decline_day = c->aov_decline_day = ctx->ndays;
	c->visit_stop = c->login_stop = c->interaction_stop = ctx->ndays;
	c->freq_factor = DemoRange(&r, 0.05, 0.35);
	c->aov_factor = DemoRange(&r, 0.65, 0.82);
	c->will_churn = DemoChance(&r, tier_churn_p[c->tier]) &&
		ctx->ndays - c->first_day >= DEMO_MIN_CHURN_SPAN;
	{
		/* always drawn, so later draws do not depend on will_churn */
		int32		lo = c->first_day + 150;
		int32		hi = ctx->ndays - 31;
		int32		stop = lo + (int32) (DemoUnif(&r) * (double) Max(hi - lo + 1, 1));
		int32		decline = DemoInt(&r, 60, 120);
		int32		aov_decline = DemoInt(&r, 80, 100);
		int32		vstop = DemoInt(&r, 15, 30);
		int32		lstop = DemoInt(&r, 20, 45);
		int32		istop = DemoInt(&r, 30, 60);
		bool		bad = DemoChance(&r, 0.35);
		bool		compl = DemoChance(&r, 0.25);

		if (c->will_churn)
		{
			c->stop = stop;
			c->decline_day = stop - decline;
			c->aov_decline_day = stop - aov_decline;
			c->visit_stop = stop - vstop;
			c->login_stop = stop - lstop;
			c->interaction_stop = stop - istop;
			c->bad_review = bad;
			c->complaint = compl;
		}
	}
	c->last_day = -1;
}

/* Seconds into the day for a store-hours event. */
static int32
DemoStoreSecond(DemoRng *r)
{
	int			h = 9 + DemoPick(r, store_hour_weight, 12);

	return h * 3600 + DemoInt(r, 0, 3599);
}

/*
 * Simulate a customer's purchases (stream PURCHASE) into out, sorted by
 * time; sets c->last_day (and clears will_churn if there is no purchase).
 */
static void
DemoSimulatePurchases(DemoCtx *ctx, DemoCustomer *c, DemoRows *out)
{
	DemoRng		r;
	int32	   *days;
	int			nd = 0;
	int			capd = 64;
	int32		d;
	double		acc;
	double		target;
	int			i;

	DemoRngInit(&r, ctx->seed, c->id, DEMO_STREAM_PURCHASE);
	days = palloc(sizeof(int32) * capd);

	/* purchase days: renewal process in operational time */
	if (c->signup >= 0)
	{
		d = c->first_day;		/* new members buy on the sign-up day */
		days[nd++] = d;
		target = DemoGamma(&r, 3.0) / 3.0;
		d++;
	}
	else
	{
		d = 0;
		target = DemoUnif(&r) * DemoGamma(&r, 3.0) / 3.0;
	}
	acc = 0;
	for (; d < c->stop; d++)
	{
		acc += c->rate * ctx->season[d] * (d >= c->decline_day ? c->freq_factor : 1.0);
		if (acc >= target)
		{
			if (nd == capd)
			{
				capd *= 2;
				days = repalloc(days, sizeof(int32) * capd);
			}
			days[nd++] = d;
			acc = 0;
			target = DemoGamma(&r, 3.0) / 3.0;
		}
	}
	/* a churner buys one last time on the day before the stop */
	if (c->will_churn && (nd == 0 || days[nd - 1] < c->stop - 1))
	{
		if (nd == capd)
		{
			capd *= 2;
			days = repalloc(days, sizeof(int32) * capd);
		}
		days[nd++] = c->stop - 1;
	}

	/* one or more rows per purchase day */
	for (i = 0; i < nd; i++)
	{
		DemoRow    *row = DemoPush(out);
		double		amount;
		bool		zero;
		bool		addon;
		bool		ret;
		int			store;
		int32		sec;
		int32		rday;
		double		rfrac;
		double		noise;

		d = days[i];
		sec = DemoStoreSecond(&r);
		store = DemoChance(&r, 0.92) ? c->store
			: 1 + (c->store + DemoInt(&r, 0, CHURN_DEMO_STORES - 2)) % CHURN_DEMO_STORES;
		noise = DemoLognormal1(&r, 0.35);
		zero = DemoChance(&r, 0.006);
		addon = DemoChance(&r, 0.03);
		ret = DemoChance(&r, 0.025);
		rday = d + DemoInt(&r, 1, 14);
		rfrac = DemoRange(&r, 0.2, 1.0);

		amount = c->aov * ctx->amount_season[d] * noise *
			(d >= c->aov_decline_day ? c->aov_factor : 1.0);
		amount = Max(amount, 1.0);
		/* a churner's last purchase is a real sale */
		if (zero && !(c->will_churn && i == nd - 1))
			amount = 0;
		row->day = d;
		row->sec = sec;
		row->store = store;
		row->value = (int64) llround(amount * 100.0);
		row->main = 1;

		if (addon && sec < 20 * 3600)
		{
			DemoRow    *a = DemoPush(out);

			a->day = d;
			a->sec = sec + DemoInt(&r, 600, 7200);
			a->store = store;
			a->value = (int64) llround(Max(c->aov * DemoRange(&r, 0.1, 0.3), 1.0) * 100.0);
		}
		/* a partial return some days later, never after the last sale */
		if (ret && amount > 0 &&
			rday < (c->will_churn ? days[nd - 1] : ctx->ndays))
		{
			DemoRow    *a = DemoPush(out);

			a->day = rday;
			a->sec = DemoStoreSecond(&r);
			a->store = store;
			a->value = -(int64) llround(amount * rfrac * 100.0);
			if (a->value == 0)
				a->value = -1;
		}
	}
	DemoSortRows(out);
	c->last_day = out->n > 0 ? out->rows[out->n - 1].day : -1;
	if (out->n == 0)
		c->will_churn = false;
	pfree(days);
}

/* Add an event row. */
static void
DemoAddEvent(DemoRows *out, int32 day, int32 sec, int kind, int rating)
{
	DemoRow    *e = DemoPush(out);

	e->day = day;
	e->sec = sec;
	e->store = kind;
	e->value = rating;
}

/*
 * Homogeneous Poisson events of one kind with the given mean gap in days on
 * [from, to); times from the hour weights.
 */
static void
DemoPoissonEvents(DemoRng *r, DemoRows *out, int kind, double mean_gap,
				  int32 from, int32 to, bool store_hours)
{
	double		t = from + DemoExp(r, mean_gap);

	while (t < to)
	{
		int32		sec = store_hours ? DemoStoreSecond(r)
			: DemoPick(r, login_hour_weight, 24) * 3600 + DemoInt(r, 0, 3599);

		DemoAddEvent(out, (int32) t, sec, kind, 0);
		t += DemoExp(r, mean_gap);
	}
}

/* Draw a rating 1..5 from weights. */
static int
DemoRating(DemoRng *r, const double *w)
{
	return DemoPick(r, w, 5) + 1;
}

/*
 * Simulate a customer's events (stream EVENT) given its purchases: visits
 * with most purchases and between them, logins around purchases and between
 * them (app users), member interactions, reviews and complaints.
 */
static void
DemoSimulateEvents(DemoCtx *ctx, DemoCustomer *c, DemoRows *purchases, DemoRows *out)
{
	DemoRng		r;
	int32		end = c->will_churn ? c->last_day + 1 : ctx->ndays;
	double		gap = 1.0 / c->rate;
	int			i;
	int			k;

	DemoRngInit(&r, ctx->seed, c->id, DEMO_STREAM_EVENT);

	for (i = 0; i < purchases->n; i++)
	{
		DemoRow    *p = &purchases->rows[i];
		bool		visit = DemoChance(&r, 0.75);
		bool		login = DemoChance(&r, 0.40);
		int32		lday = p->day - DemoInt(&r, 0, 2);
		int32		lsec = DemoPick(&r, login_hour_weight, 24) * 3600 + DemoInt(&r, 0, 3599);
		bool		review = DemoChance(&r, 0.05);
		int32		rday = p->day + DemoInt(&r, 0, 5);
		bool		compl = DemoChance(&r, 0.004);
		int32		cday = p->day + DemoInt(&r, 0, 3);
		bool		unhappy = c->will_churn && p->day >= c->decline_day;
		int			rating = DemoRating(&r, unhappy ? rating_unhappy : rating_normal);
		int32		esec = 18 * 3600 + DemoInt(&r, 0, 4 * 3600);

		if (!p->main)
			continue;
		if (visit)
			DemoAddEvent(out, p->day, Max(p->sec - DemoInt(&r, 60, 1800), 8 * 3600), KIND_VISIT, 0);
		if (c->app_user && login && lday >= c->first_day && lday < c->login_stop)
			DemoAddEvent(out, lday, lsec, KIND_LOGIN, 0);
		if (review && rday < end)
			DemoAddEvent(out, rday, esec, KIND_REVIEW, rating);
		if (compl && cday < end)
			DemoAddEvent(out, cday, DemoStoreSecond(&r), KIND_COMPLAINT, 0);
	}

	/* visits without a purchase, logins, member interactions */
	DemoPoissonEvents(&r, out, KIND_VISIT, gap / 0.35, c->first_day,
					  Min(c->visit_stop, end), true);
	if (c->app_user)
		DemoPoissonEvents(&r, out, KIND_LOGIN, 1.0 / (1.2 * c->rate + 0.02), c->first_day,
						  Min(c->login_stop, end), false);
	if (c->member)
		DemoPoissonEvents(&r, out, KIND_INTERACTION, 40.0, c->first_day,
						  Min(c->interaction_stop, end), true);

	/* churners' parting signals, on or before the last purchase day */
	if (c->will_churn && c->bad_review)
		DemoAddEvent(out, Max(c->last_day - DemoInt(&r, 0, 45), c->first_day),
					 18 * 3600 + DemoInt(&r, 0, 4 * 3600), KIND_REVIEW, DemoInt(&r, 1, 2));
	if (c->will_churn && c->complaint)
		DemoAddEvent(out, Max(c->last_day - DemoInt(&r, 0, 30), c->first_day),
					 DemoStoreSecond(&r), KIND_COMPLAINT, 0);

	/* keep what falls in the period (and before a churner's churn date) */
	for (i = 0, k = 0; i < out->n; i++)
		if (out->rows[i].day >= c->first_day && out->rows[i].day < end)
			out->rows[k++] = out->rows[i];
	out->n = k;
	DemoSortRows(out);
}

/* ------------------------------------------------------------------------
 * Output helpers
 * ------------------------------------------------------------------------
 */

/* Local wall-clock time of day index d at sec seconds as timestamptz. */
static TimestampTz
DemoTimestamp(DemoCtx *ctx, int32 d, int32 sec)
{
	Timestamp	local;

	if (sec >= DEMO_SECONDS_PER_DAY)
		sec = DEMO_SECONDS_PER_DAY - 1;
	local = (Timestamp) (ctx->start + d) * USECS_PER_DAY + (Timestamp) sec * USECS_PER_SEC;
	if (ctx->tz_simple[d])
		return local + ctx->tz_offset[d];
	return DatumGetTimestampTz(DirectFunctionCall1(timestamp_timestamptz,
												   TimestampGetDatum(local)));
}

/* Validate the arguments and set up the per-day tables. */
static void
DemoInitCtx(DemoCtx *ctx, int32 customers, int32 seed, DateADT start, DateADT end)
{
	int32		d;

	if (customers <= 0 || customers > CHURN_DEMO_MAX_CUSTOMERS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("customers must be between 1 and %d", CHURN_DEMO_MAX_CUSTOMERS),
				 errdetail("The value was %d.", customers)));
	if (DATE_NOT_FINITE(start) || DATE_NOT_FINITE(end))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("start_date and end_date must be finite")));
	if (end < start)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("end_date must not be before start_date"),
				 errdetail("start_date is %s, end_date is %s.",
						   DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(start))),
						   DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(end))))));
	if ((int64) end - start + 1 > CHURN_DEMO_MAX_DAYS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the period must not be longer than %d days", CHURN_DEMO_MAX_DAYS)));

	ctx->seed = seed;
	ctx->start = start;
	ctx->ndays = end - start + 1;
	ctx->season = palloc(sizeof(double) * ctx->ndays);
	ctx->amount_season = palloc(sizeof(double) * ctx->ndays);
	ctx->tz_offset = palloc(sizeof(int64) * ctx->ndays);
	ctx->tz_simple = palloc(sizeof(bool) * ctx->ndays);
	for (d = 0; d < ctx->ndays; d++)
	{
		int			jd = start + d + POSTGRES_EPOCH_JDATE;
		int			y,
					m,
					dd;
		Timestamp	midnight = (Timestamp) (start + d) * USECS_PER_DAY;
		Timestamp	last = midnight + USECS_PER_DAY - USECS_PER_SEC;
		TimestampTz t0;
		TimestampTz t1;

		j2date(jd, &y, &m, &dd);
		ctx->season[d] = weekday_factor[j2day(jd)] * month_factor[m - 1];
		ctx->amount_season[d] = month_amount[m - 1];
		t0 = DatumGetTimestampTz(DirectFunctionCall1(timestamp_timestamptz, TimestampGetDatum(midnight)));
		t1 = DatumGetTimestampTz(DirectFunctionCall1(timestamp_timestamptz, TimestampGetDatum(last)));
		ctx->tz_offset[d] = t0 - midnight;
		ctx->tz_simple[d] = (t1 - last == t0 - midnight);
	}
}

/* Set up a materialized SRF result; works on PG 13-17. */
static Tuplestorestate *
DemoInitSRF(FunctionCallInfo fcinfo, TupleDesc *tupdesc)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext oldcxt;
	Tuplestorestate *ts;
	TupleDesc	td;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("materialize mode required, but it is not allowed in this context")));
	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	oldcxt = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	td = CreateTupleDescCopy(td);
	ts = tuplestore_begin_heap((rsinfo->allowedModes & SFRM_Materialize_Random) != 0,
							   false, work_mem);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = ts;
	rsinfo->setDesc = td;
	MemoryContextSwitchTo(oldcxt);
	*tupdesc = td;
	return ts;
}

/* An amount in cents as numeric with scale 2. */
static Datum
DemoCentsToNumeric(int64 cents)
{
#if PG_VERSION_NUM >= 150000
	return NumericGetDatum(int64_div_fast_to_numeric(cents, 2));
#else
	char		buf[32];

	snprintf(buf, sizeof(buf), "%s%lld.%02lld", cents < 0 ? "-" : "",
			 (long long) (Abs(cents) / 100), (long long) (Abs(cents) % 100));
	return DirectFunctionCall3(numeric_in, CStringGetDatum(buf),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
#endif
}

/* Arguments shared by the three SRFs: customers, seed, start, end. */
typedef struct DemoArgs
{
	int32		customers;
	int32		seed;
	DateADT		start;
	DateADT		end;
} DemoArgs;

static void
DemoGetArgs(FunctionCallInfo fcinfo, DemoArgs *a)
{
	a->customers = PG_GETARG_INT32(0);
	a->seed = PG_GETARG_INT32(1);
	a->start = PG_NARGS() > 2 ? PG_GETARG_DATEADT(2) : date2j(2023, 1, 1) - POSTGRES_EPOCH_JDATE;
	a->end = PG_NARGS() > 3 ? PG_GETARG_DATEADT(3) : date2j(2024, 12, 31) - POSTGRES_EPOCH_JDATE;
}

/* Which table an SRF call produces. */
typedef enum DemoWhat
{
	DEMO_CUSTOMERS, DEMO_PURCHASES, DEMO_EVENTS
} DemoWhat;

/* The body of the three SRFs: simulate customer by customer, emit rows. */
static void
DemoGenerate(FunctionCallInfo fcinfo, DemoWhat what)
{
	DemoArgs	a;
	DemoCtx		ctx;
	TupleDesc	tupdesc;
	Tuplestorestate *ts;
	MemoryContext percust;
	MemoryContext oldcxt;
	Datum		segment_datum[DEMO_SEGMENTS];
	Datum		tier_datum[DEMO_TIERS];
	Datum		kind_datum[DEMO_KINDS];
	int64		id;
	int			i;

	DemoGetArgs(fcinfo, &a);
	DemoInitCtx(&ctx, a.customers, a.seed, a.start, a.end);
	ts = DemoInitSRF(fcinfo, &tupdesc);
	for (i = 0; i < DEMO_SEGMENTS; i++)
		segment_datum[i] = CStringGetTextDatum(segment_name[i]);
	for (i = 0; i < DEMO_TIERS; i++)
		tier_datum[i] = CStringGetTextDatum(tier_name[i]);
	for (i = 0; i < DEMO_KINDS; i++)
		kind_datum[i] = CStringGetTextDatum(kind_name[i]);

	percust = AllocSetContextCreate(CurrentMemoryContext, "churn demo customer",
									ALLOCSET_DEFAULT_SIZES);
	for (id = 1; id <= a.customers; id++)
	{
		DemoCustomer c;
		DemoRows	purchases = {0};
		DemoRows	events = {0};

		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(percust);
		oldcxt = MemoryContextSwitchTo(percust);

		DemoMakeCustomer(&ctx, id, &c);
		DemoSimulatePurchases(&ctx, &c, &purchases);

		if (what == DEMO_CUSTOMERS)
		{
			Datum		values[7];
			bool		nulls[7] = {false};

			values[0] = Int64GetDatum(c.id);
			values[1] = Int32GetDatum(c.store);
			values[2] = DateADTGetDatum(ctx.start + c.signup);
			values[3] = segment_datum[c.segment];
			values[4] = tier_datum[c.tier];
			values[5] = BoolGetDatum(c.will_churn);
			if (c.will_churn)
				values[6] = DateADTGetDatum(ctx.start + c.last_day + 1);
			else
				nulls[6] = true;
			tuplestore_putvalues(ts, tupdesc, values, nulls);
		}
		else if (what == DEMO_PURCHASES)
		{
			for (i = 0; i < purchases.n; i++)
			{
				DemoRow    *p = &purchases.rows[i];
				Datum		values[4];
				bool		nulls[4] = {false};

				values[0] = Int64GetDatum(c.id);
				values[1] = Int32GetDatum(p->store);
				values[2] = TimestampTzGetDatum(DemoTimestamp(&ctx, p->day, p->sec));
				values[3] = DemoCentsToNumeric(p->value);
				tuplestore_putvalues(ts, tupdesc, values, nulls);
			}
		}
		else
		{
			DemoSimulateEvents(&ctx, &c, &purchases, &events);
			for (i = 0; i < events.n; i++)
			{
				DemoRow    *e = &events.rows[i];
				Datum		values[4];
				bool		nulls[4] = {false};

				values[0] = Int64GetDatum(c.id);
				values[1] = TimestampTzGetDatum(DemoTimestamp(&ctx, e->day, e->sec));
				values[2] = kind_datum[e->store];
				if (e->store == KIND_REVIEW)
					values[3] = Int32GetDatum((int32) e->value);
				else
					nulls[3] = true;
				tuplestore_putvalues(ts, tupdesc, values, nulls);
			}
		}
		MemoryContextSwitchTo(oldcxt);
	}
	MemoryContextDelete(percust);
}

/* churn.demo_customers(customers, seed, start_date, end_date) */
Datum
demo_customers(PG_FUNCTION_ARGS)
{
	DemoGenerate(fcinfo, DEMO_CUSTOMERS);
	return (Datum) 0;
}

/* churn.demo_purchases(customers, seed, start_date, end_date) */
Datum
demo_purchases(PG_FUNCTION_ARGS)
{
	DemoGenerate(fcinfo, DEMO_PURCHASES);
	return (Datum) 0;
}

/* churn.demo_events(customers, seed, start_date, end_date) */
Datum
demo_events(PG_FUNCTION_ARGS)
{
	DemoGenerate(fcinfo, DEMO_EVENTS);
	return (Datum) 0;
}
