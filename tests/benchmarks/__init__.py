"""Benchmarks: `python -m tests.benchmarks [--quick] [--only NAME,...]` (`make bench`).

Loopback only, against the RabbitMQ the tests use (BENCH_AMQP_URL or TEST_AMQP_URL to
point elsewhere). Every run prints a table with MET/MISSED per target and writes every
number, with the machine it ran on, to bench-results/bench-<timestamp>.json. Absolute
numbers drift on a shared machine, so the comparisons are ratios measured in the same
run, and the table notes when other processes took much CPU meanwhile.

    bench_ingest.py     our receiver vs a naive one: confirmed events/s, 202 latency
    bench_footprint.py  our receiver's RSS under that load, its CPU time while idle
    bench_profile.py    where our receiver's time goes, under pyinstrument
    bench_e2e.py        a steady rate through receiver and worker: send -> handler start
    bench_writeback.py  LeanIX update_many vs one update_fact_sheet per request

Servers and the load generator run in processes of their own (serve.py, baseline.py,
recorder.py, loadgen.py; ingest's load comes from wrk when it is installed, wrkload.py);
procs.py starts and stops them, meters.py reads what they cost from /proc, bus.py
deletes the exchanges and queues they declared (each run's names carry a random
prefix). Nothing here is named test_*, so pytest collects none of it.
"""
