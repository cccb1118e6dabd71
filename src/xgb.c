/*-------------------------------------------------------------------------
 *
 * xgb.c
 *	  XGBoost scoring: the churn.xgb type, churn.xgb_load, churn.xgb_predict
 *	  and churn.xgb_contrib.
 *
 * churn.xgb_load compiles the JSON that XGBoost's save_model writes (gbtree
 * booster, binary:logistic or reg:logistic) into one flat varlena: a header,
 * the start of each tree, and all nodes laid out breadth first so that the
 * two children of a split are adjacent.  Scoring walks that array directly,
 * comparing features as float32 exactly as XGBoost does (x < split goes
 * left; a missing value follows default_left), sums the leaves in float32
 * in tree order starting from the base margin, and applies XGBoost's float32
 * sigmoid, so the probability equals XGBoost's own prediction.
 *
 * The compiled model carries a 64-bit hash of its contents; each call site
 * caches the detoasted model in fn_extra keyed by that hash (or by the
 * TOAST pointer), so scoring many rows detoasts the model once.
 *
 *-------------------------------------------------------------------------
 */
#include "mlmodels.h"
#include "numeric.h"

#include <float.h>
#include <math.h>

#include "access/detoast.h"
#include "catalog/pg_type.h"
#include "common/base64.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

PG_FUNCTION_INFO_V1(xgb_in);
PG_FUNCTION_INFO_V1(xgb_out);
PG_FUNCTION_INFO_V1(xgb_recv);
PG_FUNCTION_INFO_V1(xgb_send);
PG_FUNCTION_INFO_V1(xgb_load);
PG_FUNCTION_INFO_V1(xgb_predict);
PG_FUNCTION_INFO_V1(xgb_contrib);
PG_FUNCTION_INFO_V1(xgb_info);

#define XGB_MAGIC			0x31424758	/* "XGB1" */
#define XGB_FORMAT			1
#define XGB_DEFAULT_LEFT	0x80000000u /* in XgbNode.feature */
#define XGB_FEATURE_MASK	0x7FFFFFFFu
#define XGB_MAX_FEATURES	1000000
#define XGB_TEXT_PREFIX		"xgb:"

/* Objectives accepted (both output a probability through the sigmoid). */
#define XGB_OBJ_BINARY_LOGISTIC 1
#define XGB_OBJ_REG_LOGISTIC	2

/* One node of a compiled tree. */
typedef struct XgbNode
{
	float		value;			/* split condition, or leaf value */
	uint32		feature;		/* split feature | XGB_DEFAULT_LEFT */
	int32		child;			/* left child (right = child + 1), 0 = leaf */
} XgbNode;

/* The compiled model (varlena); offsets, nodes and means follow. */
typedef struct XgbModel
{
	int32		vl_len_;
	uint32		magic;
	uint16		format;
	uint16		objective;
	int32		num_feature;
	int32		num_trees;
	int32		num_nodes;
	int32		max_depth;
	float		base_score;		/* as saved (a probability) */
	float		base_margin;	/* -log(1 / base_score - 1), float32 */
	uint32		hash_lo;		/* FNV-1a of everything with these two zeroed */
	uint32		hash_hi;
	int32		xgb_version[3]; /* version of XGBoost that wrote it */
	/* int32 tree_start[num_trees + 1]; XgbNode nodes[num_nodes]; float mean[num_nodes] */
} XgbModel;

#define XgbTreeStart(m)	((int32 *) ((char *) (m) + sizeof(XgbModel)))
#define XgbNodes(m)		((XgbNode *) (XgbTreeStart(m) + (m)->num_trees + 1))
#define XgbMeans(m)		((float *) (XgbNodes(m) + (m)->num_nodes))

/* Bytes of a model with the given counts. */
static Size
XgbModelSize(int64 num_trees, int64 num_nodes)
{
	return sizeof(XgbModel) + (Size) (num_trees + 1) * sizeof(int32) +
		(Size) num_nodes * (sizeof(XgbNode) + sizeof(float));
}

/* 64-bit FNV-1a over the model with its hash fields taken as zero. */
static uint64
XgbHash(const XgbModel *m)
{
	const unsigned char *p = (const unsigned char *) m;
	Size		len = VARSIZE(m);
	Size		hash_at = offsetof(XgbModel, hash_lo);
	uint64		h = UINT64CONST(14695981039346656037);
	Size		i;

	for (i = 0; i < len; i++)
	{
		unsigned char c = (i >= hash_at && i < hash_at + 2 * sizeof(uint32)) ? 0 : p[i];

		h ^= c;
		h *= UINT64CONST(1099511628211);
	}
	return h;
}

/* Store the content hash in the header. */
static void
XgbSetHash(XgbModel *m)
{
	uint64		h = XgbHash(m);

	m->hash_lo = (uint32) h;
	m->hash_hi = (uint32) (h >> 32);
}

/* XGBoost's float32 sigmoid (src/common/math.h). */
static inline float
XgbSigmoid(float x)
{
	float		e = Min(-x, 88.7f);

	return 1.0f / (expf(e) + 1.0f + 1e-16f);
}

/* ---------------------------------------------------------------------------
 * Reading the JSON document
 * ---------------------------------------------------------------------------
 */

