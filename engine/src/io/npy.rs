//! numpy `.npy` files read and written by region. This module owns the on-disk format — parsing and
//! validating the header (format versions 1.0, 2.0 and 3.0), emitting a header byte-identical to
//! `numpy.save`'s, and converting elements between their stored byte order and width and tessera's
//! dtypes — and the positioned I/O that lets chunk tasks on many threads read or write disjoint boxes
//! of one file at once, each touching only the bytes of its own box.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn, ShapeBuilder};

use crate::data::ArrayData;
use crate::error::{Error, Result};
use crate::meta::DType;

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// numpy pads the header so that the data starts at a multiple of this.
const ALIGN: usize = 64;
/// numpy leaves room after the dict so that the growing axis can be rewritten in place up to this many
/// digits; matching it keeps our headers byte-identical to `numpy.save`'s.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;
/// Deeper nesting than this is never a valid header, and bounding it keeps the recursive parser's stack
/// small on hostile input.
const MAX_NESTING: usize = 8;
/// Runs of a read closer than this are fetched with one read of the span between them: re-reading a
/// few KiB of page cache costs less than another system call.
const MAX_GAP: u64 = 4096;
/// Runs at least this long are read straight into place, where a bridging read would only add a copy.
const COALESCE_BELOW: u64 = 64 << 10;
/// Bounds the scratch buffer of a bridged read.
const MAX_SPAN: u64 = 4 << 20;
/// numpy refuses headers over 10 000 bytes by default; a much looser bound still keeps a forged
/// length in a large (or sparse) file from making us allocate gigabytes.
const MAX_HEADER: u64 = 1 << 20;

/// How an element is stored in the file, which may differ from the dtype it is read as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bool,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
    C128,
}

impl Kind {
    fn size(self) -> usize {
        match self {
            Kind::Bool | Kind::I8 | Kind::U8 => 1,
            Kind::I16 | Kind::U16 => 2,
            Kind::I32 | Kind::U32 | Kind::F32 => 4,
            Kind::I64 | Kind::U64 | Kind::F64 => 8,
            Kind::C128 => 16,
        }
    }

    fn dtype(self) -> DType {
        match self {
            Kind::Bool => DType::Bool,
            Kind::F32 => DType::F32,
            Kind::F64 => DType::F64,
            Kind::C128 => DType::C128,
            Kind::I32 => DType::I32,
            Kind::U8 => DType::U8,
            Kind::U64 => DType::U64,
            // int8, int16, uint16 and uint32 have no tessera type: widened to int64, which holds
            // every value.
            Kind::I8 | Kind::I16 | Kind::U16 | Kind::U32 | Kind::I64 => DType::I64,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DiskFormat {
    kind: Kind,
    big_endian: bool,
}

/// The parsed header of a `.npy` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyHeader {
    /// The dtype elements are read as: int32, uint8 and uint64 as themselves, the other integer
    /// types (int8, int16, uint16, uint32) widened to `I64`.
    pub dtype: DType,
    /// The array's shape, in elements per axis.
    pub shape: Vec<usize>,
    /// Whether the data is stored first axis fastest; [`read_region`] returns C order either way.
    pub fortran_order: bool,
    /// Byte offset of the first element.
    pub data_offset: u64,
    format: DiskFormat,
}

fn npy_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Npy {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn io_err(path: &Path, source: io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads and validates the header (magic, version, dict, descr, shape, file length ≥ data needed).
pub fn read_header(path: &Path) -> Result<NpyHeader> {
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let file_len = file.metadata().map_err(|e| io_err(path, e))?.len();
    let mut prefix = [0u8; 12];
    let prefix_len = file_len.min(prefix.len() as u64) as usize;
    file.read_exact_at(&mut prefix[..prefix_len], 0)
        .map_err(|e| io_err(path, e))?;
    let (dict_start, dict_len) =
        parse_prefix(&prefix[..prefix_len]).map_err(|r| npy_err(path, r))?;
    if dict_len > MAX_HEADER {
        return Err(npy_err(
            path,
            format!("the header claims {dict_len} bytes, more than the {MAX_HEADER} allowed"),
        ));
    }
    let dict_end = dict_start as u64 + dict_len;
    if dict_end > file_len {
        return Err(npy_err(
            path,
            format!(
                "the header claims {dict_len} bytes but the file is only {file_len} bytes long"
            ),
        ));
    }
    let mut dict = vec![0u8; dict_len as usize];
    file.read_exact_at(&mut dict, dict_start as u64)
        .map_err(|e| io_err(path, e))?;
    parse_dict(&dict, dict_end, file_len).map_err(|r| npy_err(path, r))
}

/// Checks magic and version, returning where the header dict starts and how long it is.
fn parse_prefix(prefix: &[u8]) -> Result<(usize, u64), String> {
    if prefix.len() < MAGIC.len() || &prefix[..MAGIC.len()] != MAGIC {
        return Err("it does not start with the magic string \\x93NUMPY".into());
    }
    let (major, minor) = match prefix.get(6..8) {
        Some(v) => (v[0], v[1]),
        None => return Err("the file ends inside the format version".into()),
    };
    let len_bytes = match (major, minor) {
        (1, 0) => 2,
        (2 | 3, 0) => 4,
        _ => return Err(format!("unsupported .npy format version {major}.{minor}")),
    };
    let start = 8 + len_bytes;
    let Some(raw) = prefix.get(8..start) else {
        return Err("the file ends inside the header length".into());
    };
    let len = raw
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    Ok((start, len))
}

/// Validates the header dict. `data_offset` is where the dict ends and the data starts.
fn parse_dict(text: &[u8], data_offset: u64, file_len: u64) -> Result<NpyHeader, String> {
    let mut p = Parser { s: text, pos: 0 };
    let entries = p.dict()?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    for (key, value) in entries {
        // Python keeps the last of repeated keys, and so do we.
        match key.as_str() {
            "descr" => descr = Some(value),
            "fortran_order" => fortran = Some(value),
            "shape" => shape = Some(value),
            _ => return Err(format!("unexpected key '{key}' in the header")),
        }
    }
    let missing = |k: &str| format!("the header has no '{k}' key");
    let format = match descr.ok_or_else(|| missing("descr"))? {
        Value::Str(s) => parse_descr(&s)?,
        Value::List => return Err("structured dtypes (a list descr) are not supported".into()),
        v => return Err(format!("'descr' must be a string, not {}", v.kind())),
    };
    let fortran_order = match fortran.ok_or_else(|| missing("fortran_order"))? {
        Value::Bool(b) => b,
        v => {
            return Err(format!(
                "'fortran_order' must be True or False, not {}",
                v.kind()
            ));
        }
    };
    let shape = match shape.ok_or_else(|| missing("shape"))? {
        Value::Tuple(items) => items
            .into_iter()
            .map(|v| match v {
                Value::Int(n) => usize::try_from(n)
                    .map_err(|_| format!("shape dimension {n} is negative or too large")),
                v => Err(format!("shape entries must be integers, not {}", v.kind())),
            })
            .collect::<Result<Vec<_>, _>>()?,
        v => return Err(format!("'shape' must be a tuple, not {}", v.kind())),
    };
    let nbytes = data_bytes(&shape, format.kind.size())
        .ok_or_else(|| format!("shape {shape:?} is too large to address"))?;
    let needed = data_offset
        .checked_add(nbytes)
        .ok_or_else(|| format!("shape {shape:?} is too large to address"))?;
    if file_len < needed {
        return Err(format!(
            "the file is truncated: shape {shape:?} needs {nbytes} data bytes from offset \
             {data_offset}, but the file is {file_len} bytes long"
        ));
    }
    Ok(NpyHeader {
        dtype: format.kind.dtype(),
        shape,
        fortran_order,
        data_offset,
        format,
    })
}

/// Bytes taken by an array, if it fits in both `usize` elements and `u64` bytes.
fn data_bytes(shape: &[usize], item: usize) -> Option<u64> {
    let elems = shape
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))?;
    u64::try_from(elems).ok()?.checked_mul(item as u64)
}

fn parse_descr(descr: &str) -> Result<DiskFormat, String> {
    let b = descr.as_bytes();
    let (order, code) = match b {
        [o @ (b'<' | b'>' | b'|' | b'='), code @ ..] => (*o, code),
        _ => return Err(format!("unsupported dtype descr '{descr}'")),
    };
    let kind = match code {
        b"b1" => Kind::Bool,
        b"i1" => Kind::I8,
        b"u1" => Kind::U8,
        b"i2" => Kind::I16,
        b"u2" => Kind::U16,
        b"i4" => Kind::I32,
        b"u4" => Kind::U32,
        b"i8" => Kind::I64,
        b"f4" => Kind::F32,
        b"f8" => Kind::F64,
        b"c16" => Kind::C128,
        b"u8" => Kind::U64,
        b"f2" => return Err(format!("dtype '{descr}' (float16) is not supported")),
        _ => {
            return Err(format!(
                "unsupported dtype descr '{descr}' (supported: bool, int8-64, uint8-64, \
                 float32, float64, complex128)"
            ));
        }
    };
    if order == b'|' && kind.size() > 1 {
        return Err(format!(
            "dtype '{descr}' gives no byte order for a multi-byte type"
        ));
    }
    let big_endian = match order {
        b'>' => true,
        b'=' => cfg!(target_endian = "big"),
        _ => false,
    };
    Ok(DiskFormat { kind, big_endian })
}

/// The subset of Python literals that can appear in a header.
#[derive(Debug)]
enum Value {
    Str(String),
    Bool(bool),
    None,
    Int(i128),
    Tuple(Vec<Value>),
    /// Its items are parsed only to find where it ends: no list is a valid header value.
    List,
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Bool(_) => "a bool",
            Value::None => "None",
            Value::Int(_) => "an integer",
            Value::Tuple(_) => "a tuple",
            Value::List => "a list",
        }
    }
}

