#!/usr/bin/env python3
"""make_gguf.py - write a GGUF model file with random weights, for the slow target.

The file has the shape of SmolLM2-135M-Instruct (llama architecture: 30 blocks,
embedding 576, feed-forward 1536, 9 attention heads of 64, 3 key/value heads,
vocabulary 49,152, context 8,192, RoPE base 100,000, RMS-norm epsilon 1e-5,
output tied to the token embedding) so that llama.cpp does the same work per
token as with the real model, but every weight is random: the model writes
garbage, and a grammar (a JSON schema) decides its shape.  Nothing here comes
from the real model: the tokenizer is a byte-level BPE built here (256 byte
tokens, then synthetic merges of printable characters, pairs first, then pair +
character, ordered by a rough English/JSON letter frequency), with ChatML's
special tokens and a ChatML chat template.

Usage: python3 make_gguf.py OUT.gguf [--seed N]
Standard library only.  The weights are Q8_0 (~145 MB; F32 norms).  The file is written
to OUT.gguf.tmp and renamed, so a partial file is never mistaken for a model.

Format: GGUF version 3 (ggml's docs/gguf.md): header, metadata key/values,
tensor infos, then the tensor data, each tensor aligned to 32 bytes.
"""

import argparse
import heapq
import os
import random
import struct
import sys

# -- model shape (SmolLM2-135M-Instruct's config.json) -----------------------
N_VOCAB = 49152
N_EMBD = 576
N_FF = 1536
N_LAYER = 30
N_HEAD = 9
N_HEAD_KV = 3
HEAD_DIM = N_EMBD // N_HEAD          # 64
N_CTX = 8192
ROPE_BASE = 100000.0
RMS_EPS = 1e-5
WEIGHT_STD = 0.02

# -- GGUF constants ----------------------------------------------------------
GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
ALIGNMENT = 32
T_UINT32, T_INT32, T_FLOAT32, T_BOOL, T_STRING, T_ARRAY = 4, 5, 6, 7, 8, 9
GGML_F32, GGML_Q8_0 = 0, 8
FILE_TYPE_Q8_0 = 7                   # llama_ftype MOSTLY_Q8_0
TOKEN_NORMAL, TOKEN_CONTROL = 1, 3

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
BOS_ID, EOS_ID = 1, 2
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


# -- tokenizer ---------------------------------------------------------------

def byte_chars():
    """The byte-level BPE alphabet: one printable character per byte value
    (printable Latin-1 bytes stand for themselves, the others are moved to
    U+0100 and up), as byte-level BPE tokenizers spell their tokens."""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(0x100 + extra)
            extra += 1
    return table


def build_vocab():
    """Return (tokens, token types, merges)."""
    bc = byte_chars()
    tokens = list(SPECIALS) + [bc[b] for b in range(256)]
    types = [TOKEN_CONTROL] * len(SPECIALS) + [TOKEN_NORMAL] * 256
    order = (" etaoinsrhldcumfpgwybvkxjqz\"0123456789,:{}[]._-\nETAOINSRHLDCUMFPGWYBVKXJQZ"
             "'()/+*=;!?#$%&<>@\\^`|~\t")
    alphabet = [bc[ord(c)] for c in order]
    rank = {ch: i for i, ch in enumerate(alphabet)}
    merges = []
    pairs = sorted(((a, b) for a in alphabet for b in alphabet),
                   key=lambda p: (rank[p[0]] + rank[p[1]], rank[p[0]]))
    for a, b in pairs:
        merges.append(a + " " + b)
        tokens.append(a + b)
    room = N_VOCAB - len(tokens)
    triples = heapq.nsmallest(
        room, ((rank[a] + rank[b] + rank[c], rank[a], rank[b], a + b, c)
               for a, b in pairs for c in alphabet))
    for _, _, _, left, c in triples:
        merges.append(left + " " + c)
        tokens.append(left + c)
    types += [TOKEN_NORMAL] * (len(tokens) - len(types))
    assert len(tokens) == N_VOCAB and len(set(tokens)) == N_VOCAB
    return tokens, types, merges


# -- GGUF writing ------------------------------------------------------------

def gstr(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, value):
    out = gstr(key) + struct.pack("<I", vtype)
    if vtype == T_STRING:
        return out + gstr(value)
    if vtype == T_ARRAY:
        etype, items = value
        out += struct.pack("<IQ", etype, len(items))
        if etype == T_STRING:
            return out + b"".join(gstr(s) for s in items)
        fmt = {T_INT32: "<i", T_UINT32: "<I", T_FLOAT32: "<f"}[etype]
        return out + b"".join(struct.pack(fmt, v) for v in items)
    fmt = {T_UINT32: "<I", T_INT32: "<i", T_FLOAT32: "<f", T_BOOL: "<?"}[vtype]
    return out + struct.pack(fmt, value)


