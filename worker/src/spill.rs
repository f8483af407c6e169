//! Spill files: where a worker keeps chunks that do not fit its memory target, and the file format.
//!
//! The directory is private to the worker process: a fresh subdirectory of `--spill-dir` (or of the
//! system's temporary directory), removed with everything in it when the worker exits, so workers
//! sharing a disk never see each other's files and nothing is left behind.
//!
//! A worker killed with SIGKILL (or by the OOM killer) cannot remove its directory, so each one names
//! its owner: `tessera-spill-<pid>-<random>`, holding an `owner` file with the pid, the process's
//! start time (so a reused pid is not mistaken for the owner), the boot id and the host name. At
//! start-up a worker removes the directories in the same parent whose owner is gone: on this host
//! (another host sharing the disk is never judged), owned by the same user, and either from an earlier
//! boot or naming a process that no longer exists or started at another time. A directory without a
//! readable `owner` file (one being created right now, or of an older version) is left alone: only a
//! directory known to be orphaned is removed, never a live worker's.
//!
//! An array chunk is written as a small header (magic, dtype, shape) and then its elements in C order,
//! little-endian, converted a megabyte at a time: spilling a chunk never allocates a second copy of
//! it, which would defeat the point of spilling. Reading converts back the same way into one
//! allocation of the final size; a region of a spilled array (what a rechunk task reads of a source
//! chunk, or sends of one) is read from its contiguous runs in place, never the whole file.
//! Partials (a reduction's count/mean/m2, small) are written in the wire encoding. Every error
//! names the file.
//!
//! These functions block on the disk: callers run them on the task threads or tokio's blocking pool,
//! never on the thread that serves the scheduler session and fetches.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use tessera::wire::RegionRuns;
use tessera::{ArrayData, ChunkValue, DType};
use tracing::{info, warn};

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
    /// Creates a private directory in `parent` (default: the system's temporary directory), after
    /// removing the directories there that workers killed earlier left behind (see the module docs).
    pub fn new(parent: Option<&Path>) -> Result<SpillDir, WorkerError> {
        let parent = match parent {
            Some(p) => {
                std::fs::create_dir_all(p).map_err(|e| {
                    WorkerError::Config(format!("--spill-dir {}: {e}", p.display()))
                })?;
                p.to_path_buf()
            }
            None => std::env::temp_dir(),
        };
        let me = Owner::current();
        for stale in remove_stale(&parent, &me) {
            match stale {
                Ok(path) => info!(
                    path = %path.display(),
                    "removed the spill directory of a worker that is gone"
                ),
                Err(why) => warn!("{why}"),
            }
        }
        let cannot = |e: std::io::Error| {
            WorkerError::Config(format!(
                "cannot create a spill directory in {}: {e}",
                parent.display()
            ))
        };
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{}-", me.pid))
            .tempdir_in(&parent)
            .map_err(cannot)?;
        std::fs::write(dir.path().join(OWNER_FILE), me.to_string()).map_err(cannot)?;
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

/// Spill directories' names start with this, then the owner's pid and a dash.
const PREFIX: &str = "tessera-spill-";
/// The file in a spill directory that says who made it.
const OWNER_FILE: &str = "owner";

/// The process that made a spill directory, as its `owner` file records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Owner {
    pub pid: u32,
    /// Start time of the process in clock ticks after boot (`/proc/PID/stat` field 22); 0 where
    /// unknown. With the pid it names one process: pids are reused, start times on one boot are not
    /// for the same pid.
    pub start: u64,
    /// `/proc/sys/kernel/random/boot_id`, empty where unknown: after a reboot no process of the
    /// previous boot is alive.
    pub boot: String,
    /// Host name: another host sharing the disk has its own processes, which this one cannot see.
    pub host: String,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "pid={}", self.pid)?;
        writeln!(f, "start={}", self.start)?;
        writeln!(f, "boot={}", self.boot)?;
        writeln!(f, "host={}", self.host)
    }
}

