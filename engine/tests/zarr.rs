//! Zarr stores: round trips of every dtype and rank through `to_zarr`/`from_zarr` against the data
//! written, each codec with and without sharding, array chunkings that do not align with the store's
//! (rechunked before writing), grouped reads, writes into a region of an existing array checked
//! against the same assignment in plain ndarray, missing chunks (the fill value), typed errors naming
//! the store and the chunk for corrupt chunks, bad metadata, unsupported dtypes and missing stores,
//! and interoperability with zarr-python both ways (v2 and v3, zstd/gzip/blosc, sharded), in a venv
//! the test makes itself (or `$TESSERA_ZARR_PYTHON`), skipped with a printed reason when it cannot.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;
use ndarray::{ArrayD, IxDyn, s};
use tessera::{
    ArrayData, BloscCompressor, ChunkSpec, DType, Error, LocalExecutor, ZarrCodec, ZarrOptions,
    ZarrReadOptions, default_rng, from_array, from_array_data, from_npy, from_zarr, from_zarr_with,
};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

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

fn chunk_files(dir: &Path) -> Vec<String> {
    files(dir)
        .into_iter()
        .map(|(p, _)| p.to_string_lossy().into_owned())
        .filter(|p| p.starts_with("c/") || p == "c")
        .collect()
}

fn zarr_reason(e: Error) -> (String, String) {
    match e {
        Error::Zarr { store, reason } => (store, reason),
        e => panic!("expected a Zarr error, got {e:?}"),
    }
}

#[test]
fn round_trip_every_dtype_and_rank() {
    let dir = tmp();
    let mut shapes = shapes_0_to_4();
    shapes.push(vec![1]);
    for (si, shape) in shapes.into_iter().enumerate() {
        for &dtype in &DTYPES {
            let data = sample_data(dtype, &shape, si as u64 + 1);
            for (name, spec) in chunkings(&shape).into_iter().take(2) {
                let path = dir.path().join(format!("a{si}-{dtype}-{name}.zarr"));
                in_context(format!("{shape:?} {dtype} {name}"), || {
                    let a = from_array_data(data.clone(), spec.clone()).unwrap();
                    a.to_zarr(&path, &ZarrOptions::new()).unwrap();
                    let back = from_zarr(&path).unwrap();
                    assert_eq!(back.dtype(), dtype);
                    assert_eq!(back.shape(), shape.as_slice());
                    // The store is chunked like the array's first chunk, and read one task per
                    // store chunk.
                    let first: Vec<usize> =
                        (0..shape.len()).map(|ax| a.chunks().axis(ax)[0]).collect();
                    for (ax, &c) in first.iter().enumerate() {
                        assert_eq!(back.chunks().axis(ax)[0], c.min(shape[ax]));
                    }
                    check_data(&back, &data);
                });
            }
        }
    }
}

#[test]
fn each_codec_with_and_without_sharding() {
    let dir = tmp();
    let x = default_rng(7).standard_normal(&[50, 30], [10, 15]).unwrap();
    let expected = x.compute_dyn().unwrap();
    let codecs = [
        ZarrCodec::None,
        ZarrCodec::Zstd { level: 1 },
        ZarrCodec::Gzip { level: 6 },
        ZarrCodec::Blosc {
            compressor: BloscCompressor::Lz4,
            level: 5,
            shuffle: true,
        },
        ZarrCodec::Blosc {
            compressor: BloscCompressor::Zstd,
            level: 3,
            shuffle: false,
        },
    ];
    let mut sizes = Vec::new();
    for (i, codec) in codecs.into_iter().enumerate() {
        for shards in [None, Some([20, 30])] {
            let path = dir.path().join(format!("c{i}-{}.zarr", shards.is_some()));
            let mut opts = ZarrOptions::new().chunks([10, 15]).codec(codec);
            if let Some(s) = shards {
                opts = opts.shards(s);
            }
            x.to_zarr(&path, &opts).unwrap();
            let back = from_zarr(&path).unwrap();
            assert_bits_eq(&back.compute_dyn().unwrap(), &expected);
            let chunks = chunk_files(&path);
            match shards {
                // One object per store chunk, 5 × 2 of them.
                None => {
                    assert_eq!(chunks.len(), 10, "{codec:?}: {chunks:?}");
                    assert_eq!(back.numblocks(), vec![5, 2]);
                }
                // One object per shard (20 × 30: 3 × 1), read one task per shard.
                Some(_) => {
                    assert_eq!(chunks.len(), 3, "{codec:?}: {chunks:?}");
                    assert_eq!(back.chunks().axis(0), &[20, 20, 10]);
                }
            }
            if shards.is_none() {
                sizes.push(files(&path).iter().map(|(_, b)| b.len()).sum::<usize>());
            }
        }
    }
    // Raw chunks hold every byte (random normals barely compress, so only raw is checked).
    assert!(sizes[0] >= 50 * 30 * 8, "{sizes:?}");
}