/* Raise the error for a malformed model document. */
static void
XgbBadModel(const char *path, const char *problem)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid XGBoost model: %s", problem),
			 errdetail("At %s.", path),
			 errhint("Pass the JSON written by XGBoost's Booster.save_model(\"model.json\") (or XGBClassifier.save_model), unmodified.")));
}

/* Member key of object container c, or NULL when absent. */
static JsonbValue *
XgbMember(JsonbContainer *c, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(c, JB_FOBJECT, &k);
}

/* The object container at member key of c (path names it); required. */
static JsonbContainer *
XgbObject(JsonbContainer *c, const char *key, const char *path)
{
	JsonbValue *v = XgbMember(c, key);

	if (v == NULL)
		XgbBadModel(path, psprintf("member \"%s\" is missing", key));
	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		XgbBadModel(path, psprintf("member \"%s\" is not an object", key));
	return v->val.binary.data;
}

/* The array container at member key of c, or NULL if absent and optional. */
static JsonbContainer *
XgbArray(JsonbContainer *c, const char *key, const char *path, bool required)
{
	JsonbValue *v = XgbMember(c, key);

	if (v == NULL)
	{
		if (required)
			XgbBadModel(path, psprintf("member \"%s\" is missing", key));
		return NULL;
	}
	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		XgbBadModel(path, psprintf("member \"%s\" is not an array", key));
	return v->val.binary.data;
}

/* Text of a scalar (number, string or boolean); NULL for anything else. */
static char *
XgbScalarText(JsonbValue *v)
{
	if (v == NULL)
		return NULL;
	switch (v->type)
	{
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvBool:
			return pstrdup(v->val.boolean ? "1" : "0");
		default:
			return NULL;
	}
}

/*
 * Parse text as a float32 the way XGBoost reads its JSON (directly to float,
 * no double rounding); accepts XGBoost's "[5E-1]" vector form for one value.
 */
static bool
XgbParseFloat(const char *s, float *out)
{
	char	   *end;
	const char *p = s;
	bool		bracket = false;

	while (*p == ' ')
		p++;
	if (*p == '[')
	{
		bracket = true;
		p++;
	}
	errno = 0;
	*out = strtof(p, &end);
	if (end == p || (errno != 0 && errno != ERANGE))
		return false;
	p = end;
	while (*p == ' ')
		p++;
	if (bracket)
	{
		if (*p != ']')
			return false;
		p++;
	}
	while (*p == ' ')
		p++;
	return *p == '\0';
}

/* A float32 scalar member (number or numeric string) of object c. */
static float
XgbFloatMember(JsonbContainer *c, const char *key, const char *path)
{
	char	   *s = XgbScalarText(XgbMember(c, key));
	float		f;

	if (s == NULL)
		XgbBadModel(path, psprintf("member \"%s\" is missing or not a number", key));
	if (!XgbParseFloat(s, &f))
	{
		if (s[0] == '[' && strchr(s, ','))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("XGBoost models with several outputs are not supported"),
					 errdetail("%s.%s is \"%s\".", path, key, s),
					 errhint("churn.xgb_load takes binary classifiers (objective binary:logistic).")));
		XgbBadModel(path, psprintf("member \"%s\" is not a number: \"%s\"", key, s));
	}
	return f;
}

/* Parse an integer from a scalar's text; false if not an integer. */
static bool
XgbParseInt(const char *s, int64 *out)
{
	char	   *end;
	double		d;

	if (s == NULL)
		return false;
	errno = 0;
	d = strtod(s, &end);
	if (end == s || *end != '\0' || errno != 0 || d != floor(d) || fabs(d) > 9e15)
		return false;
	*out = (int64) d;
	return true;
}

/* An integer scalar member of object c (number or numeric string). */
static int64
XgbIntMember(JsonbContainer *c, const char *key, const char *path, bool required, int64 dflt)
{
	JsonbValue *v = XgbMember(c, key);
	int64		i;

	if (v == NULL && !required)
		return dflt;
	if (!XgbParseInt(XgbScalarText(v), &i))
		XgbBadModel(path, psprintf("member \"%s\" is missing or not an integer", key));
	return i;
}