/// A parser for the Python dict literal numpy writes (numpy reads it with `ast.literal_eval`).
struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.s.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn error(&self, what: &str) -> String {
        match self.s.get(self.pos) {
            Some(&c) if c.is_ascii_graphic() => {
                format!(
                    "malformed header dict: {what}, found '{}' at byte {}",
                    c as char, self.pos
                )
            }
            Some(&c) => format!(
                "malformed header dict: {what}, found byte {c:#04x} at byte {}",
                self.pos
            ),
            None => format!("malformed header dict: {what}, found the end of the header"),
        }
    }

    fn expect(&mut self, c: u8, what: &str) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    fn dict(&mut self) -> Result<Vec<(String, Value)>, String> {
        self.expect(b'{', "expected '{'")?;
        let mut entries = Vec::new();
        loop {
            if self.peek() == Some(b'}') {
                self.pos += 1;
                break;
            }
            let key = match self.value(1)? {
                Value::Str(s) => s,
                v => {
                    return Err(format!(
                        "header dict keys must be strings, not {}",
                        v.kind()
                    ));
                }
            };
            self.expect(b':', "expected ':' after a key")?;
            let value = self.value(1)?;
            entries.push((key, value));
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
        if self.peek().is_some() {
            return Err(self.error("expected only padding after the dict"));
        }
        Ok(entries)
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_NESTING {
            return Err("malformed header dict: values nested too deeply".into());
        }
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => self.string(q),
            Some(b'(') => {
                self.pos += 1;
                let (mut items, comma) = self.sequence(b')', depth)?;
                // `(x)` is just `x` in Python; only a comma makes a tuple.
                if items.len() == 1 && !comma {
                    Ok(items.remove(0))
                } else {
                    Ok(Value::Tuple(items))
                }
            }
            Some(b'[') => {
                self.pos += 1;
                self.sequence(b']', depth)?;
                Ok(Value::List)
            }
            Some(b'-' | b'0'..=b'9') => self.int(),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self.s.get(self.pos).is_some_and(u8::is_ascii_alphanumeric) {
                    self.pos += 1;
                }
                match &self.s[start..self.pos] {
                    b"True" => Ok(Value::Bool(true)),
                    b"False" => Ok(Value::Bool(false)),
                    b"None" => Ok(Value::None),
                    word => Err(format!(
                        "malformed header dict: unknown name '{}'",
                        String::from_utf8_lossy(word)
                    )),
                }
            }
            _ => Err(self.error("expected a value")),
        }
    }

    /// Items up to `close`, and whether any comma was seen.
    fn sequence(&mut self, close: u8, depth: usize) -> Result<(Vec<Value>, bool), String> {
        let mut items = Vec::new();
        let mut comma = false;
        loop {
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok((items, comma));
            }
            items.push(self.value(depth + 1)?);
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    comma = true;
                }
                Some(c) if c == close => {}
                _ => return Err(self.error(&format!("expected ',' or '{}'", close as char))),
            }
        }
    }

    fn string(&mut self, quote: u8) -> Result<Value, String> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.s.get(self.pos) {
                None | Some(b'\n') => return Err(self.error("unterminated string")),
                Some(&c) if c == quote => {
                    self.pos += 1;
                    return Ok(Value::Str(String::from_utf8_lossy(&out).into_owned()));
                }
                // Escapes never occur in a descr we accept, so keeping the escaped byte as is only has
                // to avoid ending the string early.
                Some(b'\\') => {
                    self.pos += 1;
                    if let Some(&c) = self.s.get(self.pos) {
                        out.push(c);
                        self.pos += 1;
                    }
                }
                Some(&c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn int(&mut self) -> Result<Value, String> {
        let negative = self.s.get(self.pos) == Some(&b'-');
        if negative {
            self.pos += 1;
        }
        let start = self.pos;
        let mut n: i128 = 0;
        while let Some(&c) = self.s.get(self.pos).filter(|c| c.is_ascii_digit()) {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(i128::from(c - b'0')))
                .ok_or("malformed header dict: an integer is too large")?;
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.error("expected digits"));
        }
        // Headers written by Python 2 mark long integers with a suffix.
        if matches!(self.s.get(self.pos), Some(b'L' | b'l')) {
            self.pos += 1;
        }
        Ok(Value::Int(if negative { -n } else { n }))
    }
}

