//! Bounded memory in the local executor and the optimizer: cheap sources regenerated instead of held
//! across passes, the order that keeps few chunks waiting, the memory limit with spilling, the error
//! for a task that cannot fit, and rechunking between incompatible chunkings in bounded tasks. Every
//! result is checked against plain ndarray code on the same values.
//!
//! The peak-RSS test runs the job in a child process (this test binary again, with
//! `--ignored --exact`), so that the VmHWM it reads is that job's alone.

use ndarray::{Array2, ArrayD, Axis, IxDyn};
use tessera::graph::estimate;
use tessera::graph::expand::TaskGraph;
use tessera::{
    Array, ArrayData, Error, LocalExecutor, compute_many_with_stats, default_rng, from_array,
};

fn scalar(a: &Array, ex: &LocalExecutor) -> (f64, tessera::ExecStats) {
    let (mut out, stats) = compute_many_with_stats(&[a], ex).unwrap();
    let v = out.pop().unwrap().into_typed::<f64>().unwrap();
    (v.into_iter().next().unwrap(), stats)
}

/// Population standard deviation of all elements, two passes.
fn std_all(a: &Array2<f64>) -> f64 {
    let mean = a.mean().unwrap();
    (a.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / a.len() as f64).sqrt()
}

/// Layers of the optimized graph that generate chunks from nothing (not partials) for other layers
/// to read: sources whose chunks are held.
fn standalone_sources(a: &Array) -> usize {
    let g = tessera::optimize::optimize(a.graph());
    g.layers()
        .iter()
        .filter(|l| matches!(&l.op, tessera::Op::Blockwise(p) if p.reduce.is_none()))
        .filter(|l| l.inputs.is_empty())
        .filter(|l| !g.outputs().contains(&l.id))
        .filter(|l| {
            g.layers()
                .iter()
                .filter(|c| c.inputs.contains(&l.id))
                .count()
                > 0
        })
        .count()
}

#[test]
fn the_anomaly_regenerates_its_source_instead_of_holding_it() {
    // 3000×3000 float64 = 72 MB, over the size below which holding is cheaper; 36 chunks of 2 MB.
    let x = default_rng(7)
        .standard_normal(&[3000, 3000], [500, 500])
        .unwrap();
    let y = (&x - x.mean_axis(0).unwrap()).std().unwrap();
    assert_eq!(standalone_sources(&y), 0, "x is fused into both passes");
    let ex = LocalExecutor::with_threads(2).unwrap();
    let (got, stats) = scalar(&y, &ex);

    let xv: Array2<f64> = x.compute::<f64>().unwrap().into_dimensionality().unwrap();
    let d = &xv - &xv.mean_axis(Axis(0)).unwrap();
    let want = std_all(&d);
    assert!((got - want).abs() <= 1e-10 * want, "{got} vs {want}");
    // Nothing but partials is held: far less than one 2 MB chunk of x.
    assert!(stats.peak_bytes < 1 << 20, "{stats:?}");
}

#[test]
fn the_standardized_anomaly_holds_a_few_chunks_not_a_column() {
    let x = default_rng(8)
        .standard_normal(&[3000, 3000], [500, 500])
        .unwrap();
    let y = ((&x - x.mean_axis(0).unwrap()) / x.std_axis(0, 0.0).unwrap())
        .std()
        .unwrap();
    let ex = LocalExecutor::with_threads(2).unwrap();
    let (got, stats) = scalar(&y, &ex);

    let xv: Array2<f64> = x.compute::<f64>().unwrap().into_dimensionality().unwrap();
    let m = xv.mean_axis(Axis(0)).unwrap();
    let s = xv.std_axis(Axis(0), 0.0);
    let z = (&xv - &m) / &s;
    let want = std_all(&z);
    assert!((got - want).abs() <= 1e-10 * want, "{got} vs {want}");
    // x's chunks (2 MB) are read by the column mean and the column std in the same pass: the second
    // reader runs right after the first, so a few chunks wait, not a column of six.
    let chunk = 500 * 500 * 8;
    assert!(stats.peak_bytes <= 4 * chunk, "{stats:?}");
}