#[test]
fn irregular_chunks_are_rechunked_to_the_store_before_writing() {
    let dir = tmp();
    let data = iota(&[23, 17]);
    let a = from_array(data.clone(), vec![vec![7, 9, 7], vec![5, 5, 7]]).unwrap();
    for (name, opts) in [
        ("plain", ZarrOptions::new().chunks([5, 5])),
        ("sharded", ZarrOptions::new().chunks([2, 5]).shards([6, 10])),
    ] {
        let path = dir.path().join(format!("{name}.zarr"));
        a.to_zarr(&path, &opts).unwrap();
        let back = from_zarr(&path).unwrap();
        check(&back, &data);
        let unit = if name == "plain" { [5, 5] } else { [6, 10] };
        assert_eq!(back.chunks().axis(0)[0], unit[0]);
        assert_eq!(back.chunks().axis(1)[0], unit[1]);
    }
    // The same array written with aligned chunks gives the same bytes.
    let aligned = from_array(data, [5, 5]).unwrap();
    let other = dir.path().join("aligned.zarr");
    aligned
        .to_zarr(&other, &ZarrOptions::new().chunks([5, 5]))
        .unwrap();
    assert_eq!(files(&other), files(&dir.path().join("plain.zarr")));
}

#[test]
fn grouped_reads_and_node_paths() {
    let dir = tmp();
    let path = dir.path().join("g.zarr");
    let x = default_rng(3).random(&[40, 36], [10, 12]).unwrap();
    x.to_zarr(&path, &ZarrOptions::new().path("group/x"))
        .unwrap();
    let expected = x.compute::<f64>().unwrap();
    let y = from_zarr_with(&path, &ZarrReadOptions::new().path("group/x").group([3, 2])).unwrap();
    assert_eq!(y.chunks().axis(0), &[30, 10]);
    assert_eq!(y.chunks().axis(1), &[24, 12]);
    check(&y, &expected);
    // Lazily: a slice reads only what it needs, with the same values.
    check(
        &y.slice(s![5..33;3, ..;-2]).unwrap(),
        &expected.slice(s![5..33;3, ..;-2]).to_owned().into_dyn(),
    );
    let (store, _) = zarr_reason(from_zarr(&path).unwrap_err());
    assert!(store.ends_with("g.zarr"), "{store}");
}

#[test]
fn region_writes_match_the_same_assignment_in_ndarray() {
    let dir = tmp();
    let path = dir.path().join("r.zarr");
    let base = (iota(&[20, 21]).mapv(|v| v as f64) * 0.5).into_dyn();
    from_array(base.clone(), [8, 8])
        .unwrap()
        .to_zarr(&path, &ZarrOptions::new().chunks([6, 6]))
        .unwrap();
    let mut oracle = base;
    // A block at an offset that is not on a store chunk boundary, in chunks that are not either.
    let patch = gen_range(&[7, 9], 11, -1.0, 1.0);
    from_array(patch.clone(), [2, 4])
        .unwrap()
        .to_zarr(&path, &ZarrOptions::new().region([3, 5]))
        .unwrap();
    oracle.slice_mut(s![3..10, 5..14]).assign(&patch);
    // One reaching the array's far edge.
    let edge = gen_range(&[4, 3], 12, 5.0, 6.0);
    from_array(edge.clone(), [4, 3])
        .unwrap()
        .to_zarr(&path, &ZarrOptions::new().region([16, 18]))
        .unwrap();
    oracle.slice_mut(s![16..20, 18..21]).assign(&edge);
    check(&from_zarr(&path).unwrap(), &oracle);
    // The store's metadata and chunking are unchanged.
    assert_eq!(from_zarr(&path).unwrap().chunks().axis(0), &[6, 6, 6, 2]);
}

