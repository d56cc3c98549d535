/*-------------------------------------------------------------------------
 *
 * bench_stage2.c
 *	  Stage-2 benchmark driver (bench/bench_stage2.sh runs it).
 *
 *	  ./bench_stage2 [DIR] [nseeds ncands]
 *
 * Builds a 12-field table (6 continuous, 6 categorical, plus a 0/1 label
 * with planted interactions), 10,000 seeds and 30,000 skewed candidates,
 * runs sl_stage2_select with the default options and prints the time of
 * each step.  With DIR, writes T's field codes and labels there for the
 * PyTorch side of the benchmark.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "portability/instr_time.h"
#include "stage2.h"
#include "test_data.h"

#define NCONT 6
#define NCAT 6

static SlRowSet *
make_rows(int n, uint64 seed, bool skewed)
{
	SlRowSet   *rs = td_rows(n, NCONT + NCAT + 1);
	pg_prng_state rng;

	pg_prng_seed(&rng, seed);
	for (int r = 0; r < n; r++)
	{
		double		x[NCONT];
		int			c[NCAT];
		double		logit;

		for (int j = 0; j < NCONT; j++)
		{
			x[j] = td_normal(&rng) + (skewed && j == 0 ? 0.7 : 0);
			td_num(rs, r, j, x[j]);
		}
		for (int j = 0; j < NCAT; j++)
		{
			c[j] = (int) pg_prng_uint64_range(&rng, 0, 7);
			td_cat(rs, r, NCONT + j, c[j]);
		}
		/* interactions: x0 with c0, x1 with x2; a main effect of c1 */
		logit = 2.0 * ((x[0] > 0) == (c[0] % 2 == 0) ? 1 : -1) +
			1.5 * x[1] * x[2] + 0.3 * (c[1] - 3.5);
		if (skewed)
			logit = 0.8;		/* label rate ~0.69, relations broken */
		td_int(rs, r, NCONT + NCAT,
			   pg_prng_double(&rng) < 1.0 / (1.0 + exp(-logit)));
	}
	return rs;
}


int
main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : NULL;
	int			nT = argc > 3 ? atoi(argv[2]) : 10000;
	int			nS = argc > 3 ? atoi(argv[3]) : 30000;
	int			n = nS / 3;
	bool		paper = argc > 4 && strcmp(argv[4], "paper") == 0;
	struct rusage ru;
	long		rss_data;
	int			ih_used;
	double		cpu0;
	char		cls[NCONT + NCAT + 2];
	SlTable    *t;
	SlRowSet   *T,
			   *S;
	SlStage2Options opt;
	SlStage2Result res;
	instr_time	start,
				end;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int j = 0; j < NCONT + NCAT + 1; j++)
		cls[j] = (j < NCONT || j == NCONT + NCAT) ? 'n' : 'c';
	cls[NCONT + NCAT + 1] = '\0';
	t = td_table(cls, NCONT + NCAT);
	INSTR_TIME_SET_CURRENT(start);
	T = make_rows(nT, 1, false);
	S = make_rows(nS, 2, true);
	INSTR_TIME_SET_CURRENT(end);
	INSTR_TIME_SUBTRACT(end, start);
	printf("data: %d seeds x %d candidates x %d fields (+ label), n = %d; "
		   "generated in %.2fs\n", nT, nS, NCONT + NCAT, n,
		   INSTR_TIME_GET_DOUBLE(end));

	getrusage(RUSAGE_SELF, &ru);
	rss_data = ru.ru_maxrss;
	cpu0 = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
	sl_stage2_default_options(&opt);
	opt.seed = 42;
	if (paper)
		opt.estimator = SL_ESTIMATOR_PAPER;
	else
		opt.ess_target = SL_ESS_TARGET_FRACTION * n;
	/* S2B_NOVELTY: the guard's ratio (a high one makes it engage: its worst case) */
	if (getenv("S2B_NOVELTY") != NULL)
		opt.novelty = atof(getenv("S2B_NOVELTY"));
	sl_stage2_select(t, T, S, n, &opt, &res);
	getrusage(RUSAGE_SELF, &ru);
	ih_used = Min(nT, paper ? opt.ih_max_rows : Min(opt.ih_max_rows, SL_BACKOFF_IH_ROWS));

	printf("C stage 2 total            %8.2f s  (%s; CPU %.2f s: on a busy machine the\n"
		   "                                      wall clock counts other processes too)\n",
		   res.secs_total, res.variant,
		   ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec +
		   ru.ru_stime.tv_usec * 1e-6 - cpu0);
	printf("  peak memory: data %ld MB, stage 2 added %ld MB\n", rss_data / 1024,
		   (ru.ru_maxrss - rss_data) / 1024);
	printf("  f_T train                %8.2f s  (%d epochs, %.3f s/epoch, "
		   "held-out loss %.4f)\n", res.secs_train_T, res.epochs_T,
		   res.secs_train_T / Max(res.epochs_T, 1), res.train_loss);
	printf("  Integrated Hessians      %8.2f s  (%d rows x 36 samples)\n",
		   res.secs_ih, ih_used);
	printf("  f_S train                %8.2f s  (%d epochs, %.3f s/epoch)\n",
		   res.secs_train_S, res.epochs_S,
		   res.secs_train_S / Max(res.epochs_S, 1));
	if (!paper)
		printf("  novelty guard            %8.2f s  (%d seeds, tau %.3f, close share %.3f%s, beta %.3g)\n",
			   res.secs_novelty, res.novelty.nseeds, res.novelty.tau, res.novelty.close_before,
			   res.novelty.full ? "" : " by the probe", res.novelty.beta);
	printf("  rest (fields, weights, draw) %4.2f s\n",
		   res.secs_total - res.secs_train_T - res.secs_ih - res.secs_train_S - res.secs_novelty);
	printf("  clusters %d, ESS %.0f of %d, n_carry %d, chosen %d\n",
		   res.nclusters, res.ess, nS, res.n_carry, res.nchosen);
	printf("  cluster of each field:");
	for (int f = 0; f < res.nfields; f++)
		printf(" %d", res.field_cluster[f]);
	printf("\n");

	if (dir)
	{
		SlFieldSet *fs = sl_fields_fit(t, T, opt.nbins, opt.max_categories);
		int32	   *codes = sl_fields_encode(fs, T);
		SlLabelEncoder *le = sl_label_fit(t, T);
		int		   *y = sl_label_encode(le, T);
		char		path[1024];
		FILE	   *meta;

		mkdir(dir, 0755);
		write_file(dir, "codes.i32", codes, sizeof(int32) * nT * fs->nfields);
		write_file(dir, "y.i32", y, sizeof(int) * nT);
		write_file(dir, "code_off.i32", fs->code_off, sizeof(int) * (fs->nfields + 1));
		snprintf(path, sizeof(path), "%s/meta.txt", dir);
		meta = fopen(path, "w");
		fprintf(meta, "nfields %d\nncodes %d\nembed_dim %d\nnrows %d\n"
				"c_secs_per_epoch_T %.6f\nc_ih_secs %.6f\nc_ih_rows %d\n",
				fs->nfields, fs->ncodes, opt.embed_dim, nT,
				res.secs_train_T / Max(res.epochs_T, 1), res.secs_ih,
				ih_used);
		fclose(meta);
	}
	return 0;
}