impl Owner {
    /// This process.
    pub fn current() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            start: process_start(pid).unwrap_or(0),
            boot: boot_id(),
            host: host_name(),
        }
    }

    /// Parses an `owner` file; `None` if it is not one.
    pub fn parse(text: &str) -> Option<Owner> {
        let mut fields = std::collections::HashMap::new();
        for line in text.lines() {
            let (k, v) = line.split_once('=')?;
            fields.insert(k, v);
        }
        Some(Owner {
            pid: fields.get("pid")?.parse().ok()?,
            start: fields.get("start")?.parse().ok()?,
            boot: fields.get("boot")?.to_string(),
            host: fields.get("host")?.to_string(),
        })
    }

    /// Whether the process this names is certainly gone, judged from `me` (this process, on this
    /// host): false whenever in doubt.
    pub fn is_gone(&self, me: &Owner) -> bool {
        if self.host != me.host {
            return false;
        }
        // Before the pid: after a reboot the same pid and start time may well come round again.
        if !self.boot.is_empty() && !me.boot.is_empty() && self.boot != me.boot {
            return true;
        }
        if self.pid == me.pid && self.start == me.start {
            return false;
        }
        // pid 0 and values past i32::MAX would make kill(2) address process groups.
        let Ok(pid) = i32::try_from(self.pid) else {
            return false;
        };
        if pid <= 1 {
            return false;
        }
        // SAFETY: signal 0 sends nothing; it only asks whether the process exists.
        let exists = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
        if !exists {
            return true;
        }
        // The pid is in use: by the owner, unless its start time says it is another process.
        match process_start(self.pid) {
            Some(start) => self.start != 0 && start != self.start,
            None => false,
        }
    }
}

/// Start time of process `pid` in clock ticks after boot, where `/proc` tells it.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces and parentheses itself.
    let rest = &stat[stat.rfind(')')? + 1..];
    // Fields 3, 4, … follow; the start time is field 22.
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into the buffer it is given.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Removes the spill directories in `parent` whose owner is gone (see the module docs); returns each
/// one removed, or why one that should have been could not be.
pub(crate) fn remove_stale(parent: &Path, me: &Owner) -> Vec<Result<PathBuf, String>> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let mut done = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        if rest
            .split('-')
            .next()
            .is_none_or(|p| p.parse::<u32>().is_err())
        {
            continue;
        }
        let path = entry.path();
        // Directories only, not followed through links, and only this user's.
        use std::os::unix::fs::MetadataExt as _;
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() && m.uid() == uid => {}
            _ => continue,
        }
        let owner = std::fs::read_to_string(path.join(OWNER_FILE))
            .ok()
            .and_then(|t| Owner::parse(&t));
        if !owner.is_some_and(|o| o.is_gone(me)) {
            continue;
        }
        done.push(
            std::fs::remove_dir_all(&path)
                .map(|()| path.clone())
                .map_err(|e| {
                    format!(
                        "cannot remove the spill directory {} left by a worker that is gone: {e}",
                        path.display()
                    )
                }),
        );
    }
    done
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

/// The dtype code and the shape that follow the magic of an array spill file (both readers of
/// such files start with them).
fn read_array_header(input: &mut impl Read, path: &Path) -> Result<(u8, Vec<usize>), String> {
    let fail = |e: std::io::Error| io_error("reading the spilled chunk", path, e);
    let bad = |what: &str| format!("reading the spilled chunk {}: {what}", path.display());
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
    Ok((head[0], shape))
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
    let (code, shape) = read_array_header(&mut input, path)?;
    let dtype = dtype_of_code(code).ok_or_else(|| bad(&format!("unknown dtype code {code}")))?;
    elements(dtype, &shape, &mut input, path).map(ChunkValue::Array)
}

/// Reads only `region` (a range per axis) of a spilled array chunk: the array that region cuts out,
/// read from the file's contiguous runs of it (one positioned read each, a buffer at a time), never
/// the whole chunk. A region outside the chunk, or of a spilled partial, is an error naming the
/// file, the region and the shape.
pub fn read_region(path: &Path, region: &[Range<usize>]) -> Result<ChunkValue, String> {
    let file = match open_spilled(path)? {
        Spilled::Array(f) => f,
        Spilled::Wire => {
            return Err(format!(
                "reading region {region:?} of the spilled chunk {}: it is not an array",
                path.display()
            ));
        }
    };
    let runs = RegionRuns::new(&file.shape, region)
        .map_err(|e| format!("reading the spilled chunk {}: {e}", path.display()))?;
    let shape: Vec<usize> = region.iter().map(|r| r.len()).collect();
    let dtype = file.dtype;
    let mut reader = RunReader::new(file, runs);
    elements(dtype, &shape, &mut reader, path).map(ChunkValue::Array)
}

