"""Benchmarks behind ``make bench`` (``python -m bench [module ...]``): the targets of spec/performance.md.

Every module in this package that defines ``run() -> list[Row]`` is a benchmark; ``python -m bench`` runs them
all (or the ones named on the command line; ``--list`` names them) and prints one table. A benchmark starts its
own real server process (``bench.servers.statesman``: gunicorn, fs storage, local locks, local KMS unless it says
otherwise), runs its references in the same session (nginx, a do-nothing Flask app), repeats each measurement and
reports medians with min-max. Helpers live in modules without ``run``: ``report`` (rows and the table),
``servers`` (processes), ``clients`` (HTTP clients, wrk, generated states).
"""
