//! `.npy` files: round trips of every dtype and rank through `to_npy`/`from_npy` with different
//! chunkings, the bytes `to_npy` writes checked against the format specification, files made by hand
//! from known bytes, and typed errors for missing and malformed files.

mod common;

use std::path::Path;

use common::*;
use ndarray::{ArrayD, IxDyn, arr1, arr2, s};
use tessera::{
    Array, ArrayData, ChunkSpec, DType, Error, default_rng, from_array, from_array_data, from_npy,
};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn round_trip_every_dtype_and_rank_with_other_chunks() {
    let dir = tmp();
    let mut shapes = shapes_0_to_4();
    shapes.push(vec![0, 5]);
    shapes.push(vec![1]);
    for (si, shape) in shapes.into_iter().enumerate() {
        for &dtype in &DTYPES {
            let data = sample_data(dtype, &shape, si as u64);
            let specs = chunkings(&shape);
            let path = dir.path().join(format!("a{si}-{dtype}.npy"));
            let (_, write_spec) = &specs[1];
            from_array_data(data.clone(), write_spec.clone())
                .unwrap()
                .to_npy(&path)
                .unwrap();
            for (name, spec) in &specs {
                let a = from_npy(&path, spec.clone())
                    .unwrap_or_else(|e| panic!("{shape:?} {dtype} {name}: {e}"));
                assert_eq!(a.dtype(), dtype);
                in_context(format!("{shape:?} {dtype} read as {name}"), || {
                    check_data(&a, &data)
                });
            }
        }
    }
}

#[test]
fn to_npy_of_a_computed_expression() {
    let dir = tmp();
    let path = dir.path().join("expr.npy");
    let x = default_rng(3).random(&[37, 23], [10, 7]).unwrap();
    let y = ((&x * 4.0f64) - 2.0f64).t();
    y.to_npy(&path).unwrap();
    let back = from_npy(&path, [5, 9]).unwrap();
    assert_eq!(back.shape(), &[23, 37]);
    assert_bits_eq(&back.compute_dyn().unwrap(), &y.compute_dyn().unwrap());
    // Read lazily: a slice of the file reads only what it needs and gives the same values.
    let yv = y.compute::<f64>().unwrap();
    check(
        &back.slice(s![3..20;4, ..;-5]).unwrap(),
        &oracle_slice(&yv, s![3..20;4, ..;-5].as_ref()),
    );
    check(
        &back.sum_axis(0).unwrap(),
        &reduce_lanes(&yv, &[0], false, |l| l.iter().sum::<f64>()),
    );
    // Overwriting the file with other contents is seen by a new from_npy.
    let z = &x + 100.0f64;
    z.to_npy(&path).unwrap();
    let again = from_npy(&path, [37, 23]).unwrap();
    assert_bits_eq(&again.compute_dyn().unwrap(), &z.compute_dyn().unwrap());
}

/// Parses the header of a `.npy` file by the format specification: magic, version, little-endian
/// header length, then a Python dict literal padded with spaces and a newline.
fn parse_header(bytes: &[u8]) -> (String, usize) {
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let (dict_start, len) = match bytes[6] {
        1 => (10, u16::from_le_bytes([bytes[8], bytes[9]]) as usize),
        2 | 3 => (
            12,
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
        ),
        v => panic!("version {v}"),
    };
    let end = dict_start + len;
    assert_eq!(end % 64, 0, "the data must start 64-byte aligned");
    assert_eq!(bytes[end - 1], b'\n');
    (
        String::from_utf8(bytes[dict_start..end].to_vec()).unwrap(),
        end,
    )
}

