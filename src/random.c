/*-------------------------------------------------------------------------
 *
 * random.c
 *	  Seed derivation: every random choice derives from the user's seed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "samplellm.h"

/*
 * Independent stream seeds from one user seed (splitmix64 finalizer), so that
 * e.g. request 7's exemplars do not depend on how many draws request 6 made.
 */
uint64
sl_mix_seed(uint64 seed, uint64 stream)
{
	uint64		z = seed + 0x9E3779B97F4A7C15ULL * (stream + 1);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}