#[test]
fn region_write_errors() {
    let dir = tmp();
    let path = dir.path().join("r.zarr");
    tessera::zeros::<f64>(&[10, 10], [5, 5])
        .unwrap()
        .to_zarr(&path, &ZarrOptions::new())
        .unwrap();
    let ints = tessera::arange(0i64, 4, 1, [4])
        .unwrap()
        .reshape(&[2, 2])
        .unwrap();
    let (store, reason) = zarr_reason(
        ints.to_zarr(&path, &ZarrOptions::new().region([0, 0]))
            .unwrap_err(),
    );
    assert!(store.ends_with("r.zarr"), "{store}");
    assert!(
        reason.contains("float64") && reason.contains("int64"),
        "{reason}"
    );
    let ones = tessera::ones::<f64>(&[4, 4], [4, 4]).unwrap();
    let e = ones
        .to_zarr(&path, &ZarrOptions::new().region([8, 0]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("offset 8 along axis 0") && e.contains("length is 10"),
        "{e}"
    );
    let e = ones
        .to_zarr(&path, &ZarrOptions::new().region([0]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("region offset [0]"), "{e}");
    let missing = dir.path().join("nothing-here.zarr");
    let (_, reason) = zarr_reason(
        ones.to_zarr(&missing, &ZarrOptions::new().region([0, 0]))
            .unwrap_err(),
    );
    assert!(reason.contains("does not exist"), "{reason}");
}

#[test]
fn missing_chunks_read_as_the_fill_value() {
    let dir = tmp();
    let path = dir.path().join("f.zarr");
    let data = gen_range(&[10, 10], 4, 0.0, 1.0);
    from_array(data.clone(), [5, 5])
        .unwrap()
        .to_zarr(&path, &ZarrOptions::new().fill_value(-1.5))
        .unwrap();
    std::fs::remove_file(path.join("c/1/0")).unwrap();
    let mut expected = data;
    expected.slice_mut(s![5..10, 0..5]).fill(-1.5);
    check(&from_zarr(&path).unwrap(), &expected);
}

#[test]
fn corrupt_chunks_name_the_store_and_the_chunk() {
    let dir = tmp();
    let path = dir.path().join("bad.zarr");
    default_rng(1)
        .random(&[10, 10], [5, 5])
        .unwrap()
        .to_zarr(&path, &ZarrOptions::new())
        .unwrap();
    std::fs::write(path.join("c/0/1"), b"this is not zstd").unwrap();
    let x = from_zarr(&path).unwrap();
    // Chunks other than the corrupt one still read.
    assert!(x.slice(s![5.., ..]).unwrap().compute::<f64>().is_ok());
    let e = x.sum().unwrap().compute_dyn().unwrap_err().to_string();
    assert!(e.contains("bad.zarr"), "{e}");
    assert!(e.contains("chunk [0, 1]") && e.contains("c/0/1"), "{e}");
}

#[test]
fn bad_metadata_unsupported_dtypes_and_missing_stores() {
    let dir = tmp();
    let (store, reason) = zarr_reason(from_zarr(dir.path().join("absent.zarr")).unwrap_err());
    assert!(store.ends_with("absent.zarr"), "{store}");
    assert!(reason.contains("does not exist"), "{reason}");

    let empty = dir.path().join("empty.zarr");
    std::fs::create_dir(&empty).unwrap();
    let (_, reason) = zarr_reason(from_zarr(&empty).unwrap_err());
    assert!(reason.contains("no array metadata"), "{reason}");

    let garbled = dir.path().join("garbled.zarr");
    std::fs::create_dir(&garbled).unwrap();
    std::fs::write(
        garbled.join("zarr.json"),
        "{\"zarr_format\": 3, \"node_type\": ",
    )
    .unwrap();
    let (store, _) = zarr_reason(from_zarr(&garbled).unwrap_err());
    assert!(store.ends_with("garbled.zarr"), "{store}");

    let int16 = dir.path().join("int16.zarr");
    std::fs::create_dir(&int16).unwrap();
    std::fs::write(
        int16.join("zarr.json"),
        r#"{"zarr_format": 3, "node_type": "array", "shape": [4], "data_type": "int16",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2]}},
            "chunk_key_encoding": {"name": "default"}, "fill_value": 0,
            "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}]}"#,
    )
    .unwrap();
    let (_, reason) = zarr_reason(from_zarr(&int16).unwrap_err());
    assert!(
        reason.contains("int16") && reason.contains("not supported"),
        "{reason}"
    );
}

#[test]
fn stores_are_identical_whatever_the_thread_count() {
    let dir = tmp();
    let x = default_rng(9).random(&[64, 48], [16, 16]).unwrap();
    let y = (&x * 3.0f64) - 1.0f64;
    let opts = ZarrOptions::new().chunks([16, 16]).shards([32, 48]);
    let one = dir.path().join("one.zarr");
    let two = dir.path().join("two.zarr");
    y.to_zarr_on(&one, &opts, &LocalExecutor::with_threads(1).unwrap())
        .unwrap();
    y.to_zarr_on(&two, &opts, &LocalExecutor::with_threads(2).unwrap())
        .unwrap();
    assert_eq!(files(&one), files(&two));
    // Overwriting replaces the old contents entirely (no stale chunks of a larger array).
    let small = tessera::ones::<f64>(&[8, 8], [8, 8]).unwrap();
    small.to_zarr(&one, &ZarrOptions::new()).unwrap();
    assert_eq!(chunk_files(&one), vec!["c/0/0".to_string()]);
    check(
        &from_zarr(&one).unwrap(),
        &ArrayD::from_elem(IxDyn(&[8, 8]), 1.0f64),
    );
}

// ---------------------------------------------------------------------------------------------
// zarr-python

/// An interpreter with zarr-python and numpy: `$TESSERA_ZARR_PYTHON`, or a venv made once under the
/// target directory. `None` (the reason printed) when neither can be had.
fn python() -> Option<PathBuf> {
    static PY: OnceLock<Option<PathBuf>> = OnceLock::new();
    PY.get_or_init(|| {
        if let Ok(p) = std::env::var("TESSERA_ZARR_PYTHON") {
            return Some(PathBuf::from(p));
        }
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("zarr-venv");
        let py = venv.join("bin/python");
        let ready = venv.join("ready");
        if ready.exists() {
            return Some(py);
        }
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(&py)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "zarr",
                    "numpy",
                    "moto[server]",
                ])
                .status()
                .is_ok_and(|s| s.success());
        if made {
            std::fs::write(&ready, "").unwrap();
            Some(py)
        } else {
            println!(
                "SKIPPED: could not make a venv with zarr-python at {}",
                venv.display()
            );
            None
        }
    })
    .clone()
}

