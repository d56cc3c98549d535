/*-------------------------------------------------------------------------
 *
 * llm_capacity.c
 *	  Stage 1, step 4a: what the server says it can take, before the first
 *	  request: llama.cpp's GET /props (total_slots) or GET /slots, vLLM's
 *	  GET /metrics (requests running and waiting).
 *
 * OpenAI and Ollama expose none of these (a 404, or a page that does not
 * parse): capacity is then unknown and the HTTP layer learns it from 429s,
 * 503s, timeouts and rising latency.  Each probe is one small GET under the
 * endpoint's base path (cap_base_of) with a short timeout, waited for in slices with
 * CHECK_FOR_INTERRUPTS(), so cancel still ends a call within a second; the
 * answer is remembered for the session per server, so a run of calls pays
 * for discovery once.  curl callbacks only copy bytes (malloc, no palloc);
 * the handles are freed on every path.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "curl_prelude.h"

#include "llm.h"
#include "samplellm.h"

#define CAP_PROBE_MS		1000	/* each GET, connection included */
#define CAP_POLL_MS			100
#define CAP_MAX_BYTES		(256 * 1024)	/* vLLM's /metrics is ~30 kB */
#define CAP_REMEMBER_MS		(300 * 1000)
#define CAP_MAX_SLOTS		100000	/* beyond any real server: ignore */

typedef struct CapBuf
{
	char	   *data;
	size_t		len;
	bool		overflow;
} CapBuf;

/* what this session learnt, for one server (its base URL) */
static char *cap_base = NULL;
static SlCapacity cap_known;
static TimestampTz cap_when = 0;

static size_t
cap_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	CapBuf	   *b = (CapBuf *) userdata;
	size_t		n = size * nmemb;
	char	   *p;

	if (b->len + n > CAP_MAX_BYTES)
	{
		b->overflow = true;
		return 0;
	}
	p = realloc(b->data, b->len + n + 1);
	if (p == NULL)
	{
		b->overflow = true;
		return 0;
	}
	b->data = p;
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

typedef struct CapProbe
{
	CURLM	   *multi;
	CURL	   *easy;
	struct curl_slist *headers;
	CapBuf		buf;
} CapProbe;

static void
cap_release(CapProbe *p)
{
	if (p->easy)
	{
		if (p->multi)
			curl_multi_remove_handle(p->multi, p->easy);
		curl_easy_cleanup(p->easy);
	}
	if (p->multi)
		curl_multi_cleanup(p->multi);
	if (p->headers)
		curl_slist_free_all(p->headers);
	free(p->buf.data);
	memset(p, 0, sizeof(CapProbe));
}

/*
 * GET url; the 2xx body (palloc'd, NUL-terminated) or NULL for anything
 * else (an error status, no answer in time, too big).  *reached: some HTTP
 * answer came.
 */