#[test]
fn an_expensive_or_small_source_is_held_not_regenerated() {
    // Small: 40 MB in all, cheaper to hold.
    let x = default_rng(9)
        .standard_normal(&[2000, 2500], [500, 500])
        .unwrap();
    let y = (&x - x.mean_axis(0).unwrap()).std().unwrap();
    assert_eq!(standalone_sources(&y), 1);
    // Expensive: four transcendental functions per element cost more than a spill round trip.
    let x = default_rng(9)
        .standard_normal(&[3000, 3000], [500, 500])
        .unwrap();
    let e = x
        .sin()
        .unwrap()
        .exp()
        .unwrap()
        .cos()
        .unwrap()
        .tanh()
        .unwrap();
    let y = (&e - e.mean_axis(0).unwrap()).std().unwrap();
    assert_eq!(standalone_sources(&y), 1);
    let (got, _) = scalar(&y, &LocalExecutor::with_threads(2).unwrap());
    let ev: Array2<f64> = e.compute::<f64>().unwrap().into_dimensionality().unwrap();
    let want = std_all(&(&ev - &ev.mean_axis(Axis(0)).unwrap()));
    assert!((got - want).abs() <= 1e-10 * want, "{got} vs {want}");
}

fn data_of_every_dtype() -> Vec<ArrayData> {
    let n = 96 * 80;
    let f: Vec<f64> = (0..n)
        .map(|i| ((i * 7919) % 1000) as f64 / 7.0 - 60.0)
        .collect();
    let shape = IxDyn(&[96, 80]);
    vec![
        ArrayData::F64(ArrayD::from_shape_vec(shape.clone(), f.clone()).unwrap()),
        ArrayData::F32(
            ArrayD::from_shape_vec(shape.clone(), f.iter().map(|&v| v as f32 / 3.0).collect())
                .unwrap(),
        ),
        ArrayData::I64(
            ArrayD::from_shape_vec(
                shape.clone(),
                (0..n as i64).map(|i| i * 1_000_003 - (1 << 40)).collect(),
            )
            .unwrap(),
        ),
        ArrayData::Bool(
            ArrayD::from_shape_vec(shape, (0..n).map(|i| (i * 31) % 7 < 3).collect()).unwrap(),
        ),
    ]
}

/// Bytes of the whole array, and a memory limit and rechunk bound for it: the limit holds half the
/// array, a rechunk task a quarter.
fn sizes(data: &ArrayData) -> (usize, usize, usize) {
    let total = data.len() * data.dtype().size();
    (total, total / 2, total / 4)
}

#[test]
fn spilled_chunks_of_every_dtype_come_back_exactly() {
    for data in data_of_every_dtype() {
        let dtype = data.dtype();
        let (_, limit, bound) = sizes(&data);
        // Row bands to column bands through pieces: the pieces of all row bands wait for the
        // column bands, more than the limit holds, so some go to disk and come back.
        let x = tessera::from_array_data(data.clone(), [8, 80]).unwrap();
        let y = x.rechunk_with([96, 8], bound).unwrap();
        let ex = LocalExecutor::with_threads(2)
            .unwrap()
            .with_memory_limit(limit);
        let (mut out, stats) = compute_many_with_stats(&[&y], &ex).unwrap();
        assert_eq!(out.pop().unwrap(), data, "{dtype}");
        assert!(stats.spilled_chunks > 0, "{dtype}: {stats:?}");
        assert!(stats.peak_bytes <= limit, "{dtype}: {stats:?}");
        // Without a tight limit nothing is spilled.
        let (mut out, stats) =
            compute_many_with_stats(&[&y], &LocalExecutor::with_threads(2).unwrap()).unwrap();
        assert_eq!(out.pop().unwrap(), data, "{dtype}");
        assert_eq!(stats.spilled_chunks, 0, "{dtype}: {stats:?}");
    }
}

