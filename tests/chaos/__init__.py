"""The chaos run: headless annotators behind a fault-injecting proxy, SIGKILLed at random, audited.

`python -m tests.chaos.run --minutes 3` (what `make chaos` calls); the short version is
`tests/chaos/test_chaos_short.py` inside `make test`.
"""