/// The contiguous byte runs that make up a box of an array stored with `dims` (slowest axis first):
/// the trailing axes the box spans fully merge with the innermost partial one into a single run.
#[derive(Debug)]
struct Runs {
    run_elems: usize,
    /// (extent, stride in elements) of the axes iterated over, slowest first.
    outer: Vec<(usize, usize)>,
    first: usize,
}

impl Runs {
    /// `dims` must address fewer than `usize::MAX` elements and the box must be inside it and non-empty.
    fn plan(dims: &[usize], offset: &[usize], extent: &[usize]) -> Runs {
        let n = dims.len();
        let mut strides = vec![1usize; n];
        for axis in (1..n).rev() {
            strides[axis - 1] = strides[axis] * dims[axis];
        }
        let mut k = n;
        let mut run_elems = 1;
        while k > 0 {
            k -= 1;
            run_elems *= extent[k];
            if extent[k] != dims[k] {
                break;
            }
        }
        Runs {
            run_elems,
            outer: (0..k).map(|a| (extent[a], strides[a])).collect(),
            first: (0..n).map(|a| offset[a] * strides[a]).sum(),
        }
    }

    fn count(&self) -> usize {
        self.outer.iter().map(|&(e, _)| e).product()
    }

    /// Calls `f` with the element offset of every run, in increasing order.
    fn for_each(&self, mut f: impl FnMut(usize) -> Result<()>) -> Result<()> {
        let mut index = vec![0usize; self.outer.len()];
        let mut pos = self.first;
        loop {
            f(pos)?;
            let mut axis = self.outer.len();
            loop {
                if axis == 0 {
                    return Ok(());
                }
                axis -= 1;
                let (extent, stride) = self.outer[axis];
                if index[axis] + 1 < extent {
                    index[axis] += 1;
                    pos += stride;
                    break;
                }
                pos -= stride * index[axis];
                index[axis] = 0;
            }
        }
    }
}

/// Checks that a box of `shape` at `offset` lies inside `dims`, returning its element count.
fn check_box(path: &Path, dims: &[usize], offset: &[usize], shape: &[usize]) -> Result<usize> {
    if offset.len() != dims.len() || shape.len() != dims.len() {
        return Err(npy_err(
            path,
            format!(
                "a region with offset {offset:?} and shape {shape:?} does not match the {}-d \
                 array of shape {dims:?}",
                dims.len()
            ),
        ));
    }
    let inside = offset
        .iter()
        .zip(shape)
        .zip(dims)
        .all(|((&o, &s), &d)| o.checked_add(s).is_some_and(|end| end <= d));
    if !inside {
        return Err(npy_err(
            path,
            format!(
                "the region with offset {offset:?} and shape {shape:?} is outside the array of \
                 shape {dims:?}"
            ),
        ));
    }
    // Inside the array, so this cannot overflow once the array's own count is known to fit.
    Ok(shape.iter().product())
}

/// Reads the box of elements starting at `offset` with extent `shape` (both of the header's rank) into
/// a C-order [`ArrayData`] of `header.dtype`.
///
/// Only the box's bytes are read (plus gaps of at most a few KiB between nearby runs). If the caller
/// changed `header.dtype`, the values are converted to it with `astype` semantics.
pub fn read_region(
    path: &Path,
    header: &NpyHeader,
    offset: &[usize],
    shape: &[usize],
) -> Result<ArrayData> {
    let item = header.format.kind.size();
    data_bytes(&header.shape, item)
        .and_then(|n| n.checked_add(header.data_offset))
        .ok_or_else(|| npy_err(path, format!("shape {:?} is too large", header.shape)))?;
    let count = check_box(path, &header.shape, offset, shape)?;
    // Fortran order is C order of the reversed axes, so reading it as such yields the box transposed.
    let rev = |v: &[usize]| -> Vec<usize> { v.iter().rev().copied().collect() };
    let (dims, box_offset, box_shape) = if header.fortran_order {
        (rev(&header.shape), rev(offset), rev(shape))
    } else {
        (header.shape.clone(), offset.to_vec(), shape.to_vec())
    };
    let read_into = |out: &mut [u8]| -> Result<()> {
        if count > 0 {
            let file = File::open(path).map_err(|e| io_err(path, e))?;
            let runs = Runs::plan(&dims, &box_offset, &box_shape);
            read_runs(path, &file, header.data_offset, item, &runs, out)?;
        }
        Ok(())
    };
    // A file in this machine's byte order whose elements are already the array's type is read
    // straight into the result's buffer: decoding from a byte buffer would hold the chunk twice
    // while it is read, memory that the executors' accounting does not see.
    let native = !header.format.big_endian && cfg!(target_endian = "little");
    let dim = IxDyn(shape).set_f(header.fortran_order);
    let bad =
        |e: ndarray::ShapeError| npy_err(path, format!("internal error building the array: {e}"));
    match header.format.kind {
        Kind::F64 if native && header.dtype == DType::F64 => {
            let mut v = vec![0f64; count];
            read_into(bytemuck::cast_slice_mut(&mut v))?;
            let a = ArrayD::from_shape_vec(dim, v).map_err(bad)?;
            return Ok(ArrayData::F64(a).into_standard_layout());
        }
        Kind::F32 if native && header.dtype == DType::F32 => {
            let mut v = vec![0f32; count];
            read_into(bytemuck::cast_slice_mut(&mut v))?;
            let a = ArrayD::from_shape_vec(dim, v).map_err(bad)?;
            return Ok(ArrayData::F32(a).into_standard_layout());
        }
        Kind::I64 if native && header.dtype == DType::I64 => {
            let mut v = vec![0i64; count];
            read_into(bytemuck::cast_slice_mut(&mut v))?;
            let a = ArrayD::from_shape_vec(dim, v).map_err(bad)?;
            return Ok(ArrayData::I64(a).into_standard_layout());
        }
        Kind::I32 if native && header.dtype == DType::I32 => {
            let mut v = vec![0i32; count];
            read_into(bytemuck::cast_slice_mut(&mut v))?;
            let a = ArrayD::from_shape_vec(dim, v).map_err(bad)?;
            return Ok(ArrayData::I32(a).into_standard_layout());
        }
        Kind::U64 if native && header.dtype == DType::U64 => {
            let mut v = vec![0u64; count];
            read_into(bytemuck::cast_slice_mut(&mut v))?;
            let a = ArrayD::from_shape_vec(dim, v).map_err(bad)?;
            return Ok(ArrayData::U64(a).into_standard_layout());
        }
        Kind::U8 if header.dtype == DType::U8 => {
            let mut v = vec![0u8; count];
            read_into(&mut v)?;
            let a = ArrayD::from_shape_vec(dim, v).map_err(bad)?;
            return Ok(ArrayData::U8(a).into_standard_layout());
        }
        _ => {}
    }
    let mut bytes = vec![0u8; count * item];
    read_into(&mut bytes)?;
    let data = decode(
        header.format,
        &bytes,
        IxDyn(shape).set_f(header.fortran_order),
    )
    .map_err(|e| npy_err(path, format!("internal error building the array: {e}")))?
    .into_standard_layout();
    Ok(if data.dtype() == header.dtype {
        data
    } else {
        data.cast(header.dtype)
    })
}

