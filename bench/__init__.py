"""bulkhead benchmarks (not tests): `python bench/run.py`."""
