"""Benchmarks behind ``make bench`` (``python -m bench [module ...]``): the targets of spec/performance.md.

Every module in this package that defines ``run() -> list[Row]`` is a benchmark; ``python -m bench`` runs them
all (or the ones named on the command line; ``--list`` names them) and prints one table; ``--save FILE`` also
writes it as JSON and ``--baseline FILE`` compares it with such a file. A benchmark starts its own real server
process (``bench.servers.statesman``: gunicorn, fs storage, local locks, local KMS and the production log level
unless it says otherwise), runs its references in the same session (nginx, a do-nothing Flask app), repeats each
measurement and reports medians with min-max. Helpers live in modules without ``run``: ``report`` (rows, the table,
saved rows), ``servers`` (processes, their CPU), ``clients`` (HTTP clients, wrk, generated states) and
``reference_app`` (the do-nothing Flask app).
"""
