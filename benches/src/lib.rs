//! Benchmarks of tessera: criterion benches in `benches/`, and `compare_dask.py`, which runs the same
//! workloads in dask beside ours. This library holds nothing but the crate root cargo needs.
