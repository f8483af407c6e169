//! Spill storage of the local executor: array chunks written to files in a private directory when
//! memory runs short, and read back exactly (every dtype, bit for bit) when a task needs them. The
//! directory is created on the first spill (mode 0700 under the system temporary directory, or under
//! the caller's [`crate::LocalExecutor::with_spill_dir`]) and removed with everything in it when the run
//! ends, successfully or not. Only array chunks are spilled: a reduction's partials are a few bytes.
//!
//! A file is the magic `TSPL`, the dtype code, the rank, the shape as little-endian u64s, then the
//! elements in C order, little-endian (bool as one byte, 0 or 1).

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::{ArrayD, IxDyn};

use crate::data::{ArrayData, ChunkValue};
use crate::error::{Error, Result};
use crate::meta::DType;
use crate::wire::RegionRuns;

const MAGIC: &[u8; 4] = b"TSPL";

/// Distinguishes the directories of runs in one process.
static RUN: AtomicU64 = AtomicU64::new(0);

/// A run's spill directory, removed when dropped.
#[derive(Debug)]
pub(crate) struct SpillDir {
    parent: Option<PathBuf>,
    dir: Option<PathBuf>,
}

impl SpillDir {
    /// Spill storage under `parent` (the system temporary directory when None), created on first use.
    pub(crate) fn new(parent: Option<PathBuf>) -> Self {
        SpillDir { parent, dir: None }
    }

    fn dir(&mut self) -> Result<&Path> {
        if self.dir.is_none() {
            let parent = self.parent.clone().unwrap_or_else(std::env::temp_dir);
            let dir = parent.join(format!(
                "tessera-spill-{}-{}",
                std::process::id(),
                RUN.fetch_add(1, Ordering::Relaxed)
            ));
            let mut b = fs::DirBuilder::new();
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.recursive(true).create(&dir).map_err(|e| io(&dir, e))?;
            self.dir = Some(dir);
        }
        Ok(self.dir.as_deref().expect("created above"))
    }

    /// The file chunk `id` is spilled to.
    pub(crate) fn path(&mut self, id: u32) -> Result<PathBuf> {
        Ok(self.dir()?.join(format!("{id}.chunk")))
    }
}

