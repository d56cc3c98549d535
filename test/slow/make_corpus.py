#!/usr/bin/env python3
"""make_corpus.py - writes the fuzzer's seed corpus into test/slow/corpus/.

Each seed is an HTTP response body as the extension receives it.  Run once;
the files are committed, so the corpus does not depend on this script.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")
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


def main():
    os.makedirs(OUT, exist_ok=True)
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