#[test]
fn spilling_goes_to_the_given_directory_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_of_every_dtype().remove(0);
    let (_, limit, bound) = sizes(&data);
    let x = tessera::from_array_data(data.clone(), [8, 80]).unwrap();
    let y = x.rechunk_with([96, 8], bound).unwrap();
    let ex = LocalExecutor::with_threads(1)
        .unwrap()
        .with_memory_limit(limit)
        .with_spill_dir(dir.path());
    let (mut out, stats) = compute_many_with_stats(&[&y], &ex).unwrap();
    assert_eq!(out.pop().unwrap(), data);
    assert!(stats.spilled_chunks > 0, "{stats:?}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_spill_directory_that_cannot_be_created_is_an_error_naming_it() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let data = data_of_every_dtype().remove(0);
    let (_, limit, bound) = sizes(&data);
    let x = tessera::from_array_data(data, [8, 80]).unwrap();
    let y = x.rechunk_with([96, 8], bound).unwrap();
    // A regular file cannot hold a directory.
    let ex = LocalExecutor::with_threads(1)
        .unwrap()
        .with_memory_limit(limit)
        .with_spill_dir(file.path());
    let e = y.compute_on(&ex).unwrap_err().to_string();
    assert!(e.contains(&file.path().display().to_string()), "{e}");
}

#[test]
fn a_task_that_cannot_fit_is_an_error_naming_layer_shape_bytes_and_limit() {
    let x = tessera::zeros::<f64>(&[1000, 1000], [1000, 1000]).unwrap();
    let y = &x + 1.0;
    let ex = LocalExecutor::with_threads(1)
        .unwrap()
        .with_memory_limit(1 << 20);
    let e = y.compute_on(&ex).unwrap_err();
    assert!(matches!(e, Error::LimitExceeded { .. }), "{e:?}");
    let m = e.to_string();
    for part in [
        "[1000, 1000]",
        "8000000",
        "1048576",
        "rechunk",
        "TESSERA_MEMORY_LIMIT",
    ] {
        assert!(m.contains(part), "{part} missing in: {m}");
    }
}

#[test]
fn a_job_with_a_task_that_cannot_fit_fails_before_any_task_runs() {
    // Ten small tasks that count their runs, computed with one 8 MB task that exceeds the 1 MiB
    // limit: the plan-time check rejects the job, so none of the small tasks runs either.
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    let small = tessera::ones::<f64>(&[100], [10])
        .unwrap()
        .map_blocks(move |b: ndarray::ArrayViewD<f64>| {
            counter.fetch_add(1, Ordering::SeqCst);
            b.to_owned()
        })
        .unwrap();
    let big = &tessera::zeros::<f64>(&[1000, 1000], [1000, 1000]).unwrap() + 1.0;
    let ex = LocalExecutor::with_threads(1)
        .unwrap()
        .with_memory_limit(1 << 20);
    let e = tessera::compute_many_on(&[&small, &big], &ex).unwrap_err();
    assert!(matches!(e, Error::LimitExceeded { .. }), "{e:?}");
    assert!(e.to_string().contains("[1000, 1000]"), "{e}");
    assert_eq!(
        runs.load(Ordering::SeqCst),
        0,
        "a task ran before the job was rejected"
    );
    // Within the limit the same small job runs all ten tasks.
    tessera::compute_many_on(&[&small], &ex).unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 10);
}

