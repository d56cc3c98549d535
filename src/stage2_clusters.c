/*-------------------------------------------------------------------------
 *
 * stage2_clusters.c
 *	  Stage 2, step 4: group fields into semi-independent clusters.
 *
 * Fields i and j are linked when M_ij / max_offdiag(M) > tau; clusters are
 * the connected components of the links, with a cap on their size so that
 * each cluster's value tuples stay estimable from T.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "stage2.h"

typedef struct Link
{
	double		score;
	int			a;
	int			b;
} Link;

static int
cmp_link(const void *x, const void *y)
{
	const Link *p = x;
	const Link *q = y;

	if (p->score != q->score)
		return (p->score < q->score) ? 1 : -1;
	if (p->a != q->a)
		return (p->a > q->a) - (p->a < q->a);
	return (p->b > q->b) - (p->b < q->b);
}

static int
uf_find(int *parent, int x)
{
	while (parent[x] != x)
	{
		parent[x] = parent[parent[x]];
		x = parent[x];
	}
	return x;
}

/*
 * Greedy union by descending score under the size cap (Kruskal's order):
 * when no component exceeds the cap this is exactly the connected
 * components; a component that would exceed it is split by keeping its
 * strongest links, deterministically (ties by field number).
 *
 * Deviation from the paper: the reference code calls the grouping with a raw
 * threshold 0.5 and does not publish it; we threshold M divided by its
 * largest off-diagonal entry and cap cluster size (method.md, "ours").
 */
int
sl_clusters_find(const double *M, int F, double threshold, int max_size,
				 int *cluster)
{
	double		mx = 0;
	int		   *parent;
	int		   *size;
	int		   *id;
	Link	   *links;
	int			nlinks = 0;
	int			nclusters = 0;

	if (F <= 0)
		return 0;
	if (max_size < 1)
		max_size = F;
	for (int a = 0; a < F; a++)
		for (int b = 0; b < F; b++)
			if (a != b && isfinite(M[a * F + b]) && M[a * F + b] > mx)
				mx = M[a * F + b];

	parent = palloc(sizeof(int) * F);
	size = palloc(sizeof(int) * F);
	id = palloc(sizeof(int) * F);
	links = palloc(sizeof(Link) * Max(F * (F - 1) / 2, 1));
	for (int f = 0; f < F; f++)
	{
		parent[f] = f;
		size[f] = 1;
		id[f] = -1;
	}
	if (mx > 0)
		for (int a = 0; a < F; a++)
			for (int b = a + 1; b < F; b++)
			{
				double		s = 0.5 * (M[a * F + b] + M[b * F + a]);

				if (isfinite(s) && s / mx > threshold)
				{
					links[nlinks].score = s;
					links[nlinks].a = a;
					links[nlinks].b = b;
					nlinks++;
				}
			}
	if (nlinks > 1)
		qsort(links, nlinks, sizeof(Link), cmp_link);
	for (int i = 0; i < nlinks; i++)
	{
		int			ra = uf_find(parent, links[i].a);
		int			rb = uf_find(parent, links[i].b);

		if (ra == rb || size[ra] + size[rb] > max_size)
			continue;
		if (ra > rb)
		{
			int			tmp = ra;

			ra = rb;
			rb = tmp;
		}
		parent[rb] = ra;
		size[ra] += size[rb];
	}
	for (int f = 0; f < F; f++)
	{
		int			r = uf_find(parent, f);

		if (id[r] < 0)
			id[r] = nclusters++;
		cluster[f] = id[r];
	}
	pfree(parent);
	pfree(size);
	pfree(id);
	pfree(links);
	return nclusters;
}