/* A string member of object c, or NULL when absent. */
static char *
XgbStringMember(JsonbContainer *c, const char *key)
{
	JsonbValue *v = XgbMember(c, key);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* Element i of array container a as an integer. */
static int64
XgbIntAt(JsonbContainer *a, int i, const char *path, const char *key)
{
	int64		v;

	if (!XgbParseInt(XgbScalarText(getIthJsonbValueFromContainer(a, i)), &v))
		XgbBadModel(path, psprintf("%s[%d] is not an integer", key, i));
	return v;
}

/* Element i of array container a as a float32. */
static float
XgbFloatAt(JsonbContainer *a, int i, const char *path, const char *key)
{
	char	   *s = XgbScalarText(getIthJsonbValueFromContainer(a, i));
	float		f;

	if (s == NULL || !XgbParseFloat(s, &f))
		XgbBadModel(path, psprintf("%s[%d] is not a number", key, i));
	return f;
}

/* Check that array a (member key) has exactly n elements. */
static void
XgbCheckLength(JsonbContainer *a, int n, const char *path, const char *key)
{
	if ((int) JsonContainerSize(a) != n)
		XgbBadModel(path, psprintf("%s has %d elements, expected num_nodes = %d",
								   key, (int) JsonContainerSize(a), n));
}

/* One tree as read from the JSON, before relayout. */
typedef struct XgbRawTree
{
	int			n;
	int32	   *left;
	int32	   *right;
	int32	   *split_index;
	bool	   *default_left;
	float	   *cond;
	float	   *hess;
} XgbRawTree;

/* Read tree t (object container tc) into raw, validating it. */
static void
XgbReadTree(JsonbContainer *tc, int t, int num_feature, XgbRawTree *raw)
{
	char	   *path = psprintf("learner.gradient_booster.model.trees[%d]", t);
	JsonbContainer *tp = XgbObject(tc, "tree_param", path);
	JsonbContainer *left,
			   *right,
			   *idx,
			   *cond,
			   *dl,
			   *hess,
			   *stype,
			   *catn;
	int64		n = XgbIntMember(tp, "num_nodes", path, true, 0);
	int64		leafvec = XgbIntMember(tp, "size_leaf_vector", path, false, 0);
	int			i;

	if (n < 1 || n > (1 << 30))
		XgbBadModel(path, "tree_param.num_nodes is out of range");
	if (leafvec > 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("XGBoost models with vector leaves (multi-target trees) are not supported"),
				 errdetail("Tree %d has size_leaf_vector %lld.", t, (long long) leafvec)));

	left = XgbArray(tc, "left_children", path, true);
	right = XgbArray(tc, "right_children", path, true);
	idx = XgbArray(tc, "split_indices", path, true);
	cond = XgbArray(tc, "split_conditions", path, true);
	dl = XgbArray(tc, "default_left", path, true);
	hess = XgbArray(tc, "sum_hessian", path, true);
	stype = XgbArray(tc, "split_type", path, false);
	catn = XgbArray(tc, "categories_nodes", path, false);
	XgbCheckLength(left, n, path, "left_children");
	XgbCheckLength(right, n, path, "right_children");
	XgbCheckLength(idx, n, path, "split_indices");
	XgbCheckLength(cond, n, path, "split_conditions");
	XgbCheckLength(dl, n, path, "default_left");
	XgbCheckLength(hess, n, path, "sum_hessian");
	if (catn != NULL && JsonContainerSize(catn) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("XGBoost models with categorical splits are not supported"),
				 errdetail("Tree %d has categorical split nodes.", t),
				 errhint("Train with numerical (for example one-hot encoded) features.")));

	raw->n = (int) n;
	raw->left = palloc(n * sizeof(int32));
	raw->right = palloc(n * sizeof(int32));
	raw->split_index = palloc(n * sizeof(int32));
	raw->default_left = palloc(n * sizeof(bool));
	raw->cond = palloc(n * sizeof(float));
	raw->hess = palloc(n * sizeof(float));
	for (i = 0; i < n; i++)
	{
		int64		l = XgbIntAt(left, i, path, "left_children");
		int64		r = XgbIntAt(right, i, path, "right_children");
		int64		f = XgbIntAt(idx, i, path, "split_indices");
		int64		d = XgbIntAt(dl, i, path, "default_left");

		if ((l == -1) != (r == -1) || l < -1 || r < -1 || l >= n || r >= n || l == 0 || r == 0)
			XgbBadModel(path, psprintf("node %d has invalid children (%lld, %lld)",
									   i, (long long) l, (long long) r));
		if (l != -1 && (f < 0 || f >= num_feature))
			XgbBadModel(path, psprintf("node %d splits on feature %lld but the model has %d features",
									   i, (long long) f, num_feature));
		if (stype != NULL && i < (int) JsonContainerSize(stype) && l != -1 &&
			XgbIntAt(stype, i, path, "split_type") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("XGBoost models with categorical splits are not supported"),
					 errdetail("Tree %d node %d is a categorical split.", t, i),
					 errhint("Train with numerical (for example one-hot encoded) features.")));
		raw->left[i] = (int32) l;
		raw->right[i] = (int32) r;
		raw->split_index[i] = (int32) f;
		raw->default_left[i] = d != 0;
		raw->cond[i] = XgbFloatAt(cond, i, path, "split_conditions");
		raw->hess[i] = XgbFloatAt(hess, i, path, "sum_hessian");
		if (!isfinite(raw->cond[i]))
			XgbBadModel(path, psprintf("split_conditions[%d] is not finite", i));
	}
}

/*
 * Lay tree raw out breadth first into out (children adjacent, only nodes
 * reachable from the root), compute XGBoost's node mean values (float32,
 * as RegTree::FillNodeMeanValues) into mean; returns the node count and the
 * depth in *depth.
 */