#[test]
fn rechunking_rows_to_columns_is_one_task_per_target_reading_regions() {
    let v: Vec<f64> = (0..400 * 400).map(|i| (i as f64).sqrt()).collect();
    let a = ArrayD::from_shape_vec(IxDyn(&[400, 400]), v).unwrap();
    let x = from_array(a.clone(), [40, 400]).unwrap(); // N = 10 row bands of 128 KB
    let bound = 4 * 40 * 400 * 8; // 4 row bands
    let y = x.rechunk_with([400, 40], bound).unwrap(); // M = 10 column bands
    assert_eq!(y.compute::<f64>().unwrap(), a);

    // One rechunk layer of M tasks, each reading the region of every row band its column band
    // overlaps: 128 KB in, 128 KB out, where reading the row bands whole would be 1.28 MB.
    let tg = TaskGraph::expand(tessera::optimize::optimize(y.graph())).unwrap();
    let layers = tg.graph.layers();
    let rechunks: Vec<u32> = (0..tg.tasks.len() as u32)
        .filter(|&t| {
            matches!(
                layers[tg.tasks[t as usize].layer as usize].op,
                tessera::Op::Rechunk
            )
        })
        .collect();
    assert_eq!(rechunks.len(), 10, "rechunk tasks");
    for &t in &rechunks {
        assert_eq!(tg.tasks[t as usize].deps.len(), 10);
        assert_eq!(estimate::task_bytes(&tg, t), 2 * 400 * 40 * 8);
    }
    let whole = tessera::ops::structure::rechunk_task_bytes(x.chunks(), y.chunks(), 8);
    assert_eq!(whole, 400 * 400 * 8 + 400 * 40 * 8);

    // Columns back to rows, and an irregular target, also exact.
    let back = y.rechunk_with([30, 400], bound).unwrap();
    assert_eq!(back.compute::<f64>().unwrap(), a);
    let odd = x.rechunk_with([400, 70], bound).unwrap();
    assert_eq!(odd.compute::<f64>().unwrap(), a);
    let mixed = x.rechunk_with([130, 70], bound).unwrap();
    assert_eq!(mixed.compute::<f64>().unwrap(), a);
}

#[test]
fn a_target_that_would_read_more_than_the_fan_in_goes_through_pieces() {
    let (rows, cols) = (tessera::ops::structure::RECHUNK_MAX_FAN_IN + 76, 3);
    let a = ArrayD::from_shape_fn(IxDyn(&[rows, cols]), |i| (i[0] * cols + i[1]) as f64);
    let x = from_array(a.clone(), [1, cols]).unwrap(); // rows of one element per column
    let y = x.rechunk_with([rows, 1], 4096).unwrap();
    let g = tessera::optimize::optimize(y.graph());
    let steps = g
        .layers()
        .iter()
        .filter(|l| matches!(l.op, tessera::Op::Rechunk))
        .count();
    assert_eq!(steps, 2, "an intermediate chunking");
    assert_eq!(y.compute::<f64>().unwrap(), a);
}

// ---- peak RSS in a child process ----

const CHILD_ENV: &str = "TESSERA_MEMORY_TEST_NPY";
const LIMIT: usize = 512 << 20;
const SIDE: usize = 16384; // 16384² float64 = 2 GiB = 4 × LIMIT
const BAND: usize = 1024; // row bands of 128 MiB

fn vm_hwm_kib() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The job the child runs: `(x - x.max(axis=0)).min()` over a 2 GiB `.npy`, whose row bands are all
/// held between the two passes unless spilled. Max and min are exact, so the oracle is too.
#[test]
#[ignore = "run by held_data_four_times_the_limit_completes_within_it in a child process"]
fn child_hold_then_reduce() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let x = tessera::from_npy(&path, [BAND, SIDE]).unwrap();
    let y = (&x - x.max_axis(0).unwrap()).min().unwrap();
    let ex = LocalExecutor::with_threads(2)
        .unwrap()
        .with_memory_limit(LIMIT);
    let (v, stats) = scalar(&y, &ex);
    println!(
        "RESULT {} {} {} {}",
        v.to_bits(),
        vm_hwm_kib(),
        stats.spilled_chunks,
        stats.peak_bytes
    );
}

