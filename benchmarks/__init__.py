"""Throughput, compile-time, roofline, profile and memory benchmarks of npvae against PyTorch and JAX."""