static char *
cap_get(const char *url, const char *api_key, bool *reached)
{
	CapProbe	p;
	char	   *volatile result = NULL;

	memset(&p, 0, sizeof(p));
	PG_TRY();
	{
		int			running = 1;
		long		status = 0;
		CURLMsg    *msg;
		int			left;
		bool		ok = false;

		p.multi = curl_multi_init();
		p.easy = curl_easy_init();
		if (p.multi == NULL || p.easy == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory"),
					 errdetail("Could not create a curl handle.")));
		p.headers = curl_slist_append(NULL, "User-Agent: samplellm/" SAMPLELLM_VERSION);
		if (p.headers && api_key && api_key[0] && strpbrk(api_key, "\r\n") == NULL)
		{
			char	   *line = psprintf("Authorization: Bearer %s", api_key);
			struct curl_slist *l = curl_slist_append(p.headers, line);

			explicit_bzero(line, strlen(line));
			pfree(line);
			if (l)
				p.headers = l;
		}
		curl_easy_setopt(p.easy, CURLOPT_URL, url);
		curl_easy_setopt(p.easy, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(p.easy, CURLOPT_FOLLOWLOCATION, 0L);
		curl_easy_setopt(p.easy, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(p.easy, CURLOPT_HTTPHEADER, p.headers);
		curl_easy_setopt(p.easy, CURLOPT_TIMEOUT_MS, (long) CAP_PROBE_MS);
		curl_easy_setopt(p.easy, CURLOPT_CONNECTTIMEOUT_MS,
						 (long) Min(CAP_PROBE_MS, Max(sl_connect_timeout_ms, 1)));
		curl_easy_setopt(p.easy, CURLOPT_WRITEFUNCTION, cap_write_cb);
		curl_easy_setopt(p.easy, CURLOPT_WRITEDATA, (void *) &p.buf);
		if (curl_multi_add_handle(p.multi, p.easy) != CURLM_OK)
			elog(ERROR, "samplellm: curl_multi_add_handle failed");

		while (running > 0)
		{
			CHECK_FOR_INTERRUPTS();
			if (curl_multi_perform(p.multi, &running) != CURLM_OK)
				break;
			if (running > 0)
				(void) curl_multi_poll(p.multi, NULL, 0, CAP_POLL_MS, NULL);
		}
		while ((msg = curl_multi_info_read(p.multi, &left)) != NULL)
			if (msg->msg == CURLMSG_DONE && msg->data.result == CURLE_OK)
				ok = true;
		curl_easy_getinfo(p.easy, CURLINFO_RESPONSE_CODE, &status);
		*reached = status != 0;
		if (ok && status >= 200 && status <= 299 && p.buf.data && !p.buf.overflow)
			result = pstrdup(p.buf.data);
	}
	PG_CATCH();
	{
		cap_release(&p);
		PG_RE_THROW();
	}
	PG_END_TRY();
	cap_release(&p);
	return result;
}

/*
 * Where the server's own pages live: the chat URL without its
 * /chat/completions and a /v1 before it, so http://host:8080/v1 gives
 * http://host:8080 (llama.cpp, vLLM) and https://gw/team/v1 gives
 * https://gw/team.  Probes stay under the endpoint's path: the key must not
 * go to another service that shares the host (a gateway's other routes).
 * NULL when the URL has no scheme.
 */
static char *
cap_base_of(const char *url)
{
	const char *p = strstr(url, "://");
	const char *suffix = "/chat/completions";
	size_t		len = strlen(url);
	size_t		slen = strlen(suffix);
	size_t		host_end;

	if (p == NULL)
		return NULL;
	host_end = strcspn(p + 3, "/?#") + (p + 3 - url);
	if (len >= slen && len - slen >= host_end && strcmp(url + len - slen, suffix) == 0)
		len -= slen;
	if (len >= 3 && len - 3 >= host_end && strncmp(url + len - 3, "/v1", 3) == 0)
		len -= 3;
	while (len > host_end && url[len - 1] == '/')
		len--;
	return pnstrdup(url, len);
}

/* Sum of the Prometheus samples of metric name (any labels); -1 if none. */
static int
cap_gauge(const char *text, const char *name)
{
	size_t		nlen = strlen(name);
	const char *line = text;
	double		sum = 0;
	bool		found = false;

	while (line && *line)
	{
		const char *next = strchr(line, '\n');

		if (strncmp(line, name, nlen) == 0 &&
			(line[nlen] == '{' || line[nlen] == ' '))
		{
			const char *v = line + nlen;
			char	   *end;
			double		d;

			if (*v == '{')
			{
				v = strchr(v, '}');
				if (v == NULL || (next && v > next))
					goto skip;
				v++;
			}
			d = strtod(v, &end);
			if (end != v && d >= 0 && d < 1e9)
			{
				sum += d;
				found = true;
			}
		}
skip:
		line = next ? next + 1 : NULL;
	}
	return found ? (int) sum : -1;
}

static void
cap_probe(const char *base, const char *api_key, SlCapacity *out)
{
	char	   *body;
	cJSON	   *doc;
	bool		reached = false;

	/* llama.cpp: /props has total_slots */
	body = cap_get(psprintf("%s/props", base), api_key, &reached);
	/* nothing answers there: the call's own error will say so, at once */
	if (!reached)
		return;
	if (body && (doc = sl_json_parse_bounded(body, strlen(body))) != NULL)
	{
		cJSON	   *ts = cJSON_GetObjectItemCaseSensitive(doc, "total_slots");

		if (cJSON_IsNumber(ts) && ts->valuedouble >= 1 && ts->valuedouble <= CAP_MAX_SLOTS)
		{
			out->slots = (int) ts->valuedouble;
			out->source = "props";
			return;
		}
	}
	/* older llama.cpp servers: /slots lists them */
	body = cap_get(psprintf("%s/slots", base), api_key, &reached);
	if (body && (doc = sl_json_parse_bounded(body, strlen(body))) != NULL &&
		cJSON_IsArray(doc))
	{
		int			n = cJSON_GetArraySize(doc);

		if (n >= 1 && n <= CAP_MAX_SLOTS)
		{
			out->slots = n;
			out->source = "slots";
			return;
		}
	}
	/* vLLM: no slot count, but how busy it is */
	body = cap_get(psprintf("%s/metrics", base), api_key, &reached);
	if (body)
	{
		out->running = cap_gauge(body, "vllm:num_requests_running");
		out->waiting = cap_gauge(body, "vllm:num_requests_waiting");
		if (out->running >= 0 || out->waiting >= 0)
			out->source = "metrics";
	}
}

void
sl_capacity_discover(const char *chat_url, const char *api_key, SlCapacity *out)
{
	char	   *base = cap_base_of(chat_url);
	TimestampTz now = GetCurrentTimestamp();

	memset(out, 0, sizeof(SlCapacity));
	out->running = -1;
	out->waiting = -1;
	if (base == NULL)
		return;
	if (cap_base && strcmp(cap_base, base) == 0 &&
		!TimestampDifferenceExceeds(cap_when, now, CAP_REMEMBER_MS))
	{
		*out = cap_known;
		return;
	}
	cap_probe(base, api_key, out);
	if (cap_base)
		pfree(cap_base);
	cap_base = MemoryContextStrdup(TopMemoryContext, base);
	cap_known = *out;
	cap_when = now;
}