static int
XgbLayoutTree(const XgbRawTree *raw, XgbNode *out, float *mean, int *depth, int t)
{
	int32	   *order = palloc(raw->n * sizeof(int32));	/* new -> raw index */
	int32	   *level = palloc(raw->n * sizeof(int32));
	bool	   *seen = palloc0(raw->n * sizeof(bool));
	float	   *hess = palloc(raw->n * sizeof(float));
	int			head = 0,
				count = 1,
				i;

	order[0] = 0;
	level[0] = 0;
	seen[0] = true;
	*depth = 0;
	while (head < count)
	{
		int			u = order[head];
		int			me = head++;

		*depth = Max(*depth, level[me]);
		hess[me] = raw->hess[u];
		if (raw->left[u] == -1)
		{
			out[me].value = raw->cond[u];
			out[me].feature = 0;
			out[me].child = 0;
			continue;
		}
		if (seen[raw->left[u]] || seen[raw->right[u]] || raw->left[u] == raw->right[u])
			XgbBadModel(psprintf("learner.gradient_booster.model.trees[%d]", t),
						psprintf("node %d is reached twice: the tree has a cycle", u));
		seen[raw->left[u]] = seen[raw->right[u]] = true;
		out[me].value = raw->cond[u];
		out[me].feature = (uint32) raw->split_index[u] | (raw->default_left[u] ? XGB_DEFAULT_LEFT : 0);
		out[me].child = count;
		order[count] = raw->left[u];
		level[count++] = level[me] + 1;
		order[count] = raw->right[u];
		level[count++] = level[me] + 1;
	}
	/* children come after parents: fill means bottom-up */
	for (i = count - 1; i >= 0; i--)
	{
		if (out[i].child == 0)
			mean[i] = out[i].value;
		else
		{
			int			l = out[i].child;
			float		r = mean[l] * hess[l];

			r += mean[l + 1] * hess[l + 1];
			r /= hess[i];
			mean[i] = r;
		}
	}
	pfree(order);
	pfree(level);
	pfree(seen);
	pfree(hess);
	return count;
}

/*
 * Check that doc is an XGBoost JSON model and read its "version" into xver
 * (missing trailing components stay 0); only XGBoost 1.x to 3.x are taken.
 */
static void
XgbReadVersion(JsonbContainer *root, int xver[3])
{
	JsonbContainer *version;
	int			i;

	if (!JsonContainerIsObject(root) || XgbMember(root, "learner") == NULL)
		XgbBadModel("the top level", "no \"learner\" object; this is not an XGBoost JSON model");

	version = XgbArray(root, "version", "the top level", true);
	if (JsonContainerSize(version) < 1)
		XgbBadModel("the top level", "\"version\" is empty");
	for (i = 0; i < 3 && i < (int) JsonContainerSize(version); i++)
		xver[i] = (int) XgbIntAt(version, i, "the top level", "version");
	if (xver[0] < 1 || xver[0] > 3)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("XGBoost model version %d.%d.%d is not supported", xver[0], xver[1], xver[2]),
				 errhint("Models written by XGBoost 1.x, 2.x and 3.x are supported.")));
}

/* The objective code of learner.objective (only the logistic ones). */
static uint16
XgbReadObjective(JsonbContainer *learner)
{
	JsonbContainer *obj = XgbObject(learner, "objective", "learner");
	char	   *objective = XgbStringMember(obj, "name");

	if (objective == NULL)
		XgbBadModel("learner.objective", "member \"name\" is missing");
	if (strcmp(objective, "binary:logistic") == 0)
		return XGB_OBJ_BINARY_LOGISTIC;
	if (strcmp(objective, "reg:logistic") == 0)
		return XGB_OBJ_REG_LOGISTIC;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("XGBoost objective \"%s\" is not supported", objective),
			 errhint("churn.xgb_load takes models trained with objective binary:logistic (or reg:logistic).")));
	pg_unreachable();
}

/*
 * Read learner.learner_model_param of a binary model: returns num_feature,
 * sets the base score and its margin.
 */
static int64
XgbReadModelParam(JsonbContainer *learner, float *base_score, float *base_margin)
{
	JsonbContainer *lmp = XgbObject(learner, "learner_model_param", "learner");
	int64		num_feature,
				num_class,
				num_target;

	num_feature = XgbIntMember(lmp, "num_feature", "learner.learner_model_param", true, 0);
	num_class = XgbIntMember(lmp, "num_class", "learner.learner_model_param", false, 0);
	num_target = XgbIntMember(lmp, "num_target", "learner.learner_model_param", false, 1);
	if (num_class > 1 || num_target > 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("multi-class and multi-target XGBoost models are not supported"),
				 errdetail("num_class = %lld, num_target = %lld.", (long long) num_class, (long long) num_target),
				 errhint("churn.xgb_load takes binary classifiers (objective binary:logistic).")));
	if (num_feature < 1 || num_feature > XGB_MAX_FEATURES)
		XgbBadModel("learner.learner_model_param", "num_feature is out of range");
	*base_score = XgbFloatMember(lmp, "base_score", "learner.learner_model_param");
	if (!(*base_score > 0.0f && *base_score < 1.0f))
		XgbBadModel("learner.learner_model_param",
					psprintf("base_score %g is not a probability in (0, 1)", *base_score));
	/* ProbToMargin of the logistic losses, in float32 as XGBoost computes it */
	*base_margin = -logf(1.0f / *base_score - 1.0f);
	return num_feature;
}

/*
 * Read the trees of learner.gradient_booster (a gbtree of one output
 * group) into raw trees; sets the tree count and their total node count.
 */
