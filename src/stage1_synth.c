/*-------------------------------------------------------------------------
 *
 * stage1_synth.c
 *	  Synthetic values of a column's shape, equal to none of its real ones.
 *
 * Excluded columns (PII) never reach a provider; their output values are
 * made here: a seed value picked by the row is taken as a pattern, and
 * every letter and digit in it is replaced by a random one of the same
 * class (lower, upper, digit), punctuation and other characters kept, so
 * "anna.berg@mail.example" may become "qdzk.rmuo@tnwd.xkqrpzb": the same
 * format, length and character classes, and NULL as often as the seeds
 * have it.  Types with a value space of their own get values of it: a
 * random uuid, dates and times drawn between the seeds' extremes, network
 * addresses with random digits; booleans and enums, which cannot be new,
 * draw a label with the seeds' frequencies.  A value equal to a seed value
 * is drawn again.  The same row (its other values) gets the same value
 * whatever order answers arrive in.  The built-in generator uses the same
 * for a natural unique key (an email column), whose seed values it must
 * not repeat.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "stage1.h"

#define SYNTH_ATTEMPTS 16

typedef struct SynthColumn
{
	bool		active;
	int			nvalues;		/* non-NULL seed values */
	const char **values;		/* sorted, for "is it a real value?" */
	double		null_rate;
	double		lo;				/* continuous: seeds' extremes */
	double		hi;
} SynthColumn;

struct SlSynth
{
	const SlTable *t;
	const SlRowSet *seeds;
	SynthColumn *cols;
};

SlSynth *
sl_synth_create(const SlTable *t, const SlRowSet *seeds, const bool *which)
{
	SlSynth    *s = palloc0(sizeof(SlSynth));
	int			c;

	s->t = t;
	s->seeds = seeds;
	s->cols = palloc0(sizeof(SynthColumn) * Max(t->ncols, 1));
	for (c = 0; c < t->ncols; c++)
	{
		SynthColumn *sc = &s->cols[c];
		int			r;
		int			nnull = 0;

		if (!which[c])
			continue;
		sc->active = true;
		sc->values = palloc(sizeof(char *) * Max(seeds->nrows, 1));
		sc->lo = INFINITY;
		sc->hi = -INFINITY;
		for (r = 0; r < seeds->nrows; r++)
		{
			size_t		cell = SL_CELL(seeds, r, c);

			if (seeds->isnull[cell])
			{
				nnull++;
				continue;
			}
			sc->values[sc->nvalues++] = seeds->text[cell];
			if (isfinite(seeds->num[cell]))
			{
				sc->lo = Min(sc->lo, seeds->num[cell]);
				sc->hi = Max(sc->hi, seeds->num[cell]);
			}
		}
		qsort(sc->values, sc->nvalues, sizeof(char *), sl_cmp_str);
		sc->null_rate = seeds->nrows > 0 ? (double) nnull / seeds->nrows : 0;
	}
	return s;
}

bool
sl_synth_active(const SlSynth *s, int c)
{
	return s && s->cols[c].active;
}

static bool
is_real_value(const SynthColumn *sc, const char *text)
{
	return bsearch(&text, sc->values, sc->nvalues, sizeof(char *), sl_cmp_str) != NULL;
}

static char
random_of_class(char ch, pg_prng_state *rng)
{
	if (ch >= 'a' && ch <= 'z')
		return 'a' + (char) pg_prng_uint64_range(rng, 0, 25);
	if (ch >= 'A' && ch <= 'Z')
		return 'A' + (char) pg_prng_uint64_range(rng, 0, 25);
	if (ch >= '0' && ch <= '9')
		return '0' + (char) pg_prng_uint64_range(rng, 0, 9);
	return ch;
}

/*
 * The pattern's letters and digits replaced, others kept; a leading digit
 * of a number stays non-zero (the same magnitude).  in_json_strings: only
 * inside string literals, so JSON keeps its structure and its keywords.
 */
static char *
from_pattern(const char *pattern, bool in_json_strings, pg_prng_state *rng)
{
	size_t		len = strlen(pattern);
	char	   *out = palloc(len + 1);
	bool		instr = false;
	size_t		i;

	for (i = 0; i < len; i++)
	{
		char		ch = pattern[i];

		if (in_json_strings)
		{
			if (ch == '"' && (i == 0 || pattern[i - 1] != '\\'))
				instr = !instr;
			out[i] = (instr && ch != '"' && ch != '\\') ? random_of_class(ch, rng) : ch;
			continue;
		}
		out[i] = random_of_class(ch, rng);
		if (ch >= '1' && ch <= '9' && (i == 0 || !(pattern[i - 1] >= '0' && pattern[i - 1] <= '9')))
			out[i] = '1' + (char) pg_prng_uint64_range(rng, 0, 8);
	}
	out[len] = '\0';
	return out;
}

static char *
random_uuid(pg_prng_state *rng)
{
	static const char hex[] = "0123456789abcdef";
	char		buf[37];
	int			i;

	for (i = 0; i < 36; i++)
		buf[i] = (i == 8 || i == 13 || i == 18 || i == 23) ? '-' :
			hex[pg_prng_uint64_range(rng, 0, 15)];
	buf[14] = '4';				/* version 4 */
	buf[19] = hex[8 + pg_prng_uint64_range(rng, 0, 3)];
	buf[36] = '\0';
	return pstrdup(buf);
}

