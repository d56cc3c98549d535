#!/usr/bin/env python3
"""make_corpus.py - writes the fuzzers' seed corpora: test/slow/corpus/ (each
seed an HTTP response body as the extension receives it) and
test/slow/corpus_stream/ (one byte for the arrival step, then a streamed
answer as server-sent events).  Run once;
the files are committed, so the corpus does not depend on this script.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")
OUT_STREAM = os.path.join(HERE, "corpus_stream")
ROWS = [{"id": 1, "big": 9007199254740993, "price": 12.99, "score": 0.25,
         "clicked": True, "name": "user3", "code": "c17", "day": "2024-01-05",
         "seen_at": "2024-01-02T03:00:00+00:00", "m": "sad"},
        {"id": 2, "big": None, "price": 0, "score": -1.5e-7, "clicked": False,
         "name": "caf\u00e9 \U0001F600", "code": "c1", "day": "2024-01-06",
         "seen_at": "2024-01-03T04:00:00Z", "m": "happy"}]


def envelope(content, finish="stop", usage=True, **msg):
    m = {"role": "assistant", "content": content}
    m.update(msg)
    env = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000,
           "model": "sim", "choices": [{"index": 0, "message": m, "finish_reason": finish}]}
    if usage:
        env["usage"] = {"prompt_tokens": 812, "completion_tokens": 120, "total_tokens": 932}
    return json.dumps(env)


def seeds():
    rows = json.dumps({"rows": ROWS})
    yield "valid_rows", envelope(rows)
    yield "valid_reasoning", envelope(json.dumps({"reasoning": "columns {a} [b]", "rows": ROWS}))
    yield "bare_array", envelope(json.dumps(ROWS))
    yield "truncated_length", envelope(rows[: len(rows) * 2 // 3], finish="length")
    yield "truncated_no_finish", envelope(rows[:-10])
    yield "prose", envelope("Sure! Here are the rows:\n```json\n" + rows + "\n```\nHope this helps.")
    yield "prose_braces", envelope("Note {this} and [that]: " + rows + " {trailing")
    yield "deep_content", envelope('{"rows": [{"id": ' + "[" * 40 + "1" + "]" * 40 + "}]}")
    yield "deep_envelope", '{"meta":' + '{"a":' * 40 + "1" + "}" * 40 + "," + envelope(rows)[1:]
    yield "big_numbers", envelope('{"rows": [{"a": 123456789012345678901234567890, "b": -9223372036854775809, '
                                  '"c": 1e400, "d": -0.0, "e": 1.7976931348623157e308, "f": 5e-324, '
                                  '"g": 0.1000000000000000055511151231257827}]}')
    yield "nul_in_row", envelope(rows.replace("user3", "us\u0000er3"))
    yield "nul_envelope", envelope("x")[:-2] + '\\u0000"}'
    yield "surrogates", envelope('{"rows": [{"a": "\\ud83d\\ude00", "b": "\\ud800", "c": "\\udc00x"}]}')
    yield "escapes", envelope('{"rows": [{"a": "\\"quoted\\" \\\\ \\/ \\b\\f\\n\\r\\t \\u00e9"}]}')
    yield "dup_keys", envelope('{"rows": [{"a": 1, "a": "two", "b": [1,2], "c": {"d": null}}]}')
    yield "rows_not_array", envelope('{"rows": {"a": 1}}')
    yield "rows_scalars", envelope('{"rows": [1, "x", null, true, [1, {"a": 2}]]}')
    yield "content_null", envelope(None)
    yield "refusal", envelope(None, refusal="I can't help with that.")
    yield "choices_empty", '{"id":"x","object":"chat.completion","choices":[]}'
    yield "error_429", '{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}'
    yield "usage_odd", envelope(rows, usage=False)[:-1] + ',"usage":{"prompt_tokens":-5,"completion_tokens":1e300}}'
    yield "html", "<html><body><h1>502 Bad Gateway</h1></body></html>"
    yield "empty_object", "{}"
    yield "number_lexemes", envelope('{"rows": [{"a": -0, "b": 1E+2, "c": 1e-2, "d": 01, "e": -1.5E-3}]}')
    yield "content_number", '{"choices":[{"message":{"content":12}}]}'
    yield "salvage_many", envelope('{"rows": [' + ",".join(['{"a": %d, "b": "x"}' % i for i in range(50)]) + ', {"a": ',
                                   finish="length")
    yield "rows_key_in_string", envelope('{"text": "\\"rows\\": [{\\"a\\": 1}]", "other": [')


def sse(pieces, finish="stop", usage=True, crlf=False, extra=""):
    """A streamed chat completion: one chunk per content piece, the finish
    chunk, the usage chunk, [DONE] (OpenAI's and llama.cpp's shape)."""
    nl = "\r\n" if crlf else "\n"
    out = [extra]
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000,
            "model": "sim"}
    first = dict(head, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""},
                                 "finish_reason": None}])
    out.append("data: " + json.dumps(first) + nl + nl)
    for p in pieces:
        c = dict(head, choices=[{"index": 0, "delta": {"content": p}, "finish_reason": None}])
        out.append("data: " + json.dumps(c) + nl + nl)
    if finish is not None:
        c = dict(head, choices=[{"index": 0, "delta": {}, "finish_reason": finish}])
        out.append("data: " + json.dumps(c) + nl + nl)
    if usage:
        c = dict(head, choices=[], usage={"prompt_tokens": 812, "completion_tokens": 120,
                                          "total_tokens": 932})
        out.append("data: " + json.dumps(c) + nl + nl)
    out.append("data: [DONE]" + nl + nl)
    return "".join(out)


def stream_seeds():
    """The stream target's seeds: the first byte picks the arrival step."""
    rows = json.dumps({"rows": ROWS})
    pieces = [rows[i:i + 4] for i in range(0, len(rows), 4)]
    yield "stream_rows", "\x07" + sse(pieces)
    yield "stream_crlf", "\x03" + sse(pieces, crlf=True)
    yield "stream_keepalive", "\x01" + sse(pieces[:8], extra=": keep-alive\n\nevent: message\nid: 1\nretry: 10\n\n")
    yield "stream_cut", "\x05" + sse(pieces[: len(pieces) // 2], finish=None, usage=False)[:-20]
    yield "stream_length", "\x0b" + sse(pieces[: len(pieces) // 2], finish="length")
    yield "stream_error", "\x02" + 'data: {"error": {"message": "overloaded", "code": 503}}\n\n'
    yield "stream_multiline", "\x09" + 'data: {"choices": [{"index": 0,\ndata: "delta": {"content": "{\\"rows\\": []}"}}]}\n\ndata: [DONE]'
    yield "stream_nul", "\x04" + sse(["{\"rows\": [{\"a\": \"x", "\u0000", "y\"}]}"])
    yield "stream_not_json", "\x06" + "data: {not json\n\ndata: [DONE]\n\n"
    yield "stream_after_done", "\x08" + sse(pieces[:3]) + "data: " + json.dumps(
        {"choices": [{"index": 0, "delta": {"content": "late"}}]}) + "\n\n"


def main():
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(OUT_STREAM, exist_ok=True)
    for name, body in stream_seeds():
        with open(os.path.join(OUT_STREAM, name + ".sse"), "w", encoding="utf-8", newline="") as f:
            f.write(body)
    for name, body in seeds():
        with open(os.path.join(OUT, name + ".json"), "w", encoding="utf-8", newline="") as f:
            f.write(body)
    # raw bytes the text writer cannot express
    raw = {
        "invalid_utf8": envelope("X").encode()[:-3] + b'\xff\xfe\xc0\xaf"}}]}',
        "overlong_utf8": envelope('{"rows": [{"a": "X"}]}').encode().replace(b"X", b"\xc0\xaf"),
        "raw_nul": envelope('{"rows": [{"a": "X"}]}').encode().replace(b"X", b"\x00"),
        "utf8_4byte": envelope('{"rows": [{"a": "X"}]}').encode().replace(b"X", "\U0010FFFF".encode()),
    }
    for name, body in raw.items():
        with open(os.path.join(OUT, name + ".bin"), "wb") as f:
            f.write(body)


if __name__ == "__main__":
    main()