fn read_runs(
    path: &Path,
    file: &File,
    data_offset: u64,
    item: usize,
    runs: &Runs,
    out: &mut [u8],
) -> Result<()> {
    let run_bytes = runs.run_elems * item;
    let read = |buf: &mut [u8], at: u64| {
        crate::exec::cancel::checkpoint()?;
        file.read_exact_at(buf, at).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                npy_err(
                    path,
                    format!(
                        "the file is truncated: it ends before byte {}",
                        at + buf.len() as u64
                    ),
                )
            } else {
                io_err(path, e)
            }
        })
    };
    let at = |pos: usize| data_offset + (pos * item) as u64;
    if run_bytes as u64 >= COALESCE_BELOW || runs.count() == 1 {
        let mut chunks = out.chunks_exact_mut(run_bytes);
        return runs.for_each(|pos| match chunks.next() {
            Some(dst) => read(dst, at(pos)),
            None => Ok(()),
        });
    }
    // Short runs: bridge the small gaps between them, collecting a batch of runs whose file span is
    // read at once into `scratch` and then scattered to their places in `out`.
    let mut scratch = Vec::new();
    let mut batch: Vec<u64> = Vec::new();
    let mut next_run = 0usize;
    let mut flush = |batch: &mut Vec<u64>, next_run: &mut usize| -> Result<()> {
        let (Some(&start), Some(&last)) = (batch.first(), batch.last()) else {
            return Ok(());
        };
        let span = (last - start) as usize + run_bytes;
        let dst = &mut out[*next_run * run_bytes..(*next_run + batch.len()) * run_bytes];
        if batch.len() == 1 {
            read(dst, start)?;
        } else {
            scratch.resize(span, 0);
            read(&mut scratch, start)?;
            for (d, &s) in dst.chunks_exact_mut(run_bytes).zip(batch.iter()) {
                let s = (s - start) as usize;
                d.copy_from_slice(&scratch[s..s + run_bytes]);
            }
        }
        *next_run += batch.len();
        batch.clear();
        Ok(())
    };
    runs.for_each(|pos| {
        let start = at(pos);
        if let (Some(&first), Some(&last)) = (batch.first(), batch.last()) {
            let end = start + run_bytes as u64;
            if start - (last + run_bytes as u64) > MAX_GAP || end - first > MAX_SPAN {
                flush(&mut batch, &mut next_run)?;
            }
        }
        batch.push(start);
        Ok(())
    })?;
    flush(&mut batch, &mut next_run)
}

/// Splits `bytes` into elements of `N` bytes and converts each.
fn elems<const N: usize, T>(bytes: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            f(a)
        })
        .collect()
}

/// Converts stored elements of one primitive type, in either byte order, to a vector.
macro_rules! convert {
    ($bytes:expr, $big:expr, $t:ty, $map:expr) => {{
        const N: usize = std::mem::size_of::<$t>();
        let map = $map;
        if $big {
            elems::<N, _>($bytes, |b| map(<$t>::from_be_bytes(b)))
        } else {
            elems::<N, _>($bytes, |b| map(<$t>::from_le_bytes(b)))
        }
    }};
}

fn decode(
    format: DiskFormat,
    bytes: &[u8],
    dim: ndarray::Shape<IxDyn>,
) -> std::result::Result<ArrayData, ndarray::ShapeError> {
    let big = format.big_endian;
    Ok(match format.kind {
        Kind::Bool => ArrayData::Bool(ArrayD::from_shape_vec(
            dim,
            bytes.iter().map(|&b| b != 0).collect(),
        )?),
        Kind::F32 => ArrayData::F32(ArrayD::from_shape_vec(
            dim,
            convert!(bytes, big, f32, |v| v),
        )?),
        Kind::F64 => ArrayData::F64(ArrayD::from_shape_vec(
            dim,
            convert!(bytes, big, f64, |v| v),
        )?),
        // A complex128 element is its real then its imaginary float64, each in the file's order.
        Kind::C128 => {
            let parts = convert!(bytes, big, f64, |v| v);
            ArrayData::C128(ArrayD::from_shape_vec(
                dim,
                parts
                    .chunks_exact(2)
                    .map(|p| num_complex::Complex64::new(p[0], p[1]))
                    .collect(),
            )?)
        }
        Kind::I32 => ArrayData::I32(ArrayD::from_shape_vec(
            dim,
            convert!(bytes, big, i32, |v| v),
        )?),
        Kind::U8 => ArrayData::U8(ArrayD::from_shape_vec(dim, bytes.to_vec())?),
        Kind::U64 => ArrayData::U64(ArrayD::from_shape_vec(
            dim,
            convert!(bytes, big, u64, |v| v),
        )?),
        kind => {
            let v = match kind {
                Kind::I8 => convert!(bytes, big, i8, i64::from),
                Kind::I16 => convert!(bytes, big, i16, i64::from),
                Kind::U16 => convert!(bytes, big, u16, i64::from),
                Kind::U32 => convert!(bytes, big, u32, i64::from),
                _ => convert!(bytes, big, i64, |v| v),
            };
            ArrayData::I64(ArrayD::from_shape_vec(dim, v)?)
        }
    })
}

/// The elements of `data` in C order as little-endian bytes.
fn encode(data: &ArrayData) -> Vec<u8> {
    fn le<T: Copy, const N: usize>(a: &ArrayD<T>, f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
        let mut out = Vec::with_capacity(a.len() * N);
        for &v in a.iter() {
            out.extend_from_slice(&f(v));
        }
        out
    }
    match data {
        ArrayData::Bool(a) => a.iter().map(|&b| u8::from(b)).collect(),
        ArrayData::I64(a) => le(a, i64::to_le_bytes),
        ArrayData::I32(a) => le(a, i32::to_le_bytes),
        ArrayData::U8(a) => a.iter().copied().collect(),
        ArrayData::U64(a) => le(a, u64::to_le_bytes),
        ArrayData::F32(a) => le(a, f32::to_le_bytes),
        ArrayData::F64(a) => le(a, f64::to_le_bytes),
        ArrayData::C128(a) => le(a, |v: num_complex::Complex64| {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&v.re.to_le_bytes());
            b[8..].copy_from_slice(&v.im.to_le_bytes());
            b
        }),
    }
}