def tensor_shapes():
    """(name, dims with ne0 first, kind) in file order; kind "norm" is F32."""
    yield "token_embd.weight", (N_EMBD, N_VOCAB), "matrix"
    for i in range(N_LAYER):
        p = "blk.%d." % i
        yield p + "attn_norm.weight", (N_EMBD,), "norm"
        yield p + "attn_q.weight", (N_EMBD, N_EMBD), "matrix"
        yield p + "attn_k.weight", (N_EMBD, N_HEAD_KV * HEAD_DIM), "matrix"
        yield p + "attn_v.weight", (N_EMBD, N_HEAD_KV * HEAD_DIM), "matrix"
        yield p + "attn_output.weight", (N_EMBD, N_EMBD), "matrix"
        yield p + "ffn_norm.weight", (N_EMBD,), "norm"
        yield p + "ffn_gate.weight", (N_EMBD, N_FF), "matrix"
        yield p + "ffn_up.weight", (N_EMBD, N_FF), "matrix"
        yield p + "ffn_down.weight", (N_FF, N_EMBD), "matrix"
    yield "output_norm.weight", (N_EMBD,), "norm"


def tensor_bytes(rng, n, kind):
    if kind == "norm":
        return struct.pack("<%df" % n, *([1.0] * n))
    # block_q8_0: an f16 scale d, then 32 int8 quants; weight = d * q.
    # Uniform int8 has a standard deviation of ~73.9.
    nblocks = n // 32
    buf = bytearray(rng.randbytes(nblocks * 34))
    d = struct.pack("<e", WEIGHT_STD / 73.9)
    buf[0::34] = d[:1] * nblocks
    buf[1::34] = d[1:] * nblocks
    return bytes(buf)


def write_gguf(path, seed=0):
    rng = random.Random(seed)
    tokens, types, merges = build_vocab()
    meta = [
        kv("general.architecture", T_STRING, "llama"),
        kv("general.name", T_STRING, "samplellm-random-smollm2-135m-shape"),
        kv("general.description", T_STRING,
           "Random weights in the shape of SmolLM2-135M-Instruct, written by "
           "samplellm's test/slow/llama/make_gguf.py; it writes garbage."),
        kv("general.file_type", T_UINT32, FILE_TYPE_Q8_0),
        kv("general.alignment", T_UINT32, ALIGNMENT),
        kv("llama.context_length", T_UINT32, N_CTX),
        kv("llama.embedding_length", T_UINT32, N_EMBD),
        kv("llama.block_count", T_UINT32, N_LAYER),
        kv("llama.feed_forward_length", T_UINT32, N_FF),
        kv("llama.attention.head_count", T_UINT32, N_HEAD),
        kv("llama.attention.head_count_kv", T_UINT32, N_HEAD_KV),
        kv("llama.rope.dimension_count", T_UINT32, HEAD_DIM),
        kv("llama.rope.freq_base", T_FLOAT32, ROPE_BASE),
        kv("llama.attention.layer_norm_rms_epsilon", T_FLOAT32, RMS_EPS),
        kv("llama.vocab_size", T_UINT32, N_VOCAB),
        kv("tokenizer.ggml.model", T_STRING, "gpt2"),
        kv("tokenizer.ggml.pre", T_STRING, "gpt-2"),
        kv("tokenizer.ggml.tokens", T_ARRAY, (T_STRING, tokens)),
        kv("tokenizer.ggml.token_type", T_ARRAY, (T_INT32, types)),
        kv("tokenizer.ggml.merges", T_ARRAY, (T_STRING, merges)),
        kv("tokenizer.ggml.bos_token_id", T_UINT32, BOS_ID),
        kv("tokenizer.ggml.eos_token_id", T_UINT32, EOS_ID),
        kv("tokenizer.ggml.padding_token_id", T_UINT32, EOS_ID),
        kv("tokenizer.ggml.add_bos_token", T_BOOL, False),
        kv("tokenizer.chat_template", T_STRING, CHAT_TEMPLATE),
    ]
    shapes = list(tensor_shapes())
    infos, offset, sizes = [], 0, []
    for name, dims, kind in shapes:
        n = 1
        for d in dims:
            n *= d
        ttype = GGML_F32 if kind == "norm" else GGML_Q8_0
        size = 4 * n if kind == "norm" else n // 32 * 34
        infos.append(gstr(name) + struct.pack("<I", len(dims))
                     + b"".join(struct.pack("<Q", d) for d in dims)
                     + struct.pack("<IQ", ttype, offset))
        sizes.append((n, kind, size))
        offset += -(-size // ALIGNMENT) * ALIGNMENT
    head = (GGUF_MAGIC + struct.pack("<IQQ", GGUF_VERSION, len(shapes), len(meta))
            + b"".join(meta) + b"".join(infos))
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(head)
        f.write(b"\0" * (-len(head) % ALIGNMENT))
        for n, kind, size in sizes:
            data = tensor_bytes(rng, n, kind)
            assert len(data) == size
            f.write(data)
            f.write(b"\0" * (-size % ALIGNMENT))
    os.replace(tmp, path)
    return sum(s for _, _, s in sizes)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    n = write_gguf(args.out, args.seed)
    print("wrote %s: %.1f MB of Q8_0 weights" % (args.out, n / 1e6))
    return 0


if __name__ == "__main__":
    sys.exit(main())
