"""End-to-end benchmarks that start real processes (broker, Milvus, worker): a checkout's tools, not the package."""