fn descr(dtype: DType) -> &'static str {
    match dtype {
        DType::Bool => "|b1",
        DType::I64 => "<i8",
        DType::I32 => "<i4",
        DType::U8 => "|u1",
        DType::U64 => "<u8",
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::C128 => "<c16",
    }
}

/// The header `numpy.save` writes for a C-order array: version 1.0 unless the dict is too long for its
/// 16-bit length.
fn header_bytes(dtype: DType, shape: &[usize]) -> Option<Vec<u8>> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape_text = match dims.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_text}, }}",
        descr(dtype)
    );
    if let Some(first) = dims.first() {
        dict.push_str(&" ".repeat(GROWTH_AXIS_MAX_DIGITS.saturating_sub(first.len())));
    }
    for (version, len_bytes) in [(1u8, 2usize), (2, 4)] {
        let prefix = MAGIC.len() + 2 + len_bytes;
        let text_len = dict.len() + 1;
        // Like numpy, a full line of padding when already aligned.
        let pad = ALIGN - (prefix + text_len) % ALIGN;
        let total = text_len + pad;
        let len_field = if version == 1 {
            match u16::try_from(total) {
                Ok(n) => n.to_le_bytes().to_vec(),
                Err(_) => continue,
            }
        } else {
            u32::try_from(total).ok()?.to_le_bytes().to_vec()
        };
        let mut out = Vec::with_capacity(prefix + total);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[version, 0]);
        out.extend_from_slice(&len_field);
        out.extend_from_slice(dict.as_bytes());
        out.resize(prefix + total - 1, b' ');
        out.push(b'\n');
        return Some(out);
    }
    None
}

/// A file being written chunk by chunk, in any order, from several threads.
///
/// Regions are written with positioned writes on one shared handle, so concurrent
/// [`write_region`](Self::write_region) calls on disjoint regions need no locking. Elements no region
/// covers read as zero.
#[derive(Debug)]
pub struct NpyWriter {
    file: File,
    path: PathBuf,
    dtype: DType,
    shape: Vec<usize>,
    data_offset: u64,
}

impl NpyWriter {
    /// Creates (truncating) the file: writes a v1.0 header (v2.0 if the header would not fit), C order,
    /// little-endian, and sets the file length.
    pub fn create(path: &Path, dtype: DType, shape: &[usize]) -> Result<Self> {
        let too_large = || npy_err(path, format!("shape {shape:?} of {dtype} is too large"));
        let nbytes = data_bytes(shape, dtype.size()).ok_or_else(too_large)?;
        let header = header_bytes(dtype, shape).ok_or_else(too_large)?;
        let data_offset = header.len() as u64;
        let file_len = data_offset.checked_add(nbytes).ok_or_else(too_large)?;
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        file.write_all_at(&header, 0).map_err(|e| io_err(path, e))?;
        // Sizing the file up front lets regions be written in any order, and leaves the unwritten
        // parts sparse.
        file.set_len(file_len).map_err(|e| io_err(path, e))?;
        Ok(NpyWriter {
            file,
            path: path.to_path_buf(),
            dtype,
            shape: shape.to_vec(),
            data_offset,
        })
    }

    /// Writes `data` (its dtype must equal the writer's, its rank the file's) at element `offset`.
    pub fn write_region(&self, offset: &[usize], data: &ArrayData) -> Result<()> {
        let path = &self.path;
        if data.dtype() != self.dtype {
            return Err(npy_err(
                path,
                format!(
                    "cannot write {} data into a {} file",
                    data.dtype(),
                    self.dtype
                ),
            ));
        }
        let count = check_box(path, &self.shape, offset, data.shape())?;
        if count == 0 {
            return Ok(());
        }
        let bytes = encode(data);
        let item = self.dtype.size();
        let runs = Runs::plan(&self.shape, offset, data.shape());
        let run_bytes = runs.run_elems * item;
        let mut chunks = bytes.chunks_exact(run_bytes);
        runs.for_each(|pos| match chunks.next() {
            Some(src) => self
                .file
                .write_all_at(src, self.data_offset + (pos * item) as u64)
                .map_err(|e| io_err(path, e)),
            None => Ok(()),
        })
    }