impl Drop for SpillDir {
    fn drop(&mut self) {
        if let Some(d) = &self.dir {
            let _ = fs::remove_dir_all(d);
        }
    }
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn dtype_code(d: DType) -> u8 {
    match d {
        DType::Bool => 0,
        DType::I64 => 1,
        DType::F32 => 2,
        DType::F64 => 3,
        DType::C128 => 4,
        DType::I32 => 5,
        DType::U8 => 6,
        DType::U64 => 7,
    }
}

/// Writes an array chunk to `path`, streaming it through a small buffer (a spill happens when memory
/// is short: it must not copy the chunk whole); None (nothing written) for partials, which are not
/// spilled.
pub(crate) fn write(path: &Path, v: &ChunkValue) -> Result<Option<usize>> {
    let ChunkValue::Array(a) = v else {
        return Ok(None);
    };
    let f = fs::File::create(path).map_err(|e| io(path, e))?;
    let mut w = std::io::BufWriter::with_capacity(BUF, f);
    let mut head = Vec::with_capacity(6 + 8 * a.shape().len());
    head.extend_from_slice(MAGIC);
    head.push(dtype_code(a.dtype()));
    head.push(a.shape().len() as u8);
    for &d in a.shape() {
        head.extend_from_slice(&(d as u64).to_le_bytes());
    }
    let written = (|| -> std::io::Result<()> {
        w.write_all(&head)?;
        match a {
            ArrayData::Bool(x) => x.iter().try_for_each(|&b| w.write_all(&[b as u8])),
            ArrayData::I64(x) => x.iter().try_for_each(|v| w.write_all(&v.to_le_bytes())),
            ArrayData::I32(x) => x.iter().try_for_each(|v| w.write_all(&v.to_le_bytes())),
            ArrayData::U8(x) => x.iter().try_for_each(|v| w.write_all(&v.to_le_bytes())),
            ArrayData::U64(x) => x.iter().try_for_each(|v| w.write_all(&v.to_le_bytes())),
            ArrayData::F32(x) => x.iter().try_for_each(|v| w.write_all(&v.to_le_bytes())),
            ArrayData::F64(x) => x.iter().try_for_each(|v| w.write_all(&v.to_le_bytes())),
            ArrayData::C128(x) => x.iter().try_for_each(|v| {
                w.write_all(&v.re.to_le_bytes())?;
                w.write_all(&v.im.to_le_bytes())
            }),
        }?;
        w.flush()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(path);
        return Err(io(path, e));
    }
    Ok(Some(head.len() + a.len() * a.dtype().size()))
}

/// Buffer of spill reads and writes.
const BUF: usize = 1 << 20;

/// Reads `n` elements of `size` bytes from `r`, converting each with `f`, through a small buffer.
fn elements<T>(
    r: &mut impl Read,
    n: usize,
    size: usize,
    f: impl Fn(&[u8]) -> T,
) -> std::io::Result<Vec<T>> {
    let mut out = Vec::with_capacity(n);
    let mut buf = vec![0u8; (BUF / size).max(1) * size];
    let mut left = n;
    while left > 0 {
        let k = left.min(buf.len() / size);
        r.read_exact(&mut buf[..k * size])?;
        out.extend(buf[..k * size].chunks_exact(size).map(&f));
        left -= k;
    }
    Ok(out)
}

/// Reads back a chunk written by [`write`]. The file stays: the chunk may be spilled again, with
/// nothing to write; the executor deletes the file when the chunk is released.
pub(crate) fn read(path: &Path) -> Result<ChunkValue> {
    read_file(path)
}

fn bad_file(path: &Path, what: &str) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string()),
    }
}

fn read_file(path: &Path) -> Result<ChunkValue> {
    let f = fs::File::open(path).map_err(|e| io(path, e))?;
    let mut r = std::io::BufReader::with_capacity(BUF, f);
    let (code, shape, _) = read_header(&mut r, path)?;
    let n = shape.iter().product();
    decode(path, code, &shape, n, &mut r)
}

/// Reads back only `region` (a range per axis) of a chunk written by [`write`], reading the file's
/// contiguous runs of the region and nothing else: a rechunk task needs the overlap of each source
/// chunk with its target, often a small part of it. An error names the file, and the region and
/// shape when the region does not lie inside the chunk.
pub(crate) fn read_region(path: &Path, region: &[std::ops::Range<usize>]) -> Result<ChunkValue> {
    let f = fs::File::open(path).map_err(|e| io(path, e))?;
    let mut r = std::io::BufReader::with_capacity(64, &f);
    let (code, shape, size) = read_header(&mut r, path)?;
    let header = (6 + 8 * shape.len()) as u64;
    let out_shape: Vec<usize> = region.iter().map(|r| r.len()).collect();
    let n: usize = out_shape.iter().product();
    let runs = RegionRuns::new(&shape, region)
        .map_err(|e| bad_file(path, &e))?
        .map(move |r| (header + (r.start * size) as u64, (r.len() * size) as u64));
    let mut reader = std::io::BufReader::with_capacity(
        BUF,
        RunReader {
            file: &f,
            runs,
            at: None,
        },
    );
    decode(path, code, &out_shape, n, &mut reader)
}

/// The bytes of a file's runs, one after the other, read at their offsets.
struct RunReader<'a, R> {
    file: &'a fs::File,
    /// Offset and length in bytes of each run.
    runs: R,
    /// The run being read: its next offset and the bytes left in it.
    at: Option<(u64, u64)>,
}

