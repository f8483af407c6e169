//! Spill files: where a worker keeps chunks that do not fit its memory target, and the file format.
//!
//! The directory is private to the worker process: a fresh subdirectory of `--spill-dir` (or of the
//! system's temporary directory), removed with everything in it when the worker exits, so workers
//! sharing a disk never see each other's files and nothing is left behind.
//!
//! An array chunk is written as a small header (magic, dtype, shape) and then its elements in C order,
//! little-endian, converted a megabyte at a time: spilling a chunk never allocates a second copy of
//! it, which would defeat the point of spilling. Reading converts back the same way into one
//! allocation of the final size. Partials (a reduction's count/mean/m2, small) are written in the wire
//! encoding. Every error names the file.
//!
//! These functions block on the disk: callers run them on the task threads or tokio's blocking pool,
//! never on the thread that serves the scheduler session and fetches.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use tessera::{ArrayData, ChunkValue};

use crate::error::WorkerError;

/// Bytes converted per write or read.
const BUFFER: usize = 1 << 20;
/// First bytes of a spilled array chunk.
const ARRAY_MAGIC: &[u8; 4] = b"TSA1";
/// First bytes of a spilled partial, followed by its wire encoding.
const WIRE_MAGIC: &[u8; 4] = b"TSW1";

/// The worker's private spill directory, removed (with its files) when dropped.
#[derive(Debug)]
pub struct SpillDir {
    dir: tempfile::TempDir,
}