/// The dtype a spill file's code names.
fn dtype_of_code(code: u8) -> Option<DType> {
    Some(match code {
        0 => DType::Bool,
        1 => DType::I64,
        2 => DType::F32,
        3 => DType::F64,
        4 => DType::C128,
        5 => DType::I32,
        6 => DType::U8,
        7 => DType::U64,
        _ => return None,
    })
}

/// An array of `dtype` and `shape` from the little-endian elements `input` gives in C order.
fn elements(
    dtype: DType,
    shape: &[usize],
    input: &mut impl Read,
    path: &Path,
) -> Result<ArrayData, String> {
    let fail = |e: std::io::Error| io_error("reading the spilled chunk", path, e);
    let bad = |what: &str| format!("reading the spilled chunk {}: {what}", path.display());
    let len = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad("shape too large"))?;
    let dim = IxDyn(shape);
    let shaped = |e: ndarray::ShapeError| bad(&e.to_string());
    Ok(match dtype {
        DType::Bool => ArrayData::Bool(
            ArrayD::from_shape_vec(dim, get(input, len, |b: [u8; 1]| b[0] != 0).map_err(fail)?)
                .map_err(shaped)?,
        ),
        DType::I64 => ArrayData::I64(
            ArrayD::from_shape_vec(dim, get(input, len, i64::from_le_bytes).map_err(fail)?)
                .map_err(shaped)?,
        ),
        DType::F32 => ArrayData::F32(
            ArrayD::from_shape_vec(dim, get(input, len, f32::from_le_bytes).map_err(fail)?)
                .map_err(shaped)?,
        ),
        DType::F64 => ArrayData::F64(
            ArrayD::from_shape_vec(dim, get(input, len, f64::from_le_bytes).map_err(fail)?)
                .map_err(shaped)?,
        ),
        DType::C128 => ArrayData::C128(
            ArrayD::from_shape_vec(
                dim,
                get(input, len, |b: [u8; 16]| {
                    let re = f64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
                    let im = f64::from_le_bytes(b[8..].try_into().expect("8 bytes"));
                    tessera::Complex64::new(re, im)
                })
                .map_err(fail)?,
            )
            .map_err(shaped)?,
        ),
        DType::I32 => ArrayData::I32(
            ArrayD::from_shape_vec(dim, get(input, len, i32::from_le_bytes).map_err(fail)?)
                .map_err(shaped)?,
        ),
        DType::U8 => ArrayData::U8(
            ArrayD::from_shape_vec(dim, get(input, len, u8::from_le_bytes).map_err(fail)?)
                .map_err(shaped)?,
        ),
        DType::U64 => ArrayData::U64(
            ArrayD::from_shape_vec(dim, get(input, len, u64::from_le_bytes).map_err(fail)?)
                .map_err(shaped)?,
        ),
    })
}

/// A spill file opened to read its elements without reading it whole.
enum Spilled {
    Array(ArrayFile),
    /// A partial, in the wire encoding: read it whole with [`read`].
    Wire,
}

/// An array spill file whose length matches its header, positioned anywhere.
struct ArrayFile {
    path: PathBuf,
    file: File,
    dtype: DType,
    shape: Vec<usize>,
    /// Bytes before the first element.
    header: u64,
}

/// Opens a spill file and, for an array, reads its header and checks the file holds exactly the
/// elements it announces (a file cut short would send or read fewer bytes than it claims).
fn open_spilled(path: &Path) -> Result<Spilled, String> {
    let fail = |e: std::io::Error| io_error("reading the spilled chunk", path, e);
    let bad = |what: &str| format!("reading the spilled chunk {}: {what}", path.display());
    let mut file = File::open(path).map_err(fail)?;
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic).map_err(fail)?;
    if &magic == WIRE_MAGIC {
        return Ok(Spilled::Wire);
    }
    if &magic != ARRAY_MAGIC {
        return Err(bad("not a tessera spill file"));
    }
    let (code, shape) = read_array_header(&mut file, path)?;
    let dtype = dtype_of_code(code).ok_or_else(|| bad(&format!("unknown dtype code {code}")))?;
    let elements = shape
        .iter()
        .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad("shape too large"))?;
    let header = 4 + 5 + 8 * shape.len();
    let on_disk = file.metadata().map_err(fail)?.len();
    if on_disk != (header + elements) as u64 {
        return Err(bad(&format!(
            "{on_disk} bytes on disk, {} expected for {dtype} of shape {shape:?}",
            header + elements
        )));
    }
    Ok(Spilled::Array(ArrayFile {
        path: path.to_path_buf(),
        file,
        dtype,
        shape,
        header: header as u64,
    }))
}