static XgbRawTree *
XgbReadTrees(JsonbContainer *learner, int num_feature, int *num_trees, int *total)
{
	JsonbContainer *gb = XgbObject(learner, "gradient_booster", "learner");
	char	   *booster = XgbStringMember(gb, "name");
	JsonbContainer *model,
			   *trees,
			   *tinfo,
			   *gbp;
	int64		declared;
	XgbRawTree *raw;
	int			t;

	if (booster == NULL)
		XgbBadModel("learner.gradient_booster", "member \"name\" is missing");
	if (strcmp(booster, "gbtree") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("XGBoost booster \"%s\" is not supported", booster),
				 errhint("Only the gbtree booster is supported (not dart or gblinear).")));
	model = XgbObject(gb, "model", "learner.gradient_booster");
	trees = XgbArray(model, "trees", "learner.gradient_booster.model", true);
	tinfo = XgbArray(model, "tree_info", "learner.gradient_booster.model", true);
	*num_trees = (int) JsonContainerSize(trees);
	if ((int) JsonContainerSize(tinfo) != *num_trees)
		XgbBadModel("learner.gradient_booster.model",
					psprintf("tree_info has %d elements but there are %d trees",
							 (int) JsonContainerSize(tinfo), *num_trees));
	gbp = XgbObject(model, "gbtree_model_param", "learner.gradient_booster.model");
	declared = XgbIntMember(gbp, "num_trees", "learner.gradient_booster.model.gbtree_model_param", true, 0);
	if (declared != *num_trees)
		XgbBadModel("learner.gradient_booster.model",
					psprintf("gbtree_model_param.num_trees is %lld but %d trees are present (truncated document?)",
							 (long long) declared, *num_trees));

	raw = palloc(Max(*num_trees, 1) * sizeof(XgbRawTree));
	*total = 0;
	for (t = 0; t < *num_trees; t++)
	{
		JsonbValue *tv = getIthJsonbValueFromContainer(trees, t);

		CHECK_FOR_INTERRUPTS();
		if (XgbIntAt(tinfo, t, "learner.gradient_booster.model", "tree_info") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("multi-class XGBoost models are not supported"),
					 errdetail("Tree %d belongs to output group %lld.", t,
							   (long long) XgbIntAt(tinfo, t, "learner.gradient_booster.model", "tree_info"))));
		if (tv == NULL || tv->type != jbvBinary || !JsonContainerIsObject(tv->val.binary.data))
			XgbBadModel("learner.gradient_booster.model", psprintf("trees[%d] is not an object", t));
		XgbReadTree(tv->val.binary.data, t, num_feature, &raw[t]);
		*total += raw[t].n;
		if (*total > (1 << 28))
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("XGBoost model has too many nodes")));
	}
	return raw;
}

/*
 * Lay the raw trees out in m (whose header and num_nodes, the raw node
 * count, are set), drop the unreachable nodes and set the final size.
 */
static void
XgbLayoutTrees(XgbModel *m, const XgbRawTree *raw)
{
	int32	   *start = XgbTreeStart(m);
	int			total = 0,
				max_depth = 0,
				t;

	for (t = 0; t < m->num_trees; t++)
	{
		int			depth;
		int			used;

		start[t] = total;
		used = XgbLayoutTree(&raw[t], XgbNodes(m) + total, XgbMeans(m) + total, &depth, t);
		total += used;
		max_depth = Max(max_depth, depth);
	}
	start[m->num_trees] = total;

	/* unreachable nodes were dropped: move the means down to close the gap */
	if (total != m->num_nodes)
	{
		float	   *old_means = XgbMeans(m);

		m->num_nodes = total;
		memmove(XgbMeans(m), old_means, total * sizeof(float));
	}
	m->max_depth = max_depth;
	SET_VARSIZE(m, XgbModelSize(m->num_trees, total));
}

/* Compile an XGBoost JSON model (jsonb) into a churn.xgb value. */
static XgbModel *
XgbCompile(Jsonb *doc)
{
	JsonbContainer *learner;
	int			xver[3] = {0, 0, 0};
	uint16		objcode;
	int64		num_feature;
	float		base_score,
				base_margin;
	int			num_trees,
				total;
	XgbRawTree *raw;
	XgbModel   *m;
	Size		size;

	XgbReadVersion(&doc->root, xver);
	learner = XgbObject(&doc->root, "learner", "the top level");
	objcode = XgbReadObjective(learner);
	num_feature = XgbReadModelParam(learner, &base_score, &base_margin);
	raw = XgbReadTrees(learner, (int) num_feature, &num_trees, &total);

	size = XgbModelSize(num_trees, total);
	if (size > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("XGBoost model is too large (%zu bytes compiled)", size)));
	m = palloc0(size);
	m->magic = XGB_MAGIC;
	m->format = XGB_FORMAT;
	m->objective = objcode;
	m->num_feature = (int32) num_feature;
	m->num_trees = num_trees;
	m->base_score = base_score;
	m->base_margin = base_margin;
	memcpy(m->xgb_version, xver, sizeof(xver));
	m->num_nodes = total;		/* provisional: XgbNodes() needs num_trees only */
	XgbLayoutTrees(m, raw);
	XgbSetHash(m);
	return m;
}