#[test]
fn held_data_four_times_the_limit_completes_within_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    let x = default_rng(11).random(&[SIDE, SIDE], [BAND, SIDE]).unwrap();
    x.to_npy(&path).unwrap();

    // The oracle, streaming the file: column maxima, then the least x - max.
    let rows = || {
        use std::io::{Read, Seek};
        let mut f = std::fs::File::open(&path).unwrap();
        let len = f.metadata().unwrap().len() as usize;
        f.seek(std::io::SeekFrom::Start((len - SIDE * SIDE * 8) as u64))
            .unwrap();
        let mut r = std::io::BufReader::with_capacity(1 << 20, f);
        let mut row = vec![0u8; SIDE * 8];
        (0..SIDE).map(move |_| {
            r.read_exact(&mut row).unwrap();
            row.chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
                .collect::<Vec<f64>>()
        })
    };
    let mut colmax = vec![f64::NEG_INFINITY; SIDE];
    for row in rows() {
        for (m, v) in colmax.iter_mut().zip(row) {
            *m = m.max(v);
        }
    }
    let mut want = f64::INFINITY;
    for row in rows() {
        for (m, v) in colmax.iter().zip(row) {
            want = want.min(v - m);
        }
    }

    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_hold_then_reduce",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("RESULT ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no result line in {stdout}"));
    let f: Vec<u64> = line.split(' ').map(|p| p.parse().unwrap()).collect();
    let (got, hwm_kib, spilled) = (f64::from_bits(f[0]), f[1] as usize, f[2]);
    assert_eq!(got, want);
    assert!(spilled > 0, "{line}");
    assert!(
        hwm_kib * 1024 <= LIMIT + (64 << 20),
        "peak RSS {} MiB over the limit of {} MiB + 64 MiB ({line})",
        hwm_kib / 1024,
        LIMIT >> 20
    );
}

// ---- rechunking between incompatible chunkings ----

/// The value of the rechunk tests' files at `(i, j)`: small integers, so sums in any order are exact,
/// and no two pieces alike, so a piece in the wrong place changes some row or column sum.
fn grid_value(i: usize, j: usize) -> f64 {
    ((i * 31 + j * 17) % 1009) as f64
}

/// Writes `x[i, j] = grid_value(i, j)` as an `n × n` float64 `.npy` file, a row at a time (the
/// engine's own writer: the tests check reading, not writing).
fn write_grid_npy(path: &std::path::Path, n: usize) {
    let out = tessera::io::npy::NpyWriter::create(path, tessera::DType::F64, &[n, n]).unwrap();
    for i in 0..n {
        let row = ndarray::Array::from_shape_fn(ndarray::IxDyn(&[1, n]), |ix| grid_value(i, ix[1]));
        out.write_region(&[i, 0], &tessera::ArrayData::F64(row))
            .unwrap();
    }
    out.finish().unwrap();
}

#[test]
fn rechunking_a_npy_file_reads_it_in_the_new_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    let n = 300;
    write_grid_npy(&path, n);
    let want = Array2::from_shape_fn((n, n), |(i, j)| grid_value(i, j)).into_dyn();
    let rows = tessera::from_npy(&path, [30, n]).unwrap();
    // A bound far below the direct rechunk's 720 KB: an array of another origin goes through pieces.
    let cols = rows.rechunk_with([n, 40], 64 << 10).unwrap();
    let g = tessera::optimize::optimize(cols.graph());
    assert!(
        !g.layers()
            .iter()
            .any(|l| matches!(l.op, tessera::Op::Rechunk)),
        "no rechunk layer: the file is read in column bands"
    );
    assert_eq!(cols.numblocks(), vec![1, 8]);
    assert_eq!(cols.compute::<f64>().unwrap(), want);
    let odd = rows.rechunk([70, 110]).unwrap();
    assert_eq!(odd.compute::<f64>().unwrap(), want);
    // Anything computed from the file is rechunked by regions of its chunks, and also exactly.
    let doubled = (&rows * 2.0).rechunk_with([n, 40], 64 << 10).unwrap();
    let g = tessera::optimize::optimize(doubled.graph());
    assert_eq!(
        g.layers()
            .iter()
            .filter(|l| matches!(l.op, tessera::Op::Rechunk))
            .count(),
        1,
        "one rechunk layer"
    );
    assert_eq!(doubled.compute::<f64>().unwrap(), want * 2.0);
}

const RECHUNK_CHILD_ENV: &str = "TESSERA_MEMORY_TEST_RECHUNK_NPY";
const RECHUNK_LIMIT: usize = 128 << 20;
const RECHUNK_SIDE: usize = 8192; // 8192² float64 = 512 MiB = 4 × RECHUNK_LIMIT
const RECHUNK_BAND: usize = 256; // bands of 16 MiB

