/*-------------------------------------------------------------------------
 *
 * evaluate_dcr.c
 *	  Distance to the closest record: each query row's Euclidean distance
 *	  to its nearest reference row in samplellm_evaluate()'s encoding
 *	  (table_encode.c).
 *
 * samplellm_evaluate's DCR metrics use it, and so does stage 2's novelty
 * guard (stage2_novelty.c), so that the guard constrains the very distance
 * the evaluation reports.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <cblas.h>

#include "miscadmin.h"

#include "evaluate.h"

#define DCR_QUERY_BLOCK		256
#define DCR_REF_BLOCK		2048

/*
 * out[i] = Euclidean distance from row i of Q to the closest row of R, by
 * |q|^2 + |r|^2 - 2 q.r with the cross terms from dgemm in blocks.  loo:
 * Q is R itself and row i skips row i (its distance to the nearest OTHER
 * row; a single row then gets +Inf).
 */
void
sl_eval_dcr_min(const double *Q, int nq, const double *R, int nr, int dim,
				bool loo, double *out)
{
	double	   *qn;
	double	   *rn;
	double	   *G;

	if (dim == 0 || nr == 0)
	{
		/* no dimension: every row looks the same */
		for (int i = 0; i < nq; i++)
			out[i] = (nr == 0) ? NAN : 0.0;
		return;
	}
	qn = palloc(sizeof(double) * Max(nq, 1));
	rn = palloc(sizeof(double) * nr);
	G = palloc(sizeof(double) * DCR_QUERY_BLOCK * DCR_REF_BLOCK);
	for (int i = 0; i < nq; i++)
		qn[i] = cblas_ddot(dim, Q + (size_t) i * dim, 1, Q + (size_t) i * dim, 1);
	for (int j = 0; j < nr; j++)
		rn[j] = cblas_ddot(dim, R + (size_t) j * dim, 1, R + (size_t) j * dim, 1);

	for (int q0 = 0; q0 < nq; q0 += DCR_QUERY_BLOCK)
	{
		int			bq = Min(DCR_QUERY_BLOCK, nq - q0);

		for (int i = 0; i < bq; i++)
			out[q0 + i] = INFINITY;
		for (int r0 = 0; r0 < nr; r0 += DCR_REF_BLOCK)
		{
			int			br = Min(DCR_REF_BLOCK, nr - r0);

			CHECK_FOR_INTERRUPTS();
			cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, bq, br, dim,
						-2.0, Q + (size_t) q0 * dim, dim,
						R + (size_t) r0 * dim, dim, 0.0, G, br);
			for (int i = 0; i < bq; i++)
			{
				double		best = out[q0 + i];
				const double *g = G + (size_t) i * br;

				for (int j = 0; j < br; j++)
				{
					double		d2 = qn[q0 + i] + rn[r0 + j] + g[j];

					if (d2 < best && !(loo && q0 + i == r0 + j))
						best = d2;
				}
				out[q0 + i] = best;
			}
		}
		for (int i = 0; i < bq; i++)
		{
			double		d2 = out[q0 + i];

			/* rounding leaves ~1e-15 |q||r| where rows are equal */
			if (d2 <= 1e-12 * (1.0 + qn[q0 + i]))
				d2 = 0.0;
			out[q0 + i] = sqrt(d2);
		}
	}
	pfree(qn);
	pfree(rn);
	pfree(G);
}