/*
 * Check a compiled model from outside (text or binary input) so that
 * scoring can trust it: sizes, tree bounds, child indices (always forward,
 * within the tree), feature indices and the content hash.
 */
static void
XgbValidate(XgbModel *m, Size len)
{
	int32	   *start;
	XgbNode    *nodes;
	int			t;
	uint64		h;

#define XGB_CORRUPT(what) \
	ereport(ERROR, \
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION), \
			 errmsg("invalid churn.xgb value: %s", what), \
			 errhint("Load models with churn.xgb_load(jsonb).")))

	if (len < sizeof(XgbModel) || m->magic != XGB_MAGIC)
		XGB_CORRUPT("not a compiled XGBoost model");
	if (m->format != XGB_FORMAT)
		XGB_CORRUPT("unknown format version");
	if (m->objective != XGB_OBJ_BINARY_LOGISTIC && m->objective != XGB_OBJ_REG_LOGISTIC)
		XGB_CORRUPT("unknown objective");
	if (m->num_feature < 1 || m->num_feature > XGB_MAX_FEATURES ||
		m->num_trees < 0 || m->num_trees > (1 << 28) ||
		m->num_nodes < m->num_trees || m->num_nodes > (1 << 28))
		XGB_CORRUPT("counts out of range");
	if (len != XgbModelSize(m->num_trees, m->num_nodes))
		XGB_CORRUPT("wrong size");
	if (!isfinite(m->base_margin))
		XGB_CORRUPT("base margin is not finite");
	h = XgbHash(m);
	if (m->hash_lo != (uint32) h || m->hash_hi != (uint32) (h >> 32))
		XGB_CORRUPT("checksum mismatch");
	start = XgbTreeStart(m);
	nodes = XgbNodes(m);
	if (start[0] != 0 || start[m->num_trees] != m->num_nodes)
		XGB_CORRUPT("tree offsets out of range");
	for (t = 0; t < m->num_trees; t++)
	{
		int			n = start[t + 1] - start[t];
		int			i;

		if (n < 1 || start[t + 1] > m->num_nodes)
			XGB_CORRUPT("tree offsets out of range");
		for (i = 0; i < n; i++)
		{
			XgbNode    *nd = &nodes[start[t] + i];

			if (!isfinite(nd->value))
				XGB_CORRUPT("node value is not finite");
			if (nd->child == 0)
				continue;
			if (nd->child <= i || nd->child + 1 >= n ||
				(nd->feature & XGB_FEATURE_MASK) >= (uint32) m->num_feature)
				XGB_CORRUPT("node out of range");
		}
	}
#undef XGB_CORRUPT
}

/* ---------------------------------------------------------------------------
 * SQL-callable: type I/O and loading
 * ---------------------------------------------------------------------------
 */

/* churn.xgb_load(jsonb): compile an XGBoost JSON model. */
Datum
xgb_load(PG_FUNCTION_ARGS)
{
	Jsonb	   *doc = PG_GETARG_JSONB_P(0);

	PG_RETURN_POINTER(XgbCompile(doc));
}

/* Text input: the "xgb:<base64>" form written by xgb_out, or an XGBoost JSON document. */
Datum
xgb_in(PG_FUNCTION_ARGS)
{
	char	   *s = PG_GETARG_CSTRING(0);
	const char *p = s;
	int			len,
				declen;
	XgbModel   *m;

	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p == '{')
	{
		Datum		j = DirectFunctionCall1(jsonb_in, CStringGetDatum(p));

		PG_RETURN_POINTER(XgbCompile(DatumGetJsonbP(j)));
	}
	if (strncmp(p, XGB_TEXT_PREFIX, strlen(XGB_TEXT_PREFIX)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type churn.xgb"),
				 errdetail("Expected \"%s\" followed by base64 (as churn.xgb prints), or an XGBoost JSON model.",
						   XGB_TEXT_PREFIX),
				 errhint("Load models with churn.xgb_load(jsonb).")));
	p += strlen(XGB_TEXT_PREFIX);
	len = strlen(p);
	while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\n' || p[len - 1] == '\r' || p[len - 1] == '\t'))
		len--;
	declen = pg_b64_dec_len(len);
	m = palloc0(VARHDRSZ + declen + 4);
	declen = pg_b64_decode(p, len, (void *) ((char *) m + VARHDRSZ), declen);
	if (declen < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type churn.xgb: bad base64"),
				 errhint("Load models with churn.xgb_load(jsonb).")));
	SET_VARSIZE(m, VARHDRSZ + declen);
	XgbValidate(m, VARHDRSZ + declen);
	PG_RETURN_POINTER(m);
}

/* Text output: "xgb:" and the base64 of the compiled model (round-trips through xgb_in). */
Datum
xgb_out(PG_FUNCTION_ARGS)
{
	XgbModel   *m = (XgbModel *) PG_DETOAST_DATUM(PG_GETARG_DATUM(0));
	int			srclen = VARSIZE(m) - VARHDRSZ;
	int			enclen = pg_b64_enc_len(srclen);
	int			plen = strlen(XGB_TEXT_PREFIX);
	char	   *out = palloc(plen + enclen + 1);
	int			n;

	memcpy(out, XGB_TEXT_PREFIX, plen);
	n = pg_b64_encode((const void *) ((char *) m + VARHDRSZ), srclen, out + plen, enclen);
	if (n < 0)
		elog(ERROR, "could not encode churn.xgb value");
	out[plen + n] = '\0';
	PG_RETURN_CSTRING(out);
}