#[test]
fn written_files_follow_the_npy_format() {
    let dir = tmp();
    let data = sample::<f64>(&[37, 23], 4);
    let path = dir.path().join("f8.npy");
    from_array(data.clone(), [10, 7])
        .unwrap()
        .to_npy(&path)
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let (dict, start) = parse_header(&bytes);
    assert!(dict.contains("'descr': '<f8'"), "{dict}");
    assert!(dict.contains("'fortran_order': False"), "{dict}");
    assert!(dict.contains("'shape': (37, 23)"), "{dict}");
    assert_eq!(bytes.len(), start + 37 * 23 * 8);
    let values: Vec<f64> = bytes[start..]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(values, data.iter().copied().collect::<Vec<_>>());

    let cases: [(ArrayData, &str, &str, usize); 4] = [
        (
            ArrayData::I64(arr1(&[5i64, -1, 1 << 40]).into_dyn()),
            "'<i8'",
            "(3,)",
            8,
        ),
        (
            ArrayData::F32(arr2(&[[1.5f32], [-2.0]]).into_dyn()),
            "'<f4'",
            "(2, 1)",
            4,
        ),
        (
            ArrayData::Bool(arr1(&[true, false, true]).into_dyn()),
            "'|b1'",
            "(3,)",
            1,
        ),
        (
            ArrayData::F64(ArrayD::from_elem(IxDyn(&[]), 2.5)),
            "'<f8'",
            "()",
            8,
        ),
    ];
    for (k, (d, descr, shape, item)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("c{k}.npy"));
        from_array_data(d.clone(), ChunkSpec::auto())
            .unwrap()
            .to_npy(&path)
            .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let (dict, start) = parse_header(&bytes);
        assert!(dict.contains(&format!("'descr': {descr}")), "{dict}");
        assert!(dict.contains(&format!("'shape': {shape}")), "{dict}");
        assert_eq!(bytes.len() - start, d.len() * item);
        let payload = &bytes[start..];
        match &d {
            ArrayData::I64(x) => {
                let v: Vec<i64> = payload
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                    .collect();
                assert_eq!(v, x.iter().copied().collect::<Vec<_>>());
            }
            ArrayData::F32(x) => {
                let v: Vec<f32> = payload
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect();
                assert_eq!(v, x.iter().copied().collect::<Vec<_>>());
            }
            ArrayData::Bool(x) => {
                assert_eq!(payload, x.iter().map(|&b| b as u8).collect::<Vec<_>>());
            }
            ArrayData::F64(x) => assert_eq!(f64::from_le_bytes(payload.try_into().unwrap()), x[[]]),
            ArrayData::C128(_) => unreachable!("complex128 files are checked in tests/complex.rs"),
            ArrayData::I32(_) | ArrayData::U8(_) | ArrayData::U64(_) => {
                unreachable!("int32, uint8 and uint64 files are checked in tests/dtypes.rs")
            }
        }
    }
}

/// A version 1.0 `.npy` file with the given dict and payload, padded as numpy pads it.
fn write_npy(path: &Path, dict: &str, payload: &[u8]) {
    write_npy_version(path, 1, dict, payload)
}

fn write_npy_version(path: &Path, version: u8, dict: &str, payload: &[u8]) {
    let prefix = if version == 1 { 10 } else { 12 };
    let mut text = dict.as_bytes().to_vec();
    let unpadded = prefix + text.len() + 1;
    text.extend(std::iter::repeat_n(b' ', (64 - unpadded % 64) % 64));
    text.push(b'\n');
    let mut bytes = b"\x93NUMPY".to_vec();
    bytes.push(version);
    bytes.push(0);
    if version == 1 {
        bytes.extend_from_slice(&(text.len() as u16).to_le_bytes());
    } else {
        bytes.extend_from_slice(&(text.len() as u32).to_le_bytes());
    }
    bytes.extend_from_slice(&text);
    assert_eq!(bytes.len() % 64, 0);
    bytes.extend_from_slice(payload);
    std::fs::write(path, bytes).unwrap();
}

fn le_bytes<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    v.iter().flat_map(|&x| f(x)).collect()
}