impl<R: Iterator<Item = (u64, u64)>> Read for RunReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        loop {
            match self.at {
                Some((_, 0)) | None => match self.runs.next() {
                    Some(run) => self.at = Some(run),
                    None => return Ok(0),
                },
                Some((offset, left)) => {
                    let want = (left.min(buf.len() as u64)) as usize;
                    let got = self.file.read_at(&mut buf[..want], offset)?;
                    if got == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                    self.at = Some((offset + got as u64, left - got as u64));
                    return Ok(got);
                }
            }
        }
    }
}

/// Reads a spill file's header, checking that the file's length matches it: the dtype code, the
/// shape and the element size.
fn read_header(r: &mut impl Read, path: &Path) -> Result<(u8, Vec<usize>, usize)> {
    let bad = |what: &str| bad_file(path, what);
    let total = fs::metadata(path).map_err(|e| io(path, e))?.len();
    let mut head = [0u8; 6];
    if r.read_exact(&mut head).is_err() || &head[..4] != MAGIC {
        return Err(bad("not a tessera spill file"));
    }
    let (code, ndim) = (head[4], head[5] as usize);
    let mut dims = vec![0u8; 8 * ndim];
    r.read_exact(&mut dims)
        .map_err(|_| bad("truncated shape"))?;
    let shape: Vec<usize> = dims
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")) as usize)
        .collect();
    let n = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad("shape overflows"))?;
    let size = match code {
        0 | 6 => 1,
        1 | 3 | 7 => 8,
        2 | 5 => 4,
        4 => 16,
        _ => return Err(bad("unknown dtype code")),
    };
    let body = total - (6 + 8 * ndim) as u64;
    if n.checked_mul(size).map(|b| b as u64) != Some(body) {
        return Err(bad("length does not match the shape"));
    }
    Ok((code, shape, size))
}