/* Binary input: the compiled bytes, validated. */
Datum
xgb_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int			n = buf->len - buf->cursor;
	XgbModel   *m = palloc(VARHDRSZ + n);

	pq_copymsgbytes(buf, (char *) m + VARHDRSZ, n);
	SET_VARSIZE(m, VARHDRSZ + n);
	XgbValidate(m, VARHDRSZ + n);
	PG_RETURN_POINTER(m);
}

/* Binary output: the compiled bytes. */
Datum
xgb_send(PG_FUNCTION_ARGS)
{
	XgbModel   *m = (XgbModel *) PG_DETOAST_DATUM(PG_GETARG_DATUM(0));
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbytes(&buf, (char *) m + VARHDRSZ, VARSIZE(m) - VARHDRSZ);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* churn.xgb_info(churn.xgb): a jsonb description of the compiled model. */
Datum
xgb_info(PG_FUNCTION_ARGS)
{
	XgbModel   *m = (XgbModel *) PG_DETOAST_DATUM(PG_GETARG_DATUM(0));
	char	   *s;

	s = psprintf("{\"objective\": \"%s\", \"trees\": %d, \"nodes\": %d, \"max_depth\": %d, "
				 "\"num_feature\": %d, \"base_score\": %.9g, \"xgboost_version\": \"%d.%d.%d\", \"bytes\": %d}",
				 m->objective == XGB_OBJ_BINARY_LOGISTIC ? "binary:logistic" : "reg:logistic",
				 m->num_trees, m->num_nodes, m->max_depth, m->num_feature,
				 (double) m->base_score, m->xgb_version[0], m->xgb_version[1], m->xgb_version[2],
				 (int) VARSIZE(m));
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(s)));
}

/* ---------------------------------------------------------------------------
 * Scoring
 * ---------------------------------------------------------------------------
 */

/* Per-call-site cache: the detoasted model and a feature buffer. */
typedef struct XgbCache
{
	XgbModel   *model;			/* copy in fn_mcxt */
	bool		external;		/* keyed by TOAST pointer */
	Oid			toastrelid;
	Oid			valueid;
	struct varlena *packed;		/* the compressed argument it came from, or NULL */
	float	   *feat;			/* num_feature floats */
	float	   *contrib;		/* num_feature + 1 */
	float	   *tmp;			/* num_feature + 1 */
} XgbCache;

/*
 * The model argument, detoasted once per call site: a value stored out of
 * line is recognised by its TOAST pointer, anything else by its size and
 * content hash, so the same model is not detoasted or copied per row.
 */
static XgbCache *
XgbGetModel(FunctionCallInfo fcinfo)
{
	struct varlena *raw = (struct varlena *) DatumGetPointer(PG_GETARG_DATUM(0));
	XgbCache   *cache = (XgbCache *) fcinfo->flinfo->fn_extra;
	MemoryContext old;
	XgbModel   *m;
	bool		external = false;
	Oid			toastrelid = InvalidOid,
				valueid = InvalidOid;

	if (VARATT_IS_EXTERNAL_ONDISK(raw))
	{
		struct varatt_external ve;

		VARATT_EXTERNAL_GET_POINTER(ve, raw);
		external = true;
		toastrelid = ve.va_toastrelid;
		valueid = ve.va_valueid;
		if (cache != NULL && cache->external &&
			cache->toastrelid == toastrelid && cache->valueid == valueid)
			return cache;
		m = (XgbModel *) detoast_attr(raw);
	}
	else
	{
		/*
		 * A model compressed inline (inside a churn.model row, say) is
		 * recognised by its compressed bytes, so it is not decompressed
		 * for every row.
		 */
		if (VARATT_IS_COMPRESSED(raw) && cache != NULL && cache->packed != NULL &&
			VARSIZE_ANY(raw) == VARSIZE_ANY(cache->packed) &&
			memcmp(raw, cache->packed, VARSIZE_ANY(raw)) == 0)
			return cache;
		m = (XgbModel *) PG_DETOAST_DATUM(PG_GETARG_DATUM(0));
		if (cache != NULL && !cache->external &&
			VARSIZE(m) == VARSIZE(cache->model) &&
			m->hash_lo == cache->model->hash_lo && m->hash_hi == cache->model->hash_hi)
			return cache;
	}

	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	if (cache == NULL)
		cache = palloc0(sizeof(XgbCache));
	else
	{
		pfree(cache->model);
		pfree(cache->feat);
		pfree(cache->contrib);
		pfree(cache->tmp);
	}
	cache->model = palloc(VARSIZE(m));
	memcpy(cache->model, m, VARSIZE(m));
	if (cache->packed != NULL)
		pfree(cache->packed);
	cache->packed = NULL;
	if (!external && VARATT_IS_COMPRESSED(raw))
	{
		cache->packed = palloc(VARSIZE_ANY(raw));
		memcpy(cache->packed, raw, VARSIZE_ANY(raw));
	}
	if ((Pointer) m != (Pointer) raw)
		pfree(m);
	cache->external = external;
	cache->toastrelid = toastrelid;
	cache->valueid = valueid;
	cache->feat = palloc(cache->model->num_feature * sizeof(float));
	cache->contrib = palloc((cache->model->num_feature + 1) * sizeof(float));
	cache->tmp = palloc((cache->model->num_feature + 1) * sizeof(float));
	MemoryContextSwitchTo(old);
	fcinfo->flinfo->fn_extra = cache;
	return cache;
}

