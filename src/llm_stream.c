/*-------------------------------------------------------------------------
 *
 * llm_stream.c
 *	  Stage 1, step 4b: a chat completion streamed as server-sent events,
 *	  parsed as its bytes arrive and assembled into one answer.
 *
 * The HTTP layer feeds the bytes a transfer has received so far (from its
 * main loop, never from a curl callback, so palloc is fine here).  Only what
 * the answer needs is kept: the content pieces, the finish reason and the
 * usage chunk's token counts; every event is parsed with bounded nesting.
 * The assembled body has the shape of a non-streamed answer, so the parser,
 * the truncation salvage and the cache see one format whichever way the
 * answer came.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/json.h"

#include "llm.h"

void
sl_sse_init(SlSse *s)
{
	memset(s, 0, sizeof(SlSse));
	initStringInfo(&s->event);
	initStringInfo(&s->content);
}

/* One chat.completion.chunk (or an error event). */
static void
take_chunk(SlSse *s, const char *data, size_t len)
{
	cJSON	   *doc;
	cJSON	   *choices;
	cJSON	   *usage;

	s->events++;
	doc = sl_json_parse_bounded(data, len);
	if (!cJSON_IsObject(doc))
	{
		s->bad = true;
		return;
	}
	if (cJSON_GetObjectItemCaseSensitive(doc, "error") != NULL)
	{
		s->error = true;
		return;
	}
	usage = cJSON_GetObjectItemCaseSensitive(doc, "usage");
	if (cJSON_IsObject(usage))
	{
		cJSON	   *pt = cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens");
		cJSON	   *ct = cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens");

		if (cJSON_IsNumber(pt) && pt->valuedouble >= 0 && pt->valuedouble < 1e12)
			s->prompt_tokens = (int64) pt->valuedouble;
		if (cJSON_IsNumber(ct) && ct->valuedouble >= 0 && ct->valuedouble < 1e12)
			s->completion_tokens = (int64) ct->valuedouble;
		s->have_usage = true;
	}
	/* the usage chunk has "choices": [] */
	choices = cJSON_GetObjectItemCaseSensitive(doc, "choices");
	if (cJSON_IsArray(choices) && cJSON_GetArraySize(choices) > 0)
	{
		cJSON	   *choice = cJSON_GetArrayItem(choices, 0);
		cJSON	   *delta = cJSON_IsObject(choice) ?
			cJSON_GetObjectItemCaseSensitive(choice, "delta") : NULL;
		cJSON	   *finish = cJSON_IsObject(choice) ?
			cJSON_GetObjectItemCaseSensitive(choice, "finish_reason") : NULL;

		s->have_choice = true;
		if (cJSON_IsObject(delta))
		{
			/* a role chunk's content may be null */
			cJSON	   *content = cJSON_GetObjectItemCaseSensitive(delta, "content");

			if (cJSON_IsString(content))
			{
				/* cJSON decodes \u0000 into a NUL that would cut the text */
				if (memmem(data, len, "\\u0000", 6) != NULL)
					s->nul = true;
				appendStringInfoString(&s->content, content->valuestring);
				s->have_content = true;
				s->pieces++;
			}
		}
		if (cJSON_IsString(finish) && s->finish == NULL)
			s->finish = pstrdup(finish->valuestring);
	}
	cJSON_Delete(doc);
}

static void
dispatch(SlSse *s)
{
	if (s->event.len == 0)
		return;
	if (strcmp(s->event.data, "[DONE]") == 0)
		s->done = true;
	else if (!s->done)
		take_chunk(s, s->event.data, s->event.len);
	resetStringInfo(&s->event);
}

/* One line, without its end of line. */
static void
take_line(SlSse *s, const char *line, size_t len)
{
	if (len == 0)
	{
		dispatch(s);			/* a blank line ends an event */
		return;
	}
	if (line[0] == ':')
		return;					/* a comment: keep-alive */
	if (len >= 5 && memcmp(line, "data:", 5) == 0)
	{
		line += 5;
		len -= 5;
		if (len > 0 && line[0] == ' ')
		{
			line++;
			len--;
		}
		if (s->event.len > 0)
			appendStringInfoChar(&s->event, '\n');
		appendBinaryStringInfo(&s->event, line, len);
		/* "data: [DONE]" may come without the blank line after it */
		if (strcmp(s->event.data, "[DONE]") == 0)
			dispatch(s);
	}
	/* event:, id:, retry: and unknown fields carry nothing we need */
}

size_t
sl_sse_feed(SlSse *s, const char *buf, size_t len, bool at_end)
{
	size_t		pos = 0;

	/*
	 * The caller hands back the bytes left over last time with the new ones
	 * after them: the first s->scanned of them hold no newline, so a long
	 * line arriving a few bytes at a time is scanned once, not once per
	 * arrival.
	 */
	size_t		from = Min(s->scanned, len);

	for (;;)
	{
		const char *nl = memchr(buf + from, '\n', len - from);
		size_t		end;

		if (nl == NULL)
			break;
		end = nl - buf;
		take_line(s, buf + pos, (end > pos && buf[end - 1] == '\r') ? end - pos - 1 : end - pos);
		pos = from = end + 1;
	}
	s->scanned = len - pos;
	if (at_end)
	{
		if (pos < len)
			take_line(s, buf + pos, len - pos);
		dispatch(s);
		pos = len;
		s->scanned = 0;
	}
	return pos;
}

char *
sl_sse_body(const SlSse *s)
{
	StringInfoData b;

	initStringInfo(&b);
	appendStringInfoString(&b, "{\"object\":\"chat.completion\",\"choices\":[");
	/* an event that was not a chunk (too deep, not JSON): malformed, whole */
	if (s->have_choice && !s->bad)
	{
		appendStringInfoString(&b, "{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
		if (s->have_content)
		{
			/* escape_json stops at a NUL: mark it so the parser sees it */
			escape_json(&b, s->content.data);
			if (s->nul)
			{
				b.len--;
				b.data[b.len] = '\0';
				appendStringInfoString(&b, "\\u0000\"");
			}
		}
		else
			appendStringInfoString(&b, "null");
		appendStringInfoString(&b, "},\"finish_reason\":");
		if (s->finish)
			escape_json(&b, s->finish);
		else
			appendStringInfoString(&b, "null");
		appendStringInfoChar(&b, '}');
	}
	appendStringInfoChar(&b, ']');
	if (s->have_usage)
		appendStringInfo(&b, ",\"usage\":{\"prompt_tokens\":" INT64_FORMAT
						 ",\"completion_tokens\":" INT64_FORMAT "}",
						 s->prompt_tokens, s->completion_tokens);
	appendStringInfoChar(&b, '}');
	return b.data;
}