/// The elements of a region of an array spill file, in the region's C order, as a reader: each run
/// of the region ([`RegionRuns`]) is read where it lies with positioned reads, so nothing outside
/// the region is read.
struct RunReader {
    file: ArrayFile,
    runs: RegionRuns,
    /// File offsets of what is left of the run being read.
    pending: Range<u64>,
}

impl RunReader {
    fn new(file: ArrayFile, runs: RegionRuns) -> Self {
        RunReader {
            file,
            runs,
            pending: 0..0,
        }
    }
}

impl Read for RunReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.pending.start >= self.pending.end {
            let Some(run) = self.runs.next() else {
                return Ok(0);
            };
            let size = self.file.dtype.size() as u64;
            let at = |i: usize| self.file.header + i as u64 * size;
            self.pending = at(run.start)..at(run.end);
        }
        let n = buf
            .len()
            .min(usize::try_from(self.pending.end - self.pending.start).unwrap_or(usize::MAX));
        let got = self.file.file.read_at(&mut buf[..n], self.pending.start)?;
        if got == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.pending.start += got as u64;
        Ok(got)
    }
}

/// A spilled chunk as sent to a peer: an array straight from its file, a piece at a time (its
/// elements are already the bytes the wire carries), or anything else (a small partial) read whole.
#[derive(Debug)]
pub enum Outgoing {
    Pieces(FilePieces),
    // Boxed: a chunk value is far larger than the file's state, and this is one per send.
    Value(Box<ChunkValue>),
}

/// The encoding of a spilled array chunk, or of a region of it ([`tessera::wire::encode_chunk`]'s
/// bytes for the array that region cuts out), produced a piece at a time from its file: the prefix,
/// then the elements, read where they lie. Sending a spilled chunk costs one piece of memory, not
/// the chunk (which the worker's memory limit would not count).
pub struct FilePieces {
    reader: RunReader,
    prefix: Vec<u8>,
    total_len: usize,
    sent: usize,
}

impl std::fmt::Debug for FilePieces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilePieces")
            .field("path", &self.reader.file.path)
            .field("total_len", &self.total_len)
            .field("sent", &self.sent)
            .finish()
    }
}

/// Why a spilled chunk cannot be sent.
#[derive(Debug, thiserror::Error)]
pub enum OutgoingError {
    /// The region asked of it does not lie inside it, or it is not an array: the asker's mistake.
    #[error("{0}")]
    BadRegion(String),
    /// Its file could not be read, or is damaged (the message names the file).
    #[error("{0}")]
    File(String),
}

/// Opens a spilled chunk to send it, whole (`region` None) or only `region` of it (blocking: call it
/// on tokio's blocking pool). A region outside the chunk, or of a spilled partial, is an error
/// naming the region and the shape.
pub fn open_outgoing(
    path: &Path,
    region: Option<&[Range<usize>]>,
) -> Result<Outgoing, OutgoingError> {
    let file = match open_spilled(path).map_err(OutgoingError::File)? {
        Spilled::Array(f) => f,
        Spilled::Wire => {
            return match region {
                None => read(path)
                    .map(|v| Outgoing::Value(Box::new(v)))
                    .map_err(OutgoingError::File),
                Some(region) => Err(OutgoingError::BadRegion(format!(
                    "region {region:?} asked of a chunk that is not an array"
                ))),
            };
        }
    };
    let whole: Vec<Range<usize>>;
    let region = match region {
        Some(r) => r,
        None => {
            whole = file.shape.iter().map(|&n| 0..n).collect();
            &whole
        }
    };
    let runs = RegionRuns::new(&file.shape, region).map_err(OutgoingError::BadRegion)?;
    let shape: Vec<usize> = region.iter().map(|r| r.len()).collect();
    let prefix = tessera::wire::array_encoding_prefix(file.dtype, &shape);
    let total_len = prefix.len() + runs.elements() * file.dtype.size();
    Ok(Outgoing::Pieces(FilePieces {
        reader: RunReader::new(file, runs),
        prefix,
        total_len,
        sent: 0,
    }))
}

impl FilePieces {
    /// Bytes of the whole encoding.
    pub fn total_len(&self) -> usize {
        self.total_len
    }

