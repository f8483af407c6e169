//! The `tsqr` benchmark workload: the QR factorization of a 2,000,000 × 100 uniform array in
//! 100,000-row chunks (20 row blocks, 1.6 GB) by TSQR, computing `Q.sum()` and `R` in one pass (so
//! every block of `Q` is formed without assembling 1.6 GB of output). `benches/compare_tsqr.py`
//! runs dask's `da.linalg.tsqr` on the same workload in the same run and reports the ratio.
//!
//! ```text
//! cargo run --release -p tessera-benches --example tsqr -- [ROWS COLS CHUNK_ROWS REPEAT]
//! ```
//!
//! Prints one JSON object per line: `{"seconds": .., "cpu_seconds": .., "q_sum": .., "r00": ..}`.

use std::time::Instant;

use tessera_benches::{SEED, process_cpu_time};

fn main() -> tessera::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse()
                .expect("arguments are ROWS COLS CHUNK_ROWS REPEAT")
        })
        .collect();
    let arg = |i: usize, default: usize| args.get(i).copied().unwrap_or(default);
    let (rows, cols, chunk_rows, repeat) =
        (arg(0, 2_000_000), arg(1, 100), arg(2, 100_000), arg(3, 1));
    for _ in 0..repeat {
        let cpu_start = process_cpu_time();
        let start = Instant::now();
        let x = tessera::default_rng(SEED).random(&[rows, cols], [chunk_rows, cols])?;
        let (q, r) = tessera::linalg::qr(&x)?;
        let out = tessera::compute_many(&[&q.sum()?, &r])?;
        let seconds = start.elapsed().as_secs_f64();
        let cpu = process_cpu_time()
            .zip(cpu_start)
            .map(|(e, s)| e.saturating_sub(s).as_secs_f64());
        let q_sum = out[0].clone().into_typed::<f64>()?.sum();
        let r00 = out[1].clone().into_typed::<f64>()?[[0, 0]];
        println!(
            "{{\"seconds\": {seconds}, \"cpu_seconds\": {}, \"q_sum\": {q_sum}, \"r00\": {r00}}}",
            cpu.map_or("null".to_string(), |c| c.to_string())
        );
    }
    Ok(())
}