impl SpillDir {
    /// Creates a private directory in `parent` (default: the system's temporary directory).
    pub fn new(parent: Option<&Path>) -> Result<SpillDir, WorkerError> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("tessera-spill-");
        let dir = match parent {
            Some(p) => {
                std::fs::create_dir_all(p).map_err(|e| {
                    WorkerError::Config(format!("--spill-dir {}: {e}", p.display()))
                })?;
                builder.tempdir_in(p)
            }
            None => builder.tempdir(),
        }
        .map_err(|e| {
            let where_ = parent.map_or_else(
                || std::env::temp_dir().display().to_string(),
                |p| p.display().to_string(),
            );
            WorkerError::Config(format!("cannot create a spill directory in {where_}: {e}"))
        })?;
        Ok(SpillDir { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The file of chunk `task` of `job`.
    pub fn file(&self, job: u64, task: u32) -> PathBuf {
        self.dir.path().join(format!("{job}-{task}.chunk"))
    }
}

fn io_error(action: &str, path: &Path, e: std::io::Error) -> String {
    format!("{action} {}: {e}", path.display())
}

/// Writes `value` to `path` (replacing any file there). On failure the partial file is removed and
/// the error names the file and the cause (say, "File too large" or "No space left on device").
pub fn write(path: &Path, value: &ChunkValue) -> Result<(), String> {
    let result = write_inner(path, value);
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result.map_err(|e| io_error("spilling a chunk to", path, e))
}

fn write_inner(path: &Path, value: &ChunkValue) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(BUFFER, File::create(path)?);
    match value {
        ChunkValue::Array(a) => {
            out.write_all(ARRAY_MAGIC)?;
            out.write_all(&[dtype_code(a)])?;
            out.write_all(&(a.shape().len() as u32).to_le_bytes())?;
            for &d in a.shape() {
                out.write_all(&(d as u64).to_le_bytes())?;
            }
            match a {
                ArrayData::Bool(x) => put(&mut out, x, |b: bool| [b as u8])?,
                ArrayData::I64(x) => put(&mut out, x, i64::to_le_bytes)?,
                ArrayData::I32(x) => put(&mut out, x, i32::to_le_bytes)?,
                ArrayData::U8(x) => put(&mut out, x, u8::to_le_bytes)?,
                ArrayData::U64(x) => put(&mut out, x, u64::to_le_bytes)?,
                ArrayData::F32(x) => put(&mut out, x, f32::to_le_bytes)?,
                ArrayData::F64(x) => put(&mut out, x, f64::to_le_bytes)?,
                ArrayData::C128(x) => put(&mut out, x, |v: tessera::Complex64| {
                    let mut b = [0u8; 16];
                    b[..8].copy_from_slice(&v.re.to_le_bytes());
                    b[8..].copy_from_slice(&v.im.to_le_bytes());
                    b
                })?,
            }
        }
        other => {
            out.write_all(WIRE_MAGIC)?;
            out.write_all(&tessera::wire::encode_chunk(other))?;
        }
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_data()
}

fn dtype_code(a: &ArrayData) -> u8 {
    match a {
        ArrayData::Bool(_) => 0,
        ArrayData::I64(_) => 1,
        ArrayData::F32(_) => 2,
        ArrayData::F64(_) => 3,
        ArrayData::C128(_) => 4,
        ArrayData::I32(_) => 5,
        ArrayData::U8(_) => 6,
        ArrayData::U64(_) => 7,
    }
}

/// Writes the elements of `a` in C order through a small buffer.
fn put<T: Copy, const N: usize>(
    out: &mut impl Write,
    a: &ArrayD<T>,
    le: impl Fn(T) -> [u8; N],
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(BUFFER);
    for &x in a.iter() {
        buf.extend_from_slice(&le(x));
        if buf.len() + N > BUFFER {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)
}

/// Reads a chunk written by [`write`].
pub fn read(path: &Path) -> Result<ChunkValue, String> {
    let fail = |e: std::io::Error| io_error("reading the spilled chunk", path, e);
    let bad = |what: &str| format!("reading the spilled chunk {}: {what}", path.display());
    let mut input = BufReader::with_capacity(BUFFER, File::open(path).map_err(fail)?);
    let mut magic = [0u8; 4];
    input.read_exact(&mut magic).map_err(fail)?;
    if &magic == WIRE_MAGIC {
        let mut bytes = Vec::new();
        input.read_to_end(&mut bytes).map_err(fail)?;
        return tessera::wire::decode_chunk(&bytes).map_err(|e| bad(&e.to_string()));
    }
    if &magic != ARRAY_MAGIC {
        return Err(bad("not a tessera spill file"));
    }
    let mut head = [0u8; 5];
    input.read_exact(&mut head).map_err(fail)?;
    let ndim = u32::from_le_bytes(head[1..5].try_into().expect("4 bytes")) as usize;
    if ndim > 64 {
        return Err(bad(&format!("{ndim} dimensions")));
    }
    let mut shape = Vec::with_capacity(ndim);
    for _ in 0..ndim {
        let mut d = [0u8; 8];
        input.read_exact(&mut d).map_err(fail)?;
        shape.push(usize::try_from(u64::from_le_bytes(d)).map_err(|_| bad("dimension too large"))?);
    }
    let len = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad("shape too large"))?;
    let dim = IxDyn(&shape);
    let shaped = |e: ndarray::ShapeError| bad(&e.to_string());
    let data = match head[0] {
        0 => ArrayData::Bool(
            ArrayD::from_shape_vec(
                dim,
                get(&mut input, len, |b: [u8; 1]| b[0] != 0).map_err(fail)?,
            )
            .map_err(shaped)?,
        ),
        1 => ArrayData::I64(
            ArrayD::from_shape_vec(dim, get(&mut input, len, i64::from_le_bytes).map_err(fail)?)
                .map_err(shaped)?,
        ),
        2 => ArrayData::F32(
            ArrayD::from_shape_vec(dim, get(&mut input, len, f32::from_le_bytes).map_err(fail)?)
                .map_err(shaped)?,
        ),
        3 => ArrayData::F64(
            ArrayD::from_shape_vec(dim, get(&mut input, len, f64::from_le_bytes).map_err(fail)?)
                .map_err(shaped)?,
        ),
        4 => ArrayData::C128(
            ArrayD::from_shape_vec(
                dim,
                get(&mut input, len, |b: [u8; 16]| {
                    let re = f64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
                    let im = f64::from_le_bytes(b[8..].try_into().expect("8 bytes"));
                    tessera::Complex64::new(re, im)
                })
                .map_err(fail)?,
            )
            .map_err(shaped)?,
        ),
        5 => ArrayData::I32(
            ArrayD::from_shape_vec(dim, get(&mut input, len, i32::from_le_bytes).map_err(fail)?)
                .map_err(shaped)?,
        ),
        6 => ArrayData::U8(
            ArrayD::from_shape_vec(dim, get(&mut input, len, u8::from_le_bytes).map_err(fail)?)
                .map_err(shaped)?,
        ),
        7 => ArrayData::U64(
            ArrayD::from_shape_vec(dim, get(&mut input, len, u64::from_le_bytes).map_err(fail)?)
                .map_err(shaped)?,
        ),
        d => return Err(bad(&format!("unknown dtype code {d}"))),
    };
    Ok(ChunkValue::Array(data))
}

/// Reads `len` elements of `N` little-endian bytes each, a buffer at a time, into one allocation.
fn get<T, const N: usize>(
    input: &mut impl Read,
    len: usize,
    le: impl Fn([u8; N]) -> T,
) -> std::io::Result<Vec<T>> {
    let mut out = Vec::with_capacity(len);
    let mut buf = vec![0u8; (BUFFER / N) * N];
    while out.len() < len {
        let n = ((len - out.len()) * N).min(buf.len());
        input.read_exact(&mut buf[..n])?;
        let (items, _) = buf[..n].as_chunks::<N>();
        out.extend(items.iter().map(|b| le(*b)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_come_back_as_they_were_written() {
        let dir = SpillDir::new(None).unwrap();
        let f = ndarray::ArrayD::from_shape_fn(IxDyn(&[300, 1000]), |i| {
            (i[0] * 1000 + i[1]) as f64 * 0.5 - 7.0
        });
        let values = [
            ChunkValue::Array(ArrayData::F64(f.clone())),
            // Not contiguous in memory: written in logical C order all the same.
            ChunkValue::Array(ArrayData::F64(
                f.t().to_owned().reversed_axes().t().to_owned(),
            )),
            ChunkValue::Array(ArrayData::F32(f.mapv(|x| x as f32).t().to_owned())),
            ChunkValue::Array(ArrayData::I64(f.mapv(|x| x as i64))),
            ChunkValue::Array(ArrayData::I32(f.mapv(|x| x as i32 - 1000))),
            ChunkValue::Array(ArrayData::U8(f.mapv(|x| x as i64 as u8))),
            ChunkValue::Array(ArrayData::U64(f.mapv(|x| (x as i64 as u64) << 20))),
            ChunkValue::Array(ArrayData::Bool(f.mapv(|x| x > 3.0))),
            ChunkValue::Array(ArrayData::C128(
                f.mapv(|x| tessera::Complex64::new(x, -x / 3.0)),
            )),
            ChunkValue::Array(ArrayData::F64(ndarray::ArrayD::zeros(IxDyn(&[0, 4])))),
            ChunkValue::Moments(tessera::data::Moments {
                count: ndarray::ArrayD::from_elem(IxDyn(&[1, 3]), 4.0),
                mean: ndarray::ArrayD::from_elem(IxDyn(&[1, 3]), 0.25),
                m2: Some(ndarray::ArrayD::from_elem(IxDyn(&[1, 3]), 9.0)),
            }),
        ];
        for (i, v) in values.iter().enumerate() {
            let path = dir.file(1, i as u32);
            write(&path, v).unwrap();
            assert_eq!(&read(&path).unwrap(), v, "value {i}");
        }
        let path = dir.path().to_path_buf();
        drop(dir);
        assert!(!path.exists(), "the spill directory outlived the worker");
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let dir = SpillDir::new(None).unwrap();
        let path = dir.file(2, 0);
        let v = ChunkValue::Array(ArrayData::F64(ndarray::ArrayD::zeros(IxDyn(&[100]))));
        write(&path, &v).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 8]).unwrap();
        let e = read(&path).unwrap_err();
        assert!(e.contains(&path.display().to_string()), "{e}");
        std::fs::write(&path, b"nonsense").unwrap();
        assert!(
            read(&path)
                .unwrap_err()
                .contains("not a tessera spill file")
        );
        assert!(read(&dir.file(2, 9)).unwrap_err().contains("2-9.chunk"));
    }
}