/*
 * Convert the float8[] features to float32 (as XGBoost's DMatrix does);
 * NULL elements and NaN become missing (NaN).
 */
static void
XgbReadFeatures(ArrayType *a, int num_feature, float *f)
{
	int			n = Float8VectorLength(a, "x", true, NULL);
	const double *data = (const double *) ARR_DATA_PTR(a);
	const bits8 *nulls = ARR_NULLBITMAP(a);
	int			i;

	if (n != num_feature)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("x has %d elements but the XGBoost model has %d features", n, num_feature),
				 errhint("Pass every feature the model was trained on, in training order; use NULL for a missing value.")));
	for (i = 0; i < n; i++)
	{
		double		v;

		if (nulls && !(nulls[i >> 3] & (1 << (i & 7))))
		{
			f[i] = NAN;
			continue;
		}
		v = *data++;
		if (isnan(v))
			f[i] = NAN;
		else
		{
			float		fv = (float) v;

			if (isinf(fv))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("x[%d] = %g is out of range for XGBoost's float32 features", i + 1, v),
						 errhint("Use NULL for a missing value.")));
			f[i] = fv;
		}
	}
}

/* Index of the leaf of one tree that features f reach. */
static inline int
XgbLeaf(const XgbNode *nodes, const float *f)
{
	int			n = 0;

	while (nodes[n].child != 0)
	{
		const XgbNode *nd = &nodes[n];
		float		v = f[nd->feature & XGB_FEATURE_MASK];

		if (isnan(v))
			n = nd->child + ((nd->feature & XGB_DEFAULT_LEFT) ? 0 : 1);
		else
			n = nd->child + !(v < nd->value);
	}
	return n;
}

/* churn.xgb_predict(m, x): XGBoost's predicted probability. */
Datum
xgb_predict(PG_FUNCTION_ARGS)
{
	XgbCache   *c = XgbGetModel(fcinfo);
	XgbModel   *m = c->model;
	const int32 *start = XgbTreeStart(m);
	const XgbNode *nodes = XgbNodes(m);
	float		margin = m->base_margin;
	int			t;

	XgbReadFeatures(PG_GETARG_ARRAYTYPE_P(1), m->num_feature, c->feat);
	for (t = 0; t < m->num_trees; t++)
	{
		const XgbNode *tree = nodes + start[t];

		margin += tree[XgbLeaf(tree, c->feat)].value;
	}
	PG_RETURN_FLOAT8((double) XgbSigmoid(margin));
}

/*
 * churn.xgb_contrib(m, x): XGBoost's approximate (Saabas) feature
 * contributions, pred_contribs=True, approx_contribs=True: one per feature,
 * then the bias; they sum to the margin.  Mirrors
 * RegTree::CalculateContributionsApprox in float32.
 */
Datum
xgb_contrib(PG_FUNCTION_ARGS)
{
	XgbCache   *c = XgbGetModel(fcinfo);
	XgbModel   *m = c->model;
	const int32 *start = XgbTreeStart(m);
	const XgbNode *nodes = XgbNodes(m);
	const float *means = XgbMeans(m);
	int			nf = m->num_feature;
	float	   *out = c->contrib;
	float	   *tmp = c->tmp;
	Datum	   *d;
	int			t,
				i;

	XgbReadFeatures(PG_GETARG_ARRAYTYPE_P(1), nf, c->feat);
	memset(out, 0, (nf + 1) * sizeof(float));
	for (t = 0; t < m->num_trees; t++)
	{
		const XgbNode *tree = nodes + start[t];
		const float *mean = means + start[t];
		float		node_value = mean[0];
		uint32		split = 0;
		int			n = 0;

		memset(tmp, 0, (nf + 1) * sizeof(float));
		tmp[nf] += node_value;
		if (tree[0].child != 0)
		{
			while (tree[n].child != 0)
			{
				const XgbNode *nd = &tree[n];
				float		v = c->feat[nd->feature & XGB_FEATURE_MASK];
				float		new_value;

				split = nd->feature & XGB_FEATURE_MASK;
				if (isnan(v))
					n = nd->child + ((nd->feature & XGB_DEFAULT_LEFT) ? 0 : 1);
				else
					n = nd->child + !(v < nd->value);
				new_value = mean[n];
				tmp[split] += new_value - node_value;
				node_value = new_value;
			}
			tmp[split] += tree[n].value - node_value;
		}
		for (i = 0; i <= nf; i++)
			out[i] += tmp[i];
	}
	out[nf] += m->base_margin;

	d = palloc((nf + 1) * sizeof(Datum));
	for (i = 0; i <= nf; i++)
		d[i] = Float8GetDatum((double) out[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(d, nf + 1, FLOAT8OID, sizeof(float8),
										  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