/* An address of the pattern's family and prefix length, host bits zero for cidr. */
static char *
random_inet(const char *pattern, bool cidr, pg_prng_state *rng)
{
	const char *slash = strchr(pattern, '/');
	int			bits = slash ? atoi(slash + 1) : 32;
	uint32		a = (uint32) pg_prng_uint64_range(rng, 0x01000000, 0xdfffffff);

	if (strchr(pattern, ':') != NULL)
		return psprintf("fd%02x:%x:%x::%x", (int) pg_prng_uint64_range(rng, 0, 255),
						(int) pg_prng_uint64_range(rng, 0, 65535),
						(int) pg_prng_uint64_range(rng, 0, 65535),
						(int) pg_prng_uint64_range(rng, 1, 65535));
	bits = Max(0, Min(bits, 32));
	if (cidr)
		a &= bits == 0 ? 0 : ~((uint32) 0) << (32 - bits);
	if (slash)
		return psprintf("%u.%u.%u.%u/%d", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255, bits);
	return psprintf("%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

static char *
random_macaddr(pg_prng_state *rng)
{
	return psprintf("%02x:%02x:%02x:%02x:%02x:%02x",
					(int) pg_prng_uint64_range(rng, 0, 255) & 0xfe,	/* unicast */
					(int) pg_prng_uint64_range(rng, 0, 255),
					(int) pg_prng_uint64_range(rng, 0, 255),
					(int) pg_prng_uint64_range(rng, 0, 255),
					(int) pg_prng_uint64_range(rng, 0, 255),
					(int) pg_prng_uint64_range(rng, 0, 255));
}

/* A time-like value between the seeds' extremes, as its type prints it. */
static char *
random_time(const SlColumn *col, const SynthColumn *sc, pg_prng_state *rng)
{
	double		v = sc->lo + pg_prng_double(rng) * Max(sc->hi - sc->lo, 0);

	switch (col->basetypid)
	{
		case DATEOID:
			return DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum((DateADT) floor(v))));
		case TIMESTAMPOID:
			return DatumGetCString(DirectFunctionCall1(timestamp_out,
													   TimestampGetDatum((Timestamp) (floor(v) * USECS_PER_SEC))));
		case TIMESTAMPTZOID:
			return DatumGetCString(DirectFunctionCall1(timestamptz_out,
													   TimestampTzGetDatum((TimestampTz) (floor(v) * USECS_PER_SEC))));
		case TIMEOID:
			return DatumGetCString(DirectFunctionCall1(time_out,
													   TimeADTGetDatum((TimeADT) (floor(v) * USECS_PER_SEC))));
		default:
			{
				Interval   *iv = palloc0(sizeof(Interval));

				iv->time = (TimeOffset) (floor(v) * USECS_PER_SEC);
				return DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(iv)));
			}
	}
}

/*
 * The value of column c for the row whose other values hash to rowhash;
 * attempt > 0 draws another.  NULL for SQL NULL.  Server encoding.
 */
const char *
sl_synth_value(const SlSynth *s, int c, uint64 rowhash, int attempt)
{
	const SlColumn *col = &s->t->cols[c];
	const SynthColumn *sc = &s->cols[c];
	pg_prng_state rng;
	int			a;

	sl_stream_init(&rng, rowhash, SL_STREAM_SYNTH, ((uint64) c << 16) | (uint64) attempt);
	if (sc->nvalues == 0 || pg_prng_double(&rng) < sc->null_rate)
		return NULL;
	for (a = 0; a < SYNTH_ATTEMPTS; a++)
	{
		const char *pattern = sc->values[pg_prng_uint64_range(&rng, 0, sc->nvalues - 1)];
		char	   *v;

		switch (col->basetypid)
		{
			case BOOLOID:
				return pattern;	/* cannot be new: the seeds' frequency */
			case UUIDOID:
				v = random_uuid(&rng);
				break;
			case MACADDROID:
				v = random_macaddr(&rng);
				break;
			case INETOID:
			case CIDROID:
				v = random_inet(pattern, col->basetypid == CIDROID, &rng);
				break;
			case DATEOID:
			case TIMESTAMPOID:
			case TIMESTAMPTZOID:
			case TIMEOID:
			case INTERVALOID:
				v = random_time(col, sc, &rng);
				break;
			case JSONOID:
			case JSONBOID:
				v = from_pattern(pattern, true, &rng);
				break;
			default:
				if (col->nlabels > 0)
					return pattern;	/* an enum: likewise */
				v = from_pattern(pattern, false, &rng);
				break;
		}
		if (!is_real_value(sc, v))
			return v;
	}
	/* a column of a few short values: the last draw, counted as not new */
	return NULL;
}

/* Is text one of the column's seed values? (Tests and the final check.) */
bool
sl_synth_is_real(const SlSynth *s, int c, const char *text)
{
	return text && s->cols[c].active && is_real_value(&s->cols[c], text);
}