    /// Flushes and syncs nothing more than needed; returns the path's errors.
    ///
    /// Positioned writes leave nothing buffered in the process, so this does not `fsync`: the data is
    /// visible to readers at once, but durable across a crash only once the OS writes it back. It
    /// checks that the file still has its full length.
    pub fn finish(self) -> Result<()> {
        let expected = data_bytes(&self.shape, self.dtype.size()).unwrap_or(0) + self.data_offset;
        let len = self
            .file
            .metadata()
            .map_err(|e| io_err(&self.path, e))?
            .len();
        if len != expected {
            return Err(npy_err(
                &self.path,
                format!("the file was resized to {len} bytes while being written, not {expected}"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Slice;

    fn sample(dtype: DType, shape: &[usize]) -> ArrayData {
        let n: usize = shape.iter().product();
        let idx = ArrayD::from_shape_vec(IxDyn(shape), (0..n as i64).collect()).unwrap();
        match dtype {
            DType::Bool => ArrayData::Bool(idx.mapv(|i| i % 3 == 0)),
            DType::I64 => ArrayData::I64(idx.mapv(|i| i * 7_000_000_001 - 50)),
            DType::I32 => ArrayData::I32(idx.mapv(|i| (i * 70_000_001 - 50) as i32)),
            DType::U8 => ArrayData::U8(idx.mapv(|i| (i * 37) as u8)),
            DType::U64 => ArrayData::U64(idx.mapv(|i| u64::MAX - (i as u64) * 7_000_000_001)),
            DType::F32 => ArrayData::F32(idx.mapv(|i| i as f32 * 0.25 - 3.0)),
            DType::F64 => ArrayData::F64(idx.mapv(|i| i as f64 / 3.0 - 1e300 * (i % 2) as f64)),
            DType::C128 => ArrayData::C128(
                idx.mapv(|i| num_complex::Complex64::new(i as f64 / 3.0, -1e300 * (i % 2) as f64)),
            ),
        }
    }

    fn slice(data: &ArrayData, offset: &[usize], shape: &[usize]) -> ArrayData {
        let s = |a: ndarray::AxisDescription| {
            let (o, n) = (offset[a.axis.0], shape[a.axis.0]);
            Slice::from(o..o + n)
        };
        crate::map_array!(data, a => a.slice_each_axis(s).to_owned())
    }

    /// Every block of a grid with blocks of at most 2 along each axis, in a fixed scrambled order.
    fn scrambled_blocks(shape: &[usize]) -> Vec<(Vec<usize>, Vec<usize>)> {
        let mut blocks = vec![(vec![], vec![])];
        for &n in shape {
            let starts: Vec<usize> = if n == 0 {
                vec![0]
            } else {
                (0..n).step_by(2).collect()
            };
            blocks = blocks
                .into_iter()
                .flat_map(|(o, s)| {
                    starts.iter().map(move |&st| {
                        let mut o = o.clone();
                        let mut s: Vec<usize> = s.clone();
                        o.push(st);
                        s.push(2.min(n - st));
                        (o, s)
                    })
                })
                .collect();
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for i in (1..blocks.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            blocks.swap(i, (state % (i as u64 + 1)) as usize);
        }
        blocks
    }

    /// Boxes worth reading from an array of `shape`: everything, interiors, single elements, and
    /// boxes spanning full trailing axes.
    fn boxes(shape: &[usize]) -> Vec<(Vec<usize>, Vec<usize>)> {
        let whole = (vec![0; shape.len()], shape.to_vec());
        let interior = (
            shape.iter().map(|&n| n / 3).collect(),
            shape.iter().map(|&n| n - n / 3 - n / 4).collect(),
        );
        let last = (
            shape.iter().map(|&n| n.saturating_sub(1)).collect(),
            shape.iter().map(|&n| n.min(1)).collect(),
        );
        let trailing_full = (
            shape
                .iter()
                .enumerate()
                .map(|(a, &n)| if a == 0 { n / 2 } else { 0 })
                .collect(),
            shape
                .iter()
                .enumerate()
                .map(|(a, &n)| if a == 0 { n - n / 2 } else { n })
                .collect(),
        );
        vec![whole, interior, last, trailing_full]
    }

    const SHAPES: &[&[usize]] = &[
        &[],
        &[7],
        &[0],
        &[5, 4],
        &[3, 0, 4],
        &[3, 5, 2],
        &[2, 3, 4, 5],
        &[3, 2, 0, 2],
    ];

    #[test]
    fn round_trips_every_dtype_and_rank() {
        let dir = tempfile::tempdir().unwrap();
        for dtype in DType::ALL {
            for &shape in SHAPES {
                let path = dir.path().join(format!("{dtype}_{}.npy", shape.len()));
                let data = sample(dtype, shape);
                let w = NpyWriter::create(&path, dtype, shape).unwrap();
                for (o, s) in scrambled_blocks(shape) {
                    w.write_region(&o, &slice(&data, &o, &s)).unwrap();
                }
                w.finish().unwrap();
                let h = read_header(&path).unwrap();
                assert_eq!(
                    (h.dtype, h.shape.as_slice(), h.fortran_order),
                    (dtype, shape, false)
                );
                assert_eq!(h.data_offset % 64, 0);
                for (o, s) in boxes(shape) {
                    let got = read_region(&path, &h, &o, &s).unwrap();
                    assert_eq!(
                        got,
                        slice(&data, &o, &s),
                        "{dtype} {shape:?} at {o:?} {s:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn writes_non_standard_layouts_and_concurrently() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.npy");
        let shape = [40, 30];
        let data = sample(DType::F64, &shape);
        let w = NpyWriter::create(&path, DType::F64, &shape).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let (w, data) = (&w, &data);
                s.spawn(move || {
                    for (i, (o, sh)) in scrambled_blocks(&shape).into_iter().enumerate() {
                        if i % 4 == t {
                            // A transposed copy exercises writing from a non-C-order array.
                            let block = slice(data, &o, &sh).into_typed::<f64>().unwrap();
                            let t = block.t().to_owned();
                            let f = t.t();
                            w.write_region(&o, &ArrayData::F64(f.to_owned())).unwrap();
                        }
                    }
                });
            }
        });
        w.finish().unwrap();
        let h = read_header(&path).unwrap();
        assert_eq!(read_region(&path, &h, &[0, 0], &shape).unwrap(), data);
        // A narrow column takes the gap-bridging path.
        let col = read_region(&path, &h, &[3, 7], &[30, 2]).unwrap();
        assert_eq!(col, slice(&data, &[3, 7], &[30, 2]));
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<NpyWriter>();
    }

    #[test]
    fn runs_merge_full_trailing_axes() {
        let runs = Runs::plan(&[4, 5, 6], &[1, 0, 0], &[2, 5, 6]);
        assert_eq!((runs.run_elems, runs.count(), runs.first), (60, 1, 30));
        let runs = Runs::plan(&[4, 5, 6], &[1, 2, 0], &[2, 3, 6]);
        assert_eq!(
            (runs.run_elems, runs.outer.as_slice()),
            (18, &[(2, 30)][..])
        );
        let runs = Runs::plan(&[4, 5, 6], &[1, 2, 3], &[2, 2, 2]);
        let mut starts = Vec::new();
        runs.for_each(|p| {
            starts.push(p);
            Ok(())
        })
        .unwrap();
        assert_eq!((runs.run_elems, starts), (2, vec![45, 51, 75, 81]));
        let runs = Runs::plan(&[], &[], &[]);
        assert_eq!((runs.run_elems, runs.count(), runs.first), (1, 1, 0));
    }

    #[test]
    fn bridged_reads_split_into_batches() {
        let dir = tempfile::tempdir().unwrap();
        // Rows of 2 KiB make runs close enough to bridge, and 3000 of them span more than one batch;
        // rows of 4.8 KiB leave gaps too wide to bridge.
        for shape in [&[3000, 256][..], &[4, 20, 600][..]] {
            let path = dir.path().join("wide.npy");
            let data = sample(DType::F64, shape);
            let w = NpyWriter::create(&path, DType::F64, shape).unwrap();
            w.write_region(&vec![0; shape.len()], &data).unwrap();
            w.finish().unwrap();
            let h = read_header(&path).unwrap();
            let n = shape.len();
            let mut cases = boxes(shape);
            cases.push((vec![1; n], shape.iter().map(|&d| d.min(3) - 1).collect()));
            let mut column = (vec![0; n], shape.to_vec());
            column.0[n - 1] = 5;
            column.1[n - 1] = 2;
            cases.push(column.clone());
            column.1[n - 1] = shape[n - 1] / 2;
            cases.push(column);
            for (o, s) in cases {
                let got = read_region(&path, &h, &o, &s).unwrap();
                assert_eq!(got, slice(&data, &o, &s), "{shape:?} at {o:?} {s:?}");
            }
        }
    }

    /// A file with a version 1.0 header around `dict`, built without the writer.
    fn hand_built(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut text = dict.as_bytes().to_vec();
        while !(10 + text.len() + 1).is_multiple_of(64) {
            text.push(b' ');
        }
        text.push(b'\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(text.len() as u16).to_le_bytes());
        out.extend_from_slice(&text);
        out.extend_from_slice(data);
        out
    }

    fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn reads_fortran_order() {
        let dir = tempfile::tempdir().unwrap();
        let shape = [3, 4, 5];
        let expected =
            ArrayD::from_shape_fn(IxDyn(&shape), |i| (100 * i[0] + 10 * i[1] + i[2]) as f64);
        let mut data = Vec::new();
        for k in 0..5 {
            for j in 0..4 {
                for i in 0..3 {
                    data.extend_from_slice(&((100 * i + 10 * j + k) as f64).to_le_bytes());
                }
            }
        }
        let dict = "{'descr': '<f8', 'fortran_order': True, 'shape': (3, 4, 5), }";
        let path = write_file(dir.path(), "f.npy", &hand_built(dict, &data));
        let h = read_header(&path).unwrap();
        assert!(h.fortran_order);
        let expected = ArrayData::F64(expected);
        let mut cases = boxes(&shape);
        cases.push((vec![0, 0, 2], vec![3, 4, 3]));
        cases.push((vec![1, 0, 0], vec![2, 4, 5]));
        for (o, s) in cases {
            let got = read_region(&path, &h, &o, &s).unwrap();
            let ArrayData::F64(a) = &got else {
                panic!("{got:?}")
            };
            assert!(a.is_standard_layout());
            assert_eq!(got, slice(&expected, &o, &s), "at {o:?} {s:?}");
        }
    }

    #[test]
    fn reads_other_byte_orders_and_widths() {
        use crate::data::Element;
        let dir = tempfile::tempdir().unwrap();
        let check = |descr: &str, data: Vec<u8>, expected: ArrayData| {
            let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (2, 3), }}");
            let path = write_file(dir.path(), "x.npy", &hand_built(&dict, &data));
            let h = read_header(&path).unwrap();
            assert_eq!(h.dtype, expected.dtype(), "{descr}");
            let whole = read_region(&path, &h, &[0, 0], &[2, 3]).unwrap();
            assert_eq!(whole, expected, "{descr}");
            let part = read_region(&path, &h, &[1, 1], &[1, 2]).unwrap();
            assert_eq!(part, slice(&expected, &[1, 1], &[1, 2]), "{descr}");
        };
        fn arr<T: Element>(values: impl IntoIterator<Item = T>) -> ArrayData {
            let v = values.into_iter().collect();
            T::wrap(ArrayD::from_shape_vec(IxDyn(&[2, 3]), v).unwrap())
        }
        fn bytes<const N: usize, T: Copy>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
            v.iter().flat_map(|&x| f(x)).collect()
        }
        let ints = [-3i64, 0, 1, 2, 100, -128];
        let i32s = ints.map(|v| v as i32 * 1_000_000);
        let i16s = ints.map(|v| v as i16 * 100);
        let i8s = ints.map(|v| v as i8);
        let u8s = [0u8, 1, 2, 200, 255, 7];
        let u16s = u8s.map(|v| u16::from(v) * 257);
        let u32s = u8s.map(|v| u32::from(v) << 24);
        let f64s = ints.map(|v| v as f64 / 4.0);
        let f32s = ints.map(|v| v as f32 / 4.0);

        // int32, uint8 and uint64 are read as themselves, in either byte order.
        check("<i4", bytes(&i32s, i32::to_le_bytes), arr(i32s));
        check(">i4", bytes(&i32s, i32::to_be_bytes), arr(i32s));
        let u64s = u8s.map(|v| u64::MAX - u64::from(v));
        check("<u8", bytes(&u64s, u64::to_le_bytes), arr(u64s));
        check(">u8", bytes(&u64s, u64::to_be_bytes), arr(u64s));
        check(">i8", bytes(&ints, i64::to_be_bytes), arr(ints));
        check(
            "<i2",
            bytes(&i16s, i16::to_le_bytes),
            arr(i16s.map(i64::from)),
        );
        check("|i1", bytes(&i8s, i8::to_le_bytes), arr(i8s.map(i64::from)));
        check("|u1", u8s.to_vec(), arr(u8s));
        check(
            "<u2",
            bytes(&u16s, u16::to_le_bytes),
            arr(u16s.map(i64::from)),
        );
        check(
            "<u4",
            bytes(&u32s, u32::to_le_bytes),
            arr(u32s.map(i64::from)),
        );
        check(">f8", bytes(&f64s, f64::to_be_bytes), arr(f64s));
        check(">f4", bytes(&f32s, f32::to_be_bytes), arr(f32s));
        check("<f4", bytes(&f32s, f32::to_le_bytes), arr(f32s));
        // Any nonzero byte is true, as in numpy.
        check("|b1", u8s.to_vec(), arr(u8s.map(|v| v != 0)));
    }

    #[test]
    fn accepts_loose_but_valid_dicts() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = [1.5f64, 2.5].iter().flat_map(|v| v.to_le_bytes()).collect();
        for dict in [
            "{\"shape\":(2,),\"fortran_order\":False,\"descr\":\"<f8\"}",
            "{ 'descr' : '<f8' , 'fortran_order' : True , 'shape' : ( 2L , ) }",
            "{'descr': '=f8', 'fortran_order': False, 'shape': (2,)}",
        ] {
            let path = write_file(dir.path(), "l.npy", &hand_built(dict, &data));
            let h = read_header(&path).unwrap_or_else(|e| panic!("{dict}: {e}"));
            let got = read_region(&path, &h, &[0], &[2]).unwrap();
            assert_eq!(
                got,
                ArrayData::F64(ArrayD::from_shape_vec(IxDyn(&[2]), vec![1.5, 2.5]).unwrap())
            );
        }
        // Version 2.0 with a 32-bit length and an old 16-byte alignment.
        let mut text = b"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }".to_vec();
        while !(12 + text.len() + 1).is_multiple_of(16) {
            text.push(b' ');
        }
        text.push(b'\n');
        let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
        bytes.extend_from_slice(&(text.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&text);
        bytes.extend_from_slice(&data);
        let path = write_file(dir.path(), "v2.npy", &bytes);
        let h = read_header(&path).unwrap();
        assert_eq!(h.data_offset % 16, 0);
        assert_eq!(
            read_region(&path, &h, &[1], &[1]).unwrap().get(&[0]),
            Some(crate::meta::Scalar::F64(2.5))
        );
    }

    #[test]
    fn header_matches_numpy_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.npy");
        NpyWriter::create(&path, DType::F64, &[3, 4])
            .unwrap()
            .finish()
            .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.starts_with(b"\x93NUMPY\x01\x00v\x00"));
        let dict = b"{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }";
        assert_eq!(&bytes[10..10 + dict.len()], dict);
        // numpy.save's exact header for np.zeros((3, 4)).
        let mut expected = b"\x93NUMPY\x01\x00v\x00".to_vec();
        expected.extend_from_slice(dict);
        expected.resize(127, b' ');
        expected.push(b'\n');
        assert_eq!(&bytes[..128], expected.as_slice());
        assert_eq!(bytes.len(), 128 + 96);

        for (dtype, shape, text) in [
            (
                DType::F64,
                &[5][..],
                "'descr': '<f8', 'fortran_order': False, 'shape': (5,), }",
            ),
            (
                DType::Bool,
                &[][..],
                "'descr': '|b1', 'fortran_order': False, 'shape': (), }",
            ),
            (
                DType::I64,
                &[0, 3][..],
                "'descr': '<i8', 'fortran_order': False, 'shape': (0, 3), }",
            ),
            (
                DType::F32,
                &[2, 2][..],
                "'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }",
            ),
        ] {
            let h = header_bytes(dtype, shape).unwrap();
            assert_eq!(&h[11..11 + text.len()], text.as_bytes());
            assert_eq!(h.len() % 64, 0);
            assert_eq!(*h.last().unwrap(), b'\n');
        }
        let h = NpyWriter::create(&path, DType::F64, &[5]).unwrap();
        h.finish().unwrap();
        let header = read_header(&path).unwrap();
        assert_eq!(header.data_offset, 128);
    }

    #[test]
    fn long_headers_use_version_2() {
        let shape = vec![1usize; 30000];
        let h = header_bytes(DType::F64, &shape).unwrap();
        assert_eq!(&h[..8], b"\x93NUMPY\x02\x00");
        assert_eq!(h.len() % 64, 0);
        let (start, len) = parse_prefix(&h[..12]).unwrap();
        assert_eq!(start as u64 + len, h.len() as u64);
        let parsed = parse_dict(&h[start..], h.len() as u64, h.len() as u64 + 8).unwrap();
        assert_eq!(parsed.shape, shape);
    }

    fn err_text(r: Result<impl std::fmt::Debug>) -> String {
        r.expect_err("expected an error").to_string()
    }

    #[test]
    fn malformed_files_give_errors_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let data = [0u8; 48];
        let good = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";
        let mut bad_magic = hand_built(good, &data);
        bad_magic[1] = b'X';
        let mut truncated = hand_built(good, &data);
        truncated.truncate(truncated.len() - 1);
        let mut v4 = hand_built(good, &data);
        v4[6] = 4;
        let with = |from: &str, to: &str| hand_built(&good.replace(from, to), &data);
        let deep = format!("{}{}", "(".repeat(5000), ")".repeat(5000));
        let huge = format!("({},)", "9".repeat(60));
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("bad magic", bad_magic, "magic"),
            ("empty", vec![], "magic"),
            ("short", b"\x93NUMPY\x01".to_vec(), "version"),
            ("version", v4, "version 4.0"),
            ("truncated", truncated, "truncated"),
            ("unknown descr", with("<f8", "<c8"), "'<c8'"),
            ("f2", with("<f8", "<f2"), "float16"),
            ("orderless", with("<f8", "|f8"), "byte order"),
            ("structured", with("'<f8'", "[('a', '<f8')]"), "structured"),
            ("no shape", with(", 'shape': (2, 3), ", ""), "'shape'"),
            ("extra key", with("}", "'x': 1}"), "'x'"),
            ("not a tuple", with("(2, 3)", "(6)"), "tuple"),
            ("negative", with("(2, 3)", "(-2, 3)"), "negative"),
            (
                "overflow",
                with("(2, 3)", "(4294967296, 4294967296, 4294967296)"),
                "too large",
            ),
            ("huge int", with("(2, 3)", &huge), "too large"),
            ("nesting", with("(2, 3)", &deep), "deeply"),
            ("garbage", with(", 'fortran", " 'fortran"), "malformed"),
            ("unterminated", with(good, "{'descr': '<f8"), "unterminated"),
            ("trailing", with("}", "} x"), "padding"),
            ("fortran", with("False", "0"), "fortran_order"),
            (
                "long header",
                b"\x93NUMPY\x02\x00\xff\xff\xff\x7f{}".to_vec(),
                "allowed",
            ),
            (
                "past the end",
                b"\x93NUMPY\x02\x00\xff\xff\x00\x00{}".to_vec(),
                "only 14 bytes",
            ),
        ];
        for (name, bytes, needle) in cases {
            let path = write_file(
                dir.path(),
                &format!("{}.npy", name.replace(' ', "_")),
                &bytes,
            );
            let msg = err_text(read_header(&path));
            assert!(msg.contains(needle), "{name}: {msg}");
            assert!(msg.contains(path.to_str().unwrap()), "{name}: {msg}");
        }

        let path = write_file(dir.path(), "ok.npy", &hand_built(good, &data));
        let h = read_header(&path).unwrap();
        for (o, s, needle) in [
            (&[0, 0][..], &[3, 1][..], "outside"),
            (&[1, 3][..], &[1, 1][..], "outside"),
            (&[usize::MAX, 0][..], &[2, 1][..], "outside"),
            (&[0][..], &[1][..], "2-d"),
        ] {
            let msg = err_text(read_region(&path, &h, o, s));
            assert!(msg.contains(needle) && msg.contains("ok.npy"), "{msg}");
        }
        // Truncated after the header was read.
        std::fs::write(&path, hand_built(good, &data[..20])).unwrap();
        let msg = err_text(read_region(&path, &h, &[0, 0], &[2, 3]));
        assert!(msg.contains("truncated") && msg.contains("ok.npy"), "{msg}");

        let missing = dir.path().join("missing.npy");
        assert!(err_text(read_header(&missing)).contains("missing.npy"));
    }