#[test]
fn hand_made_files_read_right() {
    let dir = tmp();
    let p = |name: &str| dir.path().join(name);

    write_npy(
        &p("i8.npy"),
        "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }",
        &le_bytes(&[0i64, 1, 2, 3, 4, -5], i64::to_le_bytes),
    );
    for spec in [[1, 1], [2, 3], [1, 2]] {
        check(
            &from_npy(p("i8.npy"), spec).unwrap(),
            &arr2(&[[0i64, 1, 2], [3, 4, -5]]).into_dyn(),
        );
    }

    write_npy(
        &p("f4.npy"),
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
        &le_bytes(&[1.5f32, -0.25, 1e30], f32::to_le_bytes),
    );
    check(
        &from_npy(p("f4.npy"), [2]).unwrap(),
        &arr1(&[1.5f32, -0.25, 1e30]).into_dyn(),
    );

    write_npy(
        &p("b1.npy"),
        "{'descr': '|b1', 'fortran_order': False, 'shape': (2, 2), }",
        &[1, 0, 0, 1],
    );
    check(
        &from_npy(p("b1.npy"), [1, 2]).unwrap(),
        &arr2(&[[true, false], [false, true]]).into_dyn(),
    );

    // Big-endian doubles.
    write_npy(
        &p("be.npy"),
        "{'descr': '>f8', 'fortran_order': False, 'shape': (3,), }",
        &le_bytes(&[1.0f64, -2.5, 1e-300], f64::to_be_bytes),
    );
    check(
        &from_npy(p("be.npy"), [2]).unwrap(),
        &arr1(&[1.0f64, -2.5, 1e-300]).into_dyn(),
    );

    // Fortran order: the payload is column-major.
    write_npy(
        &p("fortran.npy"),
        "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }",
        &le_bytes(&[1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0], f64::to_le_bytes),
    );
    for spec in [[1, 2], [2, 3], [2, 1]] {
        check(
            &from_npy(p("fortran.npy"), spec).unwrap(),
            &arr2(&[[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]]).into_dyn(),
        );
    }

    // int32 and uint8 are read as themselves; the other narrow integers widen to int64.
    write_npy(
        &p("i4.npy"),
        "{'descr': '<i4', 'fortran_order': False, 'shape': (4,), }",
        &le_bytes(&[-7i32, 0, i32::MAX, i32::MIN], i32::to_le_bytes),
    );
    let a = from_npy(p("i4.npy"), [3]).unwrap();
    assert_eq!(a.dtype(), DType::I32);
    check(&a, &arr1(&[-7i32, 0, i32::MAX, i32::MIN]).into_dyn());
    write_npy(
        &p("u1.npy"),
        "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }",
        &[0, 200, 255],
    );
    check(
        &from_npy(p("u1.npy"), [2]).unwrap(),
        &arr1(&[0u8, 200, 255]).into_dyn(),
    );

    write_npy(
        &p("i1.npy"),
        "{'descr': '|i1', 'fortran_order': False, 'shape': (4,), }",
        &[0x80, 0xff, 0x00, 0x7f],
    );
    check(
        &from_npy(p("i1.npy"), [3]).unwrap(),
        &arr1(&[-128i64, -1, 0, 127]).into_dyn(),
    );
    write_npy(
        &p("i2.npy"),
        "{'descr': '>i2', 'fortran_order': False, 'shape': (3,), }",
        &le_bytes(&[-300i16, 2, i16::MIN], i16::to_be_bytes),
    );
    check(
        &from_npy(p("i2.npy"), [2]).unwrap(),
        &arr1(&[-300i64, 2, i16::MIN as i64]).into_dyn(),
    );
    write_npy(
        &p("u2.npy"),
        "{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }",
        &le_bytes(&[65535u16, 1], u16::to_le_bytes),
    );
    check(
        &from_npy(p("u2.npy"), [2]).unwrap(),
        &arr1(&[65535i64, 1]).into_dyn(),
    );
    write_npy(
        &p("u4.npy"),
        "{'descr': '<u4', 'fortran_order': False, 'shape': (2, 1), }",
        &le_bytes(&[u32::MAX, 1u32 << 31], u32::to_le_bytes),
    );
    check(
        &from_npy(p("u4.npy"), [1, 1]).unwrap(),
        &arr2(&[[u32::MAX as i64], [1i64 << 31]]).into_dyn(),
    );
    // uint64 is read as itself, values above int64's range included.
    write_npy(
        &p("u8.npy"),
        "{'descr': '<u8', 'fortran_order': False, 'shape': (2,), }",
        &le_bytes(&[u64::MAX, 3], u64::to_le_bytes),
    );
    check(
        &from_npy(p("u8.npy"), [1]).unwrap(),
        &arr1(&[u64::MAX, 3]).into_dyn(),
    );

    // A 0-d file, a version 2.0 header, and key order and spacing as other writers produce them.
    write_npy(
        &p("scalar.npy"),
        "{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
        &7.25f64.to_le_bytes(),
    );
    assert_eq!(
        from_npy(p("scalar.npy"), [0usize; 0])
            .unwrap()
            .compute_scalar::<f64>()
            .unwrap(),
        7.25
    );
    write_npy_version(
        &p("v2.npy"),
        2,
        "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
        &le_bytes(&[11i64, 12], i64::to_le_bytes),
    );
    check(
        &from_npy(p("v2.npy"), [1]).unwrap(),
        &arr1(&[11i64, 12]).into_dyn(),
    );
    write_npy(
        &p("order.npy"),
        "{'shape': (2,), 'fortran_order': False, 'descr': '<f8'}",
        &le_bytes(&[3.0f64, 4.0], f64::to_le_bytes),
    );
    check(
        &from_npy(p("order.npy"), [2]).unwrap(),
        &arr1(&[3.0f64, 4.0]).into_dyn(),
    );
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let dir = tmp();
    let path = dir.path().join("no-such-file.npy");
    match from_npy(&path, [4]) {
        Err(Error::Io { path: p, source }) => {
            assert_eq!(p, path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected an Io error, got {other:?}"),
    }
    let msg = from_npy(&path, [4]).unwrap_err().to_string();
    assert!(msg.contains("no-such-file.npy"), "{msg}");
    // Writing into a directory that does not exist fails the same way.
    let a: Array = from_array(arr1(&[1.0f64]).into_dyn(), [1]).unwrap();
    let bad = dir.path().join("missing-dir").join("out.npy");
    assert!(matches!(a.to_npy(&bad), Err(Error::Io { .. })));
}

#[test]
fn malformed_files_are_npy_errors() {
    let dir = tmp();
    let p = |name: &str| dir.path().join(name);
    std::fs::write(p("garbage.npy"), b"not an npy file at all").unwrap();
    std::fs::write(p("empty.npy"), b"").unwrap();
    write_npy(
        &p("short.npy"),
        "{'descr': '<f8', 'fortran_order': False, 'shape': (100,), }",
        &[0u8; 16],
    );
    write_npy(
        &p("complex.npy"),
        "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }",
        &[0u8; 8],
    );
    for name in ["garbage.npy", "empty.npy", "short.npy", "complex.npy"] {
        match from_npy(p(name), [4]) {
            Err(Error::Npy { path, reason }) => {
                assert_eq!(path, p(name));
                assert!(!reason.is_empty());
            }
            other => panic!("{name}: expected an Npy error, got {other:?}"),
        }
    }
    // Chunks that do not fit the file's shape.
    write_npy(
        &p("ok.npy"),
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }",
        &le_bytes(&[1.0f64, 2.0], f64::to_le_bytes),
    );
    assert!(matches!(
        from_npy(p("ok.npy"), [1, 1]),
        Err(Error::ChunksRank { .. })
    ));
}

#[test]
fn a_file_removed_after_opening_fails_the_task_not_the_process() {
    let dir = tmp();
    let path = dir.path().join("gone.npy");
    from_array(sample::<f64>(&[20, 4], 1), [5, 4])
        .unwrap()
        .to_npy(&path)
        .unwrap();
    let a = from_npy(&path, [5, 4]).unwrap();
    std::fs::remove_file(&path).unwrap();
    match a.sum().unwrap().compute_scalar::<f64>() {
        Err(Error::TaskFailed { key, message }) => {
            assert!(key.starts_with("from-npy-"), "{key}");
            assert!(message.contains("gone.npy"), "{message}");
        }
        other => panic!("expected TaskFailed, got {other:?}"),
    }
    // Truncated behind our back: an error too.
    from_array(sample::<f64>(&[20, 4], 1), [5, 4])
        .unwrap()
        .to_npy(&path)
        .unwrap();
    let b = from_npy(&path, [5, 4]).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(200).unwrap();
    assert!(b.compute_dyn().is_err());
}