fn interop(py: &Path, mode: &str, dir: &Path) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zarr_interop.py");
    let out = Command::new(py)
        .arg(script)
        .arg(mode)
        .arg(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "zarr_interop.py {mode} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn zarr_python_reads_what_tessera_writes() {
    let Some(py) = python() else { return };
    let dir = tmp();
    let mut n = 0;
    let codecs = [
        ("zstd", ZarrCodec::Zstd { level: 3 }),
        ("gzip", ZarrCodec::Gzip { level: 5 }),
        (
            "blosc",
            ZarrCodec::Blosc {
                compressor: BloscCompressor::Lz4,
                level: 5,
                shuffle: true,
            },
        ),
        ("raw", ZarrCodec::None),
    ];
    for &dtype in &DTYPES {
        let mut data = sample_data(dtype, &[19, 11], 40 + n);
        if let ArrayData::F64(a) = &mut data {
            a[[0, 0]] = f64::NAN;
            a[[1, 0]] = -0.0;
        }
        for (cname, codec) in codecs {
            for (layout, chunking) in [
                ("regular", ChunkSpec::Block(vec![5, 4])),
                (
                    "ragged",
                    ChunkSpec::Explicit(vec![vec![1, 2, 7, 9], vec![6, 5]]),
                ),
                ("sharded", ChunkSpec::Block(vec![5, 4])),
            ] {
                let name = format!("{dtype}-{cname}-{layout}");
                let a = from_array_data(data.clone(), chunking).unwrap();
                let mut opts = ZarrOptions::new().chunks([5, 4]).codec(codec);
                if layout == "sharded" {
                    opts = opts.shards([10, 8]);
                }
                a.to_zarr(dir.path().join(format!("{name}.zarr")), &opts)
                    .unwrap();
                a.to_npy(dir.path().join(format!("{name}.npy"))).unwrap();
                n += 1;
            }
        }
    }
    let out = interop(&py, "check", dir.path());
    assert_eq!(
        out.lines().last(),
        Some(format!("checked {n}").as_str()),
        "{out}"
    );
}

