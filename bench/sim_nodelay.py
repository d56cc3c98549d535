#!/usr/bin/env python3
"""The project's LLM simulator (test/llm_sim.py) with TCP_NODELAY on its sockets.

Used by bench/bench_stage1.sh beside the unchanged simulator.  The simulator
writes an answer's headers and body in two send() calls; with Nagle's
algorithm on, the body waits for the client's delayed ACK of the headers,
about 40 ms on Linux loopback, which adds ~40 ms to every call.  This wrapper
only sets the standard StreamRequestHandler switch and runs the simulator's
own main(), so the benchmark can show the extension's figures without that
delay.  Same flags as test/llm_sim.py.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test"))
import llm_sim  # noqa: E402

llm_sim.Handler.disable_nagle_algorithm = True

if __name__ == "__main__":
    sys.exit(llm_sim.main())
