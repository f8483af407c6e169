//! Zarr stores on a cluster, driven the way a user runs it: the real scheduler and two workers, a
//! store in a directory all of them see. Workers write the chunks they compute straight into the store
//! (the client receives only counts) and the result is the same bytes as a local write; arrays read
//! from the store on the cluster give the local executor's values bit for bit; a corrupt chunk fails
//! the job with an error naming the store and the chunk.
//!
//! The harness (starting the binaries, comparing bits) is in `common/mod.rs`.

mod common;

use std::path::{Path, PathBuf};

use common::{Cluster, assert_same_bits, local};
use tessera::{ZarrCodec, ZarrOptions, ZarrReadOptions, from_zarr, from_zarr_with, s};

/// Every file under `dir` (relative path and bytes), sorted.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn workers_write_and_read_a_store_with_the_bytes_of_a_local_write() {
    let cluster = Cluster::start(2);
    let client = cluster.client();
    let dir = tempfile::tempdir().unwrap();
    let x = tessera::default_rng(11)
        .standard_normal(&[300, 200], [70, 50])
        .unwrap();
    let y = (&x * 2.0) + 1.0;
    for (name, opts) in [
        ("plain", ZarrOptions::new().chunks([50, 50])),
        (
            "sharded-blosc",
            ZarrOptions::new()
                .chunks([25, 50])
                .shards([100, 100])
                .codec(ZarrCodec::Blosc {
                    compressor: tessera::BloscCompressor::Zstd,
                    level: 3,
                    shuffle: true,
                }),
        ),
    ] {
        let here = dir.path().join(format!("{name}-local.zarr"));
        let there = dir.path().join(format!("{name}-cluster.zarr"));
        y.to_zarr(&here, &opts).unwrap();
        y.to_zarr_on(&there, &opts, &client).unwrap();
        let (a, b) = (files(&here), files(&there));
        assert!(a.len() > 4, "{name}: {} files", a.len());
        assert_eq!(
            a, b,
            "{name}: the cluster's store differs from the local one"
        );

        // Read back on the cluster: the store's values, and expressions over them.
        let z = from_zarr(&there).unwrap();
        assert_same_bits(&local(&y), &z.compute_on(&client).unwrap(), name);
        let m = z.mean().unwrap();
        assert_same_bits(&local(&m), &m.compute_on(&client).unwrap(), name);
        let g = from_zarr_with(&there, &ZarrReadOptions::new().group([2, 1]))
            .unwrap()
            .slice(s![10..290;3, ..])
            .unwrap()
            .sum_axis(1)
            .unwrap();
        assert_same_bits(&local(&g), &g.compute_on(&client).unwrap(), name);
    }

    // A region written by the cluster into an existing store.
    let there = dir.path().join("plain-cluster.zarr");
    let here = dir.path().join("plain-local.zarr");
    let patch = tessera::ones::<f64>(&[60, 75], [30, 25]).unwrap();
    let opts = ZarrOptions::new().region([30, 40]);
    patch.to_zarr(&here, &opts).unwrap();
    patch.to_zarr_on(&there, &opts, &client).unwrap();
    assert_eq!(files(&here), files(&there));

    // A corrupt chunk fails the job with the store and the chunk named.
    std::fs::write(there.join("c/1/2"), b"not a zstd frame").unwrap();
    let e = from_zarr(&there)
        .unwrap()
        .sum()
        .unwrap()
        .compute_on(&client)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("plain-cluster.zarr") && e.contains("c/1/2"),
        "{e}"
    );
    // The cluster still works after the failed job.
    cluster.assert_headline_job_is_exact();
}