#[test]
fn tessera_reads_what_zarr_python_writes() {
    let Some(py) = python() else { return };
    let dir = tmp();
    interop(&py, "write", dir.path());
    let mut n = 0;
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let store = e.unwrap().path();
        if store.extension().is_none_or(|x| x != "zarr") {
            continue;
        }
        let npy = store.with_extension("npy");
        if !npy.exists() {
            continue;
        }
        in_context(store.display(), || {
            let expected = from_npy(&npy, [13, 9]).unwrap().compute_dyn().unwrap();
            let a = from_zarr(&store).unwrap();
            assert_bits_eq(&a.compute_dyn().unwrap(), &expected);
            let sharded = store.to_string_lossy().contains("sharded");
            let expect_chunks: &[usize] = if sharded { &[10, 3] } else { &[5, 5, 3] };
            assert_eq!(a.chunks().axis(0), expect_chunks);
        });
        n += 1;
    }
    // 4 dtypes × 3 codecs × (v2, v3, v3 sharded) + 3 float/int dtypes × 3 codecs big-endian v2.
    assert_eq!(n, 4 * 3 * 3 + 3 * 3);
    let (_, reason) =
        zarr_reason(from_zarr(dir.path().join("unsupported-int16.zarr")).unwrap_err());
    assert!(reason.contains("int16"), "{reason}");
}

#[test]
fn dtype_of_a_store_is_kept() {
    let dir = tmp();
    for dtype in [DType::F32, DType::Bool] {
        let path = dir.path().join(format!("{dtype}.zarr"));
        let x = default_rng(2)
            .random(&[6], [4])
            .unwrap()
            .astype(dtype)
            .unwrap();
        x.to_zarr(&path, &ZarrOptions::new()).unwrap();
        assert_eq!(from_zarr(&path).unwrap().dtype(), dtype);
    }
}

// ---------------------------------------------------------------------------------------------
// S3 (feature `s3`), against a local moto server

#[cfg(feature = "s3")]
mod s3 {
    use std::net::{TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use super::*;

    /// The moto server, killed when dropped.
    struct Moto(Child);

    impl Drop for Moto {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// Starts `moto_server` from the venv on a free loopback port and makes bucket `tessera`.
    fn start_moto(py: &Path) -> Option<(Moto, String)> {
        let server = py.with_file_name("moto_server");
        if !server.exists() {
            println!("SKIPPED: no moto_server beside {}", py.display());
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let moto = Moto(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let endpoint = format!("http://127.0.0.1:{port}");
        let made = Command::new(py)
            .arg("-c")
            .arg(format!(
                "import boto3; boto3.client('s3', endpoint_url='{endpoint}', region_name='us-east-1', \
                 aws_access_key_id='test', aws_secret_access_key='test').create_bucket(Bucket='tessera')"
            ))
            .status()
            .unwrap();
        assert!(made.success(), "could not create the bucket on moto");
        Some((moto, endpoint))
    }

    #[test]
    fn s3_round_trip_region_write_and_errors() {
        let Some(py) = python() else { return };
        let Some((_moto, endpoint)) = start_moto(&py) else {
            return;
        };
        // SAFETY: no other test of this binary reads these variables, and this is the only test that
        // opens s3:// stores (the store reads them when it is first opened).
        unsafe {
            std::env::set_var("AWS_ENDPOINT_URL", &endpoint);
            std::env::set_var("AWS_ACCESS_KEY_ID", "test");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
            std::env::set_var("AWS_REGION", "us-east-1");
        }
        let url = "s3://tessera/runs/x.zarr";
        let x = default_rng(21)
            .standard_normal(&[40, 30], [10, 15])
            .unwrap();
        x.to_zarr(url, &ZarrOptions::new().chunks([10, 15]).shards([20, 30]))
            .unwrap();
        let back = from_zarr(url).unwrap();
        assert_eq!(back.chunks().axis(0), &[20, 20]);
        let mut expected = x.compute::<f64>().unwrap();
        assert_bits_eq(
            &back.compute_dyn().unwrap(),
            &ArrayData::F64(expected.clone()),
        );

        let patch = gen_range(&[5, 7], 3, -1.0, 1.0);
        from_array(patch.clone(), [5, 7])
            .unwrap()
            .to_zarr(url, &ZarrOptions::new().region([18, 4]))
            .unwrap();
        expected.slice_mut(s![18..23, 4..11]).assign(&patch);
        check(&from_zarr(url).unwrap(), &expected);

        let (store, reason) = zarr_reason(from_zarr("s3://tessera/nothing.zarr").unwrap_err());
        assert_eq!(store, "s3://tessera/nothing.zarr");
        assert!(reason.contains("no array metadata"), "{reason}");
    }
}