    pub fn is_done(&self) -> bool {
        self.sent == self.total_len
    }

    /// The next bytes of the encoding, at most `max` (blocking on the disk).
    pub fn next_piece(&mut self, max: usize) -> Result<Vec<u8>, String> {
        let n = max.min(self.total_len - self.sent);
        let mut out = Vec::with_capacity(n);
        if self.sent < self.prefix.len() {
            let end = self.prefix.len().min(self.sent + n);
            out.extend_from_slice(&self.prefix[self.sent..end]);
        }
        let from_file = n - out.len();
        let start = out.len();
        out.resize(n, 0);
        self.reader
            .read_exact(&mut out[start..start + from_file])
            .map_err(|e| io_error("reading the spilled chunk", &self.reader.file.path, e))?;
        self.sent += n;
        Ok(out)
    }
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

    /// Chunks of every dtype, one not in C order, an empty one and a partial.
    fn sample_values() -> Vec<ChunkValue> {
        let f = ndarray::ArrayD::from_shape_fn(IxDyn(&[300, 1000]), |i| {
            (i[0] * 1000 + i[1]) as f64 * 0.5 - 7.0
        });
        vec![
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
        ]
    }

    /// Every piece of `f`, each non-empty and at most `max` bytes, concatenated.
    fn drain(f: &mut FilePieces, max: usize) -> Vec<u8> {
        let mut got = Vec::new();
        while !f.is_done() {
            let piece = f.next_piece(max).unwrap();
            assert!(!piece.is_empty() && piece.len() <= max);
            got.extend_from_slice(&piece);
        }
        got
    }
    #[test]
    fn chunks_come_back_as_they_were_written() {
        let dir = SpillDir::new(None).unwrap();
        let values = sample_values();
        for (i, v) in values.iter().enumerate() {
            let path = dir.file(1, i as u32);
            write(&path, v).unwrap();
            assert_eq!(&read(&path).unwrap(), v, "value {i}");
        }
        let path = dir.path().to_path_buf();
        drop(dir);
        assert!(!path.exists(), "the spill directory outlived the worker");
    }