/// `n` elements of dtype `code` from `r`, as an array of `shape`.
fn decode(
    path: &Path,
    code: u8,
    shape: &[usize],
    n: usize,
    mut r: &mut impl Read,
) -> Result<ChunkValue> {
    let bad = |what: &str| bad_file(path, what);
    let shape = IxDyn(shape);
    let shaped = |e: ndarray::ShapeError| bad(&e.to_string());
    let ioe = |e: std::io::Error| io(path, e);
    let a = match code {
        0 => ArrayData::Bool(
            ArrayD::from_shape_vec(shape, elements(&mut r, n, 1, |c| c[0] != 0).map_err(ioe)?)
                .map_err(shaped)?,
        ),
        1 => ArrayData::I64(
            ArrayD::from_shape_vec(
                shape,
                elements(&mut r, n, 8, |c| {
                    i64::from_le_bytes(c.try_into().expect("8 bytes"))
                })
                .map_err(ioe)?,
            )
            .map_err(shaped)?,
        ),
        2 => ArrayData::F32(
            ArrayD::from_shape_vec(
                shape,
                elements(&mut r, n, 4, |c| {
                    f32::from_le_bytes(c.try_into().expect("4 bytes"))
                })
                .map_err(ioe)?,
            )
            .map_err(shaped)?,
        ),
        5 => ArrayData::I32(
            ArrayD::from_shape_vec(
                shape,
                elements(&mut r, n, 4, |c| {
                    i32::from_le_bytes(c.try_into().expect("4 bytes"))
                })
                .map_err(ioe)?,
            )
            .map_err(shaped)?,
        ),
        6 => ArrayData::U8(
            ArrayD::from_shape_vec(shape, elements(&mut r, n, 1, |c| c[0]).map_err(ioe)?)
                .map_err(shaped)?,
        ),
        7 => ArrayData::U64(
            ArrayD::from_shape_vec(
                shape,
                elements(&mut r, n, 8, |c| {
                    u64::from_le_bytes(c.try_into().expect("8 bytes"))
                })
                .map_err(ioe)?,
            )
            .map_err(shaped)?,
        ),
        4 => ArrayData::C128(
            ArrayD::from_shape_vec(
                shape,
                elements(&mut r, n, 16, |c| {
                    let re = f64::from_le_bytes(c[..8].try_into().expect("8 bytes"));
                    let im = f64::from_le_bytes(c[8..].try_into().expect("8 bytes"));
                    num_complex::Complex64::new(re, im)
                })
                .map_err(ioe)?,
            )
            .map_err(shaped)?,
        ),
        _ => ArrayData::F64(
            ArrayD::from_shape_vec(
                shape,
                elements(&mut r, n, 8, |c| {
                    f64::from_le_bytes(c.try_into().expect("8 bytes"))
                })
                .map_err(ioe)?,
            )
            .map_err(shaped)?,
        ),
    };
    Ok(ChunkValue::Array(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dtype_round_trips_bit_for_bit() {
        let mut dir = SpillDir::new(None);
        let values = [
            ArrayData::Bool(
                ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![true, false, true, true, false, false])
                    .unwrap(),
            ),
            ArrayData::I64(
                ArrayD::from_shape_vec(IxDyn(&[3]), vec![i64::MIN, -1, i64::MAX]).unwrap(),
            ),
            ArrayData::F32(
                ArrayD::from_shape_vec(
                    IxDyn(&[2, 2]),
                    vec![f32::NAN, -0.0, f32::INFINITY, 1.5e-40],
                )
                .unwrap(),
            ),
            ArrayData::F64(
                ArrayD::from_shape_vec(
                    IxDyn(&[1, 2, 2]),
                    vec![f64::NAN, -0.0, f64::NEG_INFINITY, 5e-324],
                )
                .unwrap(),
            ),
            ArrayData::F64(ArrayD::from_shape_vec(IxDyn(&[0, 4]), vec![]).unwrap()),
            ArrayData::I64(ArrayD::from_shape_vec(IxDyn(&[]), vec![7]).unwrap()),
            ArrayData::I32(
                ArrayD::from_shape_vec(IxDyn(&[3]), vec![i32::MIN, -1, i32::MAX]).unwrap(),
            ),
            ArrayData::U8(ArrayD::from_shape_vec(IxDyn(&[2]), vec![0, 255]).unwrap()),
            ArrayData::U64(ArrayD::from_shape_vec(IxDyn(&[2]), vec![u64::MAX, 1]).unwrap()),
            ArrayData::C128(
                ArrayD::from_shape_vec(
                    IxDyn(&[3]),
                    vec![
                        num_complex::Complex64::new(f64::NAN, -0.0),
                        num_complex::Complex64::new(1.5, f64::INFINITY),
                        num_complex::Complex64::new(5e-324, -2.0),
                    ],
                )
                .unwrap(),
            ),
        ];
        for (i, a) in values.into_iter().enumerate() {
            let p = dir.path(i as u32).unwrap();
            write(&p, &ChunkValue::Array(a.clone())).unwrap();
            let ChunkValue::Array(back) = read(&p).unwrap() else {
                panic!("array expected")
            };
            assert_eq!(back.dtype(), a.dtype());
            assert_eq!(back.shape(), a.shape());
            let bits = |d: &ArrayData| -> Vec<u64> {
                match d {
                    ArrayData::Bool(x) => x.iter().map(|&b| b as u64).collect(),
                    ArrayData::I64(x) => x.iter().map(|&v| v as u64).collect(),
                    ArrayData::I32(x) => x.iter().map(|&v| v as u32 as u64).collect(),
                    ArrayData::U8(x) => x.iter().map(|&v| v as u64).collect(),
                    ArrayData::U64(x) => x.iter().copied().collect(),
                    ArrayData::F32(x) => x.iter().map(|v| v.to_bits() as u64).collect(),
                    ArrayData::F64(x) => x.iter().map(|v| v.to_bits()).collect(),
                    ArrayData::C128(x) => x
                        .iter()
                        .flat_map(|v| [v.re.to_bits(), v.im.to_bits()])
                        .collect(),
                }
            };
            assert_eq!(bits(&back), bits(&a), "chunk {i}");
            assert!(p.exists(), "read keeps the file, for a second spill");
        }
        let d = dir.dir.clone().unwrap();
        drop(dir);
        assert!(!d.exists(), "the directory is removed with the run");
    }

    /// Every region of small arrays of every rank and several dtypes: whole axes, single
    /// indices, empty ranges, runs that merge over trailing axes and runs that do not.
    #[test]
    fn a_region_read_back_is_the_region_of_the_chunk() {
        let mut dir = SpillDir::new(None);
        let f64s = |shape: &[usize]| {
            let n = shape.iter().product::<usize>();
            ArrayData::F64(
                ArrayD::from_shape_vec(
                    IxDyn(shape),
                    (0..n).map(|i| i as f64 * 0.5 - 3.0).collect(),
                )
                .unwrap(),
            )
        };
        let arrays = [
            f64s(&[]),
            f64s(&[7]),
            f64s(&[4, 5]),
            f64s(&[3, 4, 5]),
            f64s(&[0, 3]),
            ArrayData::U8(ArrayD::from_shape_fn(IxDyn(&[3, 6]), |i| {
                (i[0] * 6 + i[1]) as u8
            })),
            ArrayData::C128(ArrayD::from_shape_fn(IxDyn(&[4, 3]), |i| {
                num_complex::Complex64::new(i[0] as f64, -(i[1] as f64))
            })),
            ArrayData::Bool(ArrayD::from_shape_fn(IxDyn(&[5, 2]), |i| {
                (i[0] + i[1]) % 3 == 0
            })),
        ];
        let mut checked = 0;
        for (k, a) in arrays.iter().enumerate() {
            let p = dir.path(k as u32).unwrap();
            write(&p, &ChunkValue::Array(a.clone())).unwrap();
            // Every range of every axis, combined over the axes (small shapes keep this short).
            let ranges: Vec<Vec<std::ops::Range<usize>>> = a
                .shape()
                .iter()
                .map(|&n| {
                    (0..=n)
                        .flat_map(|lo| (lo..=n).map(move |hi| lo..hi))
                        .collect()
                })
                .collect();
            let mut pick = vec![0usize; ranges.len()];
            loop {
                let region: Vec<_> = pick
                    .iter()
                    .zip(&ranges)
                    .map(|(&i, r)| r[i].clone())
                    .collect();
                let ChunkValue::Array(got) = read_region(&p, &region).unwrap() else {
                    panic!("array expected")
                };
                assert_eq!(
                    got,
                    a.region(&region).unwrap(),
                    "chunk {k}, region {region:?}"
                );
                checked += 1;
                let mut axis = pick.len();
                loop {
                    if axis == 0 {
                        break;
                    }
                    axis -= 1;
                    pick[axis] += 1;
                    if pick[axis] < ranges[axis].len() {
                        break;
                    }
                    pick[axis] = 0;
                }
                if axis == 0 && pick.iter().all(|&i| i == 0) {
                    break;
                }
            }
        }
        assert!(checked > 1000, "{checked} regions");
        // A region outside the chunk is an error naming it and the shape, not a panic.
        let p = dir.path(2).unwrap();
        let e = read_region(&p, &[0..2, 3..6]).unwrap_err().to_string();
        assert!(
            e.contains("3..6") && e.contains("[4, 5]") && e.contains("2.chunk"),
            "{e}"
        );
        // A region of the wrong rank, likewise.
        let rank_one: Vec<_> = std::iter::once(0..2).collect();
        let e = read_region(&p, &rank_one).unwrap_err().to_string();
        assert!(e.contains("[4, 5]"), "{e}");
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let mut dir = SpillDir::new(None);
        let p = dir.path(0).unwrap();
        fs::write(&p, b"TSPL\x03\x01\x05\0\0\0\0\0\0\0abc").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("0.chunk") && e.contains("length"), "{e}");
    }
}