/// The job the child runs: the file doubled (so the rechunk's input is computed, not the file) in
/// row bands, rechunked to column bands in tasks of at most half the limit (as the default 256 MiB
/// is of a 512 MiB limit), then its column and row sums. Every column band needs a piece of every
/// row band: the all-to-all case.
#[test]
#[ignore = "run by an_all_to_all_rechunk_four_times_the_limit_completes_within_it in a child process"]
fn child_rechunk_all_to_all() {
    let Ok(path) = std::env::var(RECHUNK_CHILD_ENV) else {
        return;
    };
    let (n, b) = (RECHUNK_SIDE, RECHUNK_BAND);
    let x = &tessera::from_npy(&path, [b, n]).unwrap() * 2.0;
    let y = x.rechunk_with([n, b], RECHUNK_LIMIT / 2).unwrap();
    let (cols, rows) = (y.sum_axis(0).unwrap(), y.sum_axis(1).unwrap());
    let ex = LocalExecutor::with_threads(2)
        .unwrap()
        .with_memory_limit(RECHUNK_LIMIT);
    let (out, stats) = compute_many_with_stats(&[&cols, &rows], &ex).unwrap();
    let hwm = vm_hwm_kib();
    for (name, sums) in ["COLS", "ROWS"].iter().zip(out) {
        let v: Vec<String> = sums
            .into_typed::<f64>()
            .unwrap()
            .iter()
            .map(|s| s.to_string())
            .collect();
        println!("{name} {}", v.join(" "));
    }
    let tasks: usize = stats
        .layers
        .iter()
        .filter(|l| l.name == "rechunk")
        .map(|l| l.total as usize)
        .sum();
    println!(
        "RESULT {hwm} {} {} {} {tasks}",
        stats.spilled_bytes, stats.spilled_chunks, stats.peak_bytes
    );
}

#[test]
fn an_all_to_all_rechunk_four_times_the_limit_completes_within_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    let n = RECHUNK_SIDE;
    write_grid_npy(&path, n);
    let start = std::time::Instant::now();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_rechunk_all_to_all",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(RECHUNK_CHILD_ENV, &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{}",
        stdout.chars().take(4000).collect::<String>(),
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| -> Vec<f64> {
        stdout
            .lines()
            .find_map(|l| l.split_once(name).map(|(_, r)| r))
            .unwrap_or_else(|| panic!("no {name} line"))
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect()
    };
    // The oracle: plain loops over the values the file holds, doubled.
    let mut want_cols = vec![0f64; n];
    let mut want_rows = vec![0f64; n];
    for (i, row) in want_rows.iter_mut().enumerate() {
        for (j, col) in want_cols.iter_mut().enumerate() {
            let v = 2.0 * grid_value(i, j);
            *col += v;
            *row += v;
        }
    }
    assert_eq!(field("COLS "), want_cols, "column sums");
    assert_eq!(field("ROWS "), want_rows, "row sums");
    let r = field("RESULT ");
    let (hwm_kib, spilled, tasks) = (r[0] as usize, r[1] as usize, r[4] as usize);
    eprintln!(
        "all-to-all rechunk of {} MiB in {} MiB: {:.1} s, peak RSS {} MiB, spilled {} MiB in {} \
         chunks, {tasks} rechunk tasks",
        (n * n * 8) >> 20,
        RECHUNK_LIMIT >> 20,
        start.elapsed().as_secs_f64(),
        hwm_kib >> 10,
        spilled >> 20,
        r[2]
    );
    // N + M = 64 bands: one task per column band, reading its region of every row band.
    assert_eq!(tasks, n / RECHUNK_BAND, "rechunk tasks");
    let array = n * n * 8;
    // Each row band is spilled at most once and read back a region at a time. Measured: 1.7×.
    // Through pieces it was 2.1×; the depth-first order alone spilled 3.4× (16× at 2 GiB in
    // 512 MiB: every row band again for each column band it feeds).
    assert!(
        spilled <= array * 2,
        "spilled {} MiB for a {} MiB array",
        spilled >> 20,
        array >> 20
    );
    assert!(
        hwm_kib * 1024 <= RECHUNK_LIMIT + (64 << 20),
        "peak RSS {} MiB over the limit of {} MiB + 64 MiB",
        hwm_kib >> 10,
        RECHUNK_LIMIT >> 20
    );
}