    /// The pid of a process that has exited (and been reaped).
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn an_owner_is_gone_only_when_its_process_certainly_is() {
        let me = Owner::current();
        assert_eq!(Owner::parse(&me.to_string()), Some(me.clone()));
        assert_eq!(Owner::parse("pid=12\nstart=x\n"), None);
        assert!(me.start > 0, "this test runs where /proc tells start times");
        // This very process: alive.
        assert!(!me.is_gone(&me));
        // A process that has exited: gone.
        let dead = Owner {
            pid: dead_pid(),
            ..me.clone()
        };
        assert!(dead.is_gone(&me));
        // Our pid with another start time: an earlier process that had our pid, gone.
        let reused = Owner {
            start: me.start - 1,
            ..me.clone()
        };
        assert!(reused.is_gone(&me));
        // A live child: alive, under its own start time.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let live = Owner {
            pid: child.id(),
            start: process_start(child.id()).unwrap(),
            ..me.clone()
        };
        assert!(!live.is_gone(&me));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(live.is_gone(&me));
        // Another host's worker is never judged, dead pid or not; an earlier boot's always is.
        let elsewhere = Owner {
            host: format!("{}-other", me.host),
            ..dead.clone()
        };
        assert!(!elsewhere.is_gone(&me));
        let rebooted = Owner {
            boot: "another-boot".into(),
            ..me.clone()
        };
        assert!(rebooted.is_gone(&me));
    }

    #[test]
    fn start_up_removes_only_directories_whose_owner_is_gone() {
        let parent = tempfile::tempdir().unwrap();
        let me = Owner::current();
        let make = |name: &str, owner: Option<&Owner>| {
            let d = parent.path().join(name);
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join("1-2.chunk"), b"spilled").unwrap();
            if let Some(o) = owner {
                std::fs::write(d.join(OWNER_FILE), o.to_string()).unwrap();
            }
            d
        };
        let dead = Owner {
            pid: dead_pid(),
            ..me.clone()
        };
        let stale = make(&format!("{PREFIX}{}-abc", dead.pid), Some(&dead));
        let mine = make(&format!("{PREFIX}{}-def", me.pid), Some(&me));
        // Being created (no owner file yet), an older name, another program's directory.
        let unowned = make(&format!("{PREFIX}{}-ghi", dead.pid), None);
        let old_style = make(&format!("{PREFIX}Xk3f9a"), Some(&dead));
        let other = make("something-else", Some(&dead));
        let file = parent.path().join(format!("{PREFIX}{}-file", dead.pid));
        std::fs::write(&file, b"not a directory").unwrap();

        let removed = remove_stale(parent.path(), &me);
        assert_eq!(removed, vec![Ok(stale.clone())]);
        assert!(!stale.exists());
        for kept in [&mine, &unowned, &old_style, &other, &file] {
            assert!(kept.exists(), "{} was removed", kept.display());
        }

        // A new spill directory in the same parent clears what is stale and names its owner.
        let stale = make(&format!("{PREFIX}{}-jkl", dead.pid), Some(&dead));
        let dir = SpillDir::new(Some(parent.path())).unwrap();
        assert!(!stale.exists());
        assert!(mine.exists());
        let name = dir
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(name.starts_with(&format!("{PREFIX}{}-", me.pid)), "{name}");
        let owner = std::fs::read_to_string(dir.path().join(OWNER_FILE)).unwrap();
        assert_eq!(Owner::parse(&owner), Some(me));
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

    /// A spilled array is sent as exactly the bytes of its encoding, read from its file a piece at a
    /// time (no piece longer than asked); a partial is read back whole.
    #[test]
    fn a_spilled_chunk_is_sent_from_its_file_as_its_encoding() {
        let dir = SpillDir::new(None).unwrap();
        for (i, v) in sample_values().iter().enumerate() {
            let path = dir.file(3, i as u32);
            write(&path, v).unwrap();
            match open_outgoing(&path, None).unwrap() {
                Outgoing::Pieces(mut f) => {
                    let want = tessera::wire::encode_chunk(v);
                    assert_eq!(f.total_len(), want.len(), "value {i}");
                    let got = drain(&mut f, 4096);
                    assert!(
                        got == want,
                        "value {i}: the bytes sent are not its encoding"
                    );
                }
                Outgoing::Value(back) => {
                    assert!(!matches!(v, ChunkValue::Array(_)), "value {i} read whole");
                    assert_eq!(&*back, v, "value {i}");
                }
            }
        }
    }

    #[test]
    fn a_spilled_chunk_cut_short_is_not_sent() {
        let dir = SpillDir::new(None).unwrap();
        let path = dir.file(4, 0);
        let v = ChunkValue::Array(ArrayData::F64(ndarray::ArrayD::zeros(IxDyn(&[100]))));
        write(&path, &v).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 8]).unwrap();
        let e = open_outgoing(&path, None).unwrap_err().to_string();
        assert!(
            e.contains(&path.display().to_string()) && e.contains("expected"),
            "{e}"
        );
        assert!(
            open_outgoing(&dir.file(4, 9), None)
                .unwrap_err()
                .to_string()
                .contains("4-9.chunk")
        );
    }

    /// Regions to read of a chunk of `shape`: boxes inside, whole rows, single elements, empty
    /// ones and the whole chunk.
    fn regions_of(shape: &[usize]) -> Vec<Vec<Range<usize>>> {
        let mut out = vec![shape.iter().map(|&n| 0..n).collect::<Vec<_>>()];
        if shape.len() == 2 {
            let (r, c) = (shape[0], shape[1]);
            out.push(vec![r / 3..r - r / 4, c / 5..c / 2 + 1]);
            out.push(vec![r / 2..r, 0..c]);
            out.push(vec![r.saturating_sub(1)..r, c.saturating_sub(1)..c]);
            out.push(vec![0..r, c / 2..c / 2]);
            out.push(vec![0..0, 0..c]);
        }
        out
    }

    /// `read_region` gives exactly what `ArrayData::region` cuts out of the chunk written, for
    /// every dtype (also one written from an array not in C order, and an empty one), and sending
    /// a region from the file gives its encoding, a piece at a time.
    #[test]
    fn a_region_of_a_spilled_chunk_is_read_and_sent_from_its_runs() {
        let dir = SpillDir::new(None).unwrap();
        let mut values = sample_values();
        values.push(ChunkValue::Array(ArrayData::I64(
            ndarray::ArrayD::from_shape_fn(IxDyn(&[3, 4, 5]), |i| {
                (i[0] * 20 + i[1] * 5 + i[2]) as i64
            }),
        )));
        let mut checked = 0;
        for (i, v) in values.iter().enumerate() {
            let ChunkValue::Array(a) = v else { continue };
            let path = dir.file(6, i as u32);
            write(&path, v).unwrap();
            let mut regions = regions_of(a.shape());
            if a.shape().len() == 3 {
                regions.push(vec![1..3, 0..4, 2..5]);
                regions.push(vec![0..3, 1..3, 0..5]);
            }
            for region in regions {
                let want = ChunkValue::Array(a.region(&region).unwrap());
                assert_eq!(
                    read_region(&path, &region).unwrap(),
                    want,
                    "value {i} region {region:?}"
                );
                let Outgoing::Pieces(mut f) = open_outgoing(&path, Some(&region)).unwrap() else {
                    panic!("an array is sent from its file");
                };
                let encoded = tessera::wire::encode_chunk(&want);
                assert_eq!(f.total_len(), encoded.len());
                let got = drain(&mut f, 1000);
                assert!(
                    got == encoded,
                    "value {i} region {region:?}: not its encoding"
                );
                checked += 1;
            }
        }
        assert!(checked >= 9 * 5, "{checked} regions checked");
    }

    /// A region that does not lie inside the chunk, or of a spilled partial, is an error naming
    /// the region and the shape (and, read back, the file).
    #[test]
    fn a_region_outside_a_spilled_chunk_is_refused_naming_it() {
        let dir = SpillDir::new(None).unwrap();
        let path = dir.file(7, 0);
        let v = ChunkValue::Array(ArrayData::F64(ndarray::ArrayD::zeros(IxDyn(&[4, 6]))));
        write(&path, &v).unwrap();
        // Past the end; reversed; too few axes.
        let (three, two) = (3, 2);
        let one_axis: Vec<Range<usize>> = std::iter::once(0..4).collect();
        for region in [vec![0..5, 0..6], vec![three..two, 0..1], one_axis] {
            let shown = format!("{region:?}");
            let e = read_region(&path, &region).unwrap_err();
            assert!(
                e.contains(&shown) && e.contains("[4, 6]") && e.contains("7-0.chunk"),
                "{e}"
            );
            match open_outgoing(&path, Some(&region)) {
                Err(OutgoingError::BadRegion(e)) => {
                    assert!(e.contains(&shown) && e.contains("[4, 6]"), "{e}")
                }
                other => panic!("{other:?}"),
            }
        }
        let partial = dir.file(7, 1);
        write(&partial, sample_values().last().unwrap()).unwrap();
        let e = read_region(&partial, &[0..1, 0..1]).unwrap_err();
        assert!(e.contains("not an array") && e.contains("7-1.chunk"), "{e}");
        assert!(matches!(
            open_outgoing(&partial, Some(&[0..1, 0..1])),
            Err(OutgoingError::BadRegion(_))
        ));
        // A file cut short is the file's fault, not the region's.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 8]).unwrap();
        assert!(matches!(
            open_outgoing(&path, Some(&[0..1, 0..1])),
            Err(OutgoingError::File(_))
        ));
        assert!(
            read_region(&path, &[0..1, 0..1])
                .unwrap_err()
                .contains("expected")
        );
    }

    /// Whole trailing axes merge into one run, so whole rows are read with one positioned read.
    #[test]
    fn whole_rows_are_one_run() {
        let runs: Vec<Range<usize>> = RegionRuns::new(&[10, 7], &[2..5, 0..7]).unwrap().collect();
        assert_eq!(runs, vec![14..35]);
        let runs: Vec<Range<usize>> = RegionRuns::new(&[10, 7], &[2..4, 1..3]).unwrap().collect();
        assert_eq!(runs, vec![15..17, 22..24]);
        let runs: Vec<Range<usize>> = RegionRuns::new(&[3, 4, 5], &[1..3, 0..4, 0..5])
            .unwrap()
            .collect();
        assert_eq!(runs, vec![20..60]);
        let runs: Vec<Range<usize>> = RegionRuns::new(&[3, 4, 5], &[0..2, 1..3, 0..5])
            .unwrap()
            .collect();
        assert_eq!(runs, vec![5..15, 25..35]);
        assert_eq!(RegionRuns::new(&[3, 4], &[1..1, 0..4]).unwrap().count(), 0);
        assert_eq!(
            RegionRuns::new(&[], &[]).unwrap().collect::<Vec<_>>(),
            vec![0..1]
        );
    }
}
