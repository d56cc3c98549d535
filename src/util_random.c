/*-------------------------------------------------------------------------
 *
 * util_random.c
 *	  Named random streams: every random choice derives from a call's seed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "util.h"

/* splitmix64's finalizer: a bijection of 64-bit numbers */
static uint64
mix64(uint64 z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/*
 * The seed of one stream.  For a fixed call seed, x -> seed + golden * (x +
 * 1) is injective modulo 2^64 (golden is odd) and mix64 is a bijection, so
 * distinct (stream, index) pairs (x = stream << 48 | index, index < 2^48)
 * get distinct stream seeds: e.g. request 7 can never share the exemplar
 * plan's stream, as it did when streams were plain numbers.
 */
uint64
sl_stream_seed(uint64 seed, SlStream stream, uint64 index)
{
	uint64		x = ((uint64) stream << 48) | (index & ((UINT64CONST(1) << 48) - 1));

	Assert(index < (UINT64CONST(1) << 48));
	return mix64(seed + 0x9E3779B97F4A7C15ULL * (x + 1));
}

void
sl_stream_init(pg_prng_state *rng, uint64 seed, SlStream stream, uint64 index)
{
	pg_prng_seed(rng, sl_stream_seed(seed, stream, index));
}

/* The one shuffle: a partial Fisher-Yates over perm[0..n). */
void
sl_shuffle_prefix(int *perm, int n, int k, pg_prng_state *rng)
{
	int			i;

	k = Min(k, n);
	for (i = 0; i < k; i++)
	{
		int			j = (int) pg_prng_uint64_range(rng, (uint64) i, (uint64) n - 1);
		int			tmp = perm[i];

		perm[i] = perm[j];
		perm[j] = tmp;
	}
}

int *
sl_identity(int n)
{
	int		   *perm = palloc(sizeof(int) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		perm[i] = i;
	return perm;
}