    #[test]
    fn writer_rejects_bad_regions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.npy");
        let w = NpyWriter::create(&path, DType::F32, &[4, 4]).unwrap();
        let block = sample(DType::F32, &[2, 2]);
        for (o, data, needle) in [
            (&[3, 0][..], block.clone(), "outside"),
            (&[0][..], block.clone(), "2-d"),
            (&[0, 0][..], sample(DType::F64, &[2, 2]), "float64"),
            (&[0, 0][..], sample(DType::F32, &[2]), "2-d"),
        ] {
            let msg = err_text(w.write_region(o, &data));
            assert!(msg.contains(needle) && msg.contains("w.npy"), "{msg}");
        }
        let msg = err_text(NpyWriter::create(&path, DType::F64, &[usize::MAX, 2]));
        assert!(msg.contains("too large") && msg.contains("w.npy"), "{msg}");
        let msg = err_text(NpyWriter::create(
            &dir.path().join("no/such/dir.npy"),
            DType::F64,
            &[1],
        ));
        assert!(msg.contains("dir.npy"), "{msg}");
    }

    /// Every single-byte change and every truncation of a valid header must give a result, not a panic.
    #[test]
    fn header_parser_survives_mutations() {
        let good = hand_built(
            "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }",
            &[0u8; 24],
        );
        let parse = |bytes: &[u8]| -> Result<NpyHeader, String> {
            let (start, len) = parse_prefix(&bytes[..bytes.len().min(12)])?;
            let end = (start as u64)
                .checked_add(len)
                .filter(|&e| e <= bytes.len() as u64)
                .ok_or("short")?;
            parse_dict(&bytes[start..end as usize], end, bytes.len() as u64)
        };
        assert!(parse(&good).is_ok());
        for cut in 0..good.len() {
            let _ = parse(&good[..cut]);
        }
        for i in 0..90 {
            for b in [
                0u8, b' ', b'\'', b'(', b')', b',', b'{', b'}', b'-', b'9', b'L', b'\n', 0x93, 0xff,
            ] {
                let mut m = good.clone();
                m[i] = b;
                let _ = parse(&m);
            }
        }
    }
}
