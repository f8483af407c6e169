//! Zarr stores (v3, and v2 for reading) read and written by region through the `zarrs` crate. This
//! module owns what tessera needs from a store: where it is ([`ZarrStore`], a directory or an
//! `s3://bucket/prefix` URL), an array's description that travels with a graph and opens the array on
//! whichever machine runs a task ([`ZarrArrayRef`]: store, node path and the metadata as JSON, so no
//! task reads the metadata again and the scheduler never touches the store), the mapping of Zarr data
//! types to tessera's dtypes, creating or overwriting an array from [`ZarrOptions`] (chunk shape,
//! codec, sharding), and reading or writing a box one store chunk at a time so that every error names
//! the store, the array and the chunk's key.
//!
//! A store chunk is never written by two tasks: the writers (`ops::zarr`) only accept an input whose
//! chunk boundaries fall on store chunk (shard) boundaries, and `Array::to_zarr` rechunks to the
//! store's chunks first when they do not. A missing chunk reads as the fill value, as Zarr specifies.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use ndarray::{ArrayD, IxDyn, Slice};
use zarrs::array::codec::{BloscCodec, GzipCodec, ZstdCodec};
use zarrs::array::data_type::{
    BoolDataType, Float32DataType, Float64DataType, Int32DataType, Int64DataType, UInt8DataType,
    UInt64DataType,
};
use zarrs::array::{
    ArrayBuilder, ArrayMetadata, ArraySubset, BytesToBytesCodecTraits, DataType, ElementOwned,
    FillValueMetadata, data_type,
};
use zarrs::storage::{
    ReadableWritableListableStorage, ReadableWritableListableStorageTraits, StorePrefix,
    WritableStorageTraits,
};

use crate::data::ArrayData;
use crate::error::{Error, Result, display_chain};
use crate::meta::{DType, Scalar};

type ZArray = zarrs::array::Array<dyn ReadableWritableListableStorageTraits>;

/// Where a Zarr store lives: a local directory (a path all workers see, on a cluster) or an object
/// store URL `s3://bucket/prefix` (endpoint, region and credentials from the usual `AWS_*`
/// environment variables; needs the `s3` feature).
///
/// Built from a `&str`, `String`, `&Path` or `PathBuf`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ZarrStore(String);

impl ZarrStore {
    /// The path or URL as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is an `s3://` URL rather than a local directory.
    pub fn is_s3(&self) -> bool {
        self.0.starts_with("s3://")
    }
}

impl fmt::Display for ZarrStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ZarrStore {
    fn from(s: &str) -> Self {
        ZarrStore(s.to_string())
    }
}
impl From<String> for ZarrStore {
    fn from(s: String) -> Self {
        ZarrStore(s)
    }
}
impl From<&String> for ZarrStore {
    fn from(s: &String) -> Self {
        ZarrStore(s.clone())
    }
}
impl From<&Path> for ZarrStore {
    fn from(p: &Path) -> Self {
        ZarrStore(p.to_string_lossy().into_owned())
    }
}
impl From<PathBuf> for ZarrStore {
    fn from(p: PathBuf) -> Self {
        ZarrStore::from(p.as_path())
    }
}
impl From<&PathBuf> for ZarrStore {
    fn from(p: &PathBuf) -> Self {
        ZarrStore::from(p.as_path())
    }
}

pub(crate) fn zarr_err(store: &ZarrStore, reason: impl Into<String>) -> Error {
    Error::Zarr {
        store: store.0.clone(),
        reason: reason.into(),
    }
}

/// Opened stores, one per path or URL per process: an object-store client (its connection pool and
/// credentials) is made once, not once per chunk task.
fn storage(store: &ZarrStore) -> Result<ReadableWritableListableStorage> {
    static STORES: OnceLock<Mutex<HashMap<ZarrStore, ReadableWritableListableStorage>>> =
        OnceLock::new();
    let stores = STORES.get_or_init(Default::default);
    if let Some(s) = stores.lock().expect("zarr stores").get(store) {
        return Ok(s.clone());
    }
    let opened = open_storage(store)?;
    stores
        .lock()
        .expect("zarr stores")
        .insert(store.clone(), opened.clone());
    Ok(opened)
}

fn open_storage(store: &ZarrStore) -> Result<ReadableWritableListableStorage> {
    if store.is_s3() {
        #[cfg(feature = "s3")]
        return super::zarr_s3::open(store);
        #[cfg(not(feature = "s3"))]
        return Err(zarr_err(
            store,
            "s3:// stores need tessera's `s3` cargo feature, which this build does not have",
        ));
    }
    let fs = zarrs::filesystem::FilesystemStore::new(&store.0)
        .map_err(|e| zarr_err(store, display_chain(&e)))?;
    Ok(Arc::new(fs))
}

/// A Zarr array as a graph carries it: where it is and its metadata (JSON), from which its dtype,
/// shape and chunk grid follow without touching the store. The store itself is opened on first use,
/// once per process.
#[derive(Clone)]
pub struct ZarrArrayRef {
    /// The store holding the array.
    pub store: ZarrStore,
    /// The array's node path in the store, `/` for an array at the store's root.
    pub path: String,
    /// The array's metadata (`zarr.json`, or `.zarray` for v2) as JSON.
    pub metadata: Arc<str>,
    /// The array's element type.
    pub dtype: DType,
    /// The array's shape, in elements per axis.
    pub shape: Vec<usize>,
    /// The store's chunk (shard) sizes along each axis, the last of each axis cut at the array's end.
    pub grid: Vec<Vec<usize>>,
    /// The array decoded from `metadata`, on a placeholder store until `opened` is filled.
    decoded: Arc<ZArray>,
    opened: Arc<Mutex<Option<Arc<ZArray>>>>,
}

impl fmt::Debug for ZarrArrayRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZarrArrayRef")
            .field("store", &self.store)
            .field("path", &self.path)
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .finish_non_exhaustive()
    }
}

/// tessera's dtype for a Zarr data type, or why there is none.
fn dtype_of(dt: &DataType) -> std::result::Result<DType, String> {
    if dt.is::<Float64DataType>() {
        Ok(DType::F64)
    } else if dt.is::<Float32DataType>() {
        Ok(DType::F32)
    } else if dt.is::<Int64DataType>() {
        Ok(DType::I64)
    } else if dt.is::<Int32DataType>() {
        Ok(DType::I32)
    } else if dt.is::<UInt8DataType>() {
        Ok(DType::U8)
    } else if dt.is::<UInt64DataType>() {
        Ok(DType::U64)
    } else if dt.is::<BoolDataType>() {
        Ok(DType::Bool)
    } else {
        Err(format!(
            "its data type {dt} is not supported (tessera reads float64, float32, int64, int32, \
             uint8, uint64 and bool)"
        ))
    }
}

fn zarr_data_type(dtype: DType) -> DataType {
    match dtype {
        DType::F64 => data_type::float64(),
        DType::F32 => data_type::float32(),
        DType::I64 => data_type::int64(),
        DType::I32 => data_type::int32(),
        DType::U8 => data_type::uint8(),
        DType::U64 => data_type::uint64(),
        DType::Bool => data_type::bool(),
        DType::C128 => data_type::complex128(),
    }
}

impl ZarrArrayRef {
    /// Reads the metadata of the array at node `path` of `store`.
    pub fn open(store: &ZarrStore, path: &str) -> Result<Self> {
        let path = &node_path(path);
        if !store.is_s3() && !Path::new(&store.0).is_dir() {
            return Err(zarr_err(
                store,
                "no Zarr store there: the directory does not exist",
            ));
        }
        let storage = storage(store)?;
        let array = ZArray::open(storage, path).map_err(|e| {
            let why = match e {
                zarrs::array::ArrayCreateError::MissingMetadata => {
                    "no array metadata (zarr.json or .zarray)".to_string()
                }
                e => display_chain(&e),
            };
            zarr_err(store, format!("array {path}: {why}"))
        })?;
        let json = serde_json::to_string(array.metadata())
            .map_err(|e| zarr_err(store, format!("array {path}: {e}")))?;
        let array = Arc::new(array);
        let r = Self::describe(store, path, json.into(), array.clone())?;
        *r.opened.lock().expect("zarr array") = Some(array);
        Ok(r)
    }

    /// The array described by `metadata` (JSON), without touching the store: what a graph received
    /// from another process carries.
    pub fn from_metadata(store: &ZarrStore, path: &str, metadata: &str) -> Result<Self> {
        let path = &node_path(path);
        let parsed: ArrayMetadata = serde_json::from_str(metadata)
            .map_err(|e| zarr_err(store, format!("array {path}: unreadable metadata: {e}")))?;
        let placeholder: ReadableWritableListableStorage =
            Arc::new(zarrs::storage::store::MemoryStore::new());
        let array = ZArray::new_with_metadata(placeholder, path, parsed)
            .map_err(|e| zarr_err(store, format!("array {path}: {}", display_chain(&e))))?;
        Self::describe(store, path, metadata.into(), Arc::new(array))
    }

    fn describe(
        store: &ZarrStore,
        path: &str,
        metadata: Arc<str>,
        array: Arc<ZArray>,
    ) -> Result<Self> {
        let at = |reason: String| zarr_err(store, format!("array {path}: {reason}"));
        let dtype = dtype_of(array.data_type()).map_err(at)?;
        let shape = array
            .shape()
            .iter()
            .map(|&n| usize::try_from(n).map_err(|_| at(format!("dimension {n} is too large"))))
            .collect::<Result<Vec<_>>>()?;
        let grid_shape = array.chunk_grid_shape().to_vec();
        let mut grid = Vec::with_capacity(shape.len());
        for (axis, &len) in shape.iter().enumerate() {
            if len == 0 {
                grid.push(vec![0]);
                continue;
            }
            let mut sizes = Vec::with_capacity(grid_shape[axis] as usize);
            for i in 0..grid_shape[axis] {
                let mut idx = vec![0u64; shape.len()];
                idx[axis] = i;
                let sub = array
                    .chunk_subset_bounded(&idx)
                    .map_err(|e| at(display_chain(&e)))?;
                sizes.push(sub.shape()[axis] as usize);
            }
            grid.push(sizes);
        }
        Ok(ZarrArrayRef {
            store: store.clone(),
            path: path.to_string(),
            metadata,
            dtype,
            shape,
            grid,
            decoded: array,
            opened: Arc::new(Mutex::new(None)),
        })
    }

    /// Creates the array at node `path` of `store` (deleting whatever was there), with the dtype and
    /// shape given and the chunking, codec and fill value of `options`, and writes its metadata.
    pub fn create(
        store: &ZarrStore,
        path: &str,
        dtype: DType,
        shape: &[usize],
        chunks: &[usize],
        options: &ZarrOptions,
    ) -> Result<Self> {
        let path = &node_path(path);
        let at = |reason: String| zarr_err(store, format!("array {path}: {reason}"));
        if dtype.is_complex() {
            return Err(at(format!(
                "{dtype} arrays cannot be stored in Zarr here yet"
            )));
        }
        if !store.is_s3() {
            std::fs::create_dir_all(&store.0).map_err(|e| {
                zarr_err(store, format!("cannot create the store's directory: {e}"))
            })?;
        }
        let storage = storage(store)?;
        let shape64: Vec<u64> = shape.iter().map(|&n| n as u64).collect();
        let inner: Vec<u64> = chunks.iter().map(|&n| n.max(1) as u64).collect();
        let outer: Vec<u64> = match &options.shards {
            Some(s) => s.iter().map(|&n| n as u64).collect(),
            None => inner.clone(),
        };
        if outer.len() != shape.len() || inner.len() != shape.len() {
            return Err(at(format!(
                "chunks {chunks:?} and shards {:?} must have one entry per axis of the {}-d array",
                options.shards.as_deref().unwrap_or(chunks),
                shape.len()
            )));
        }
        if let Some((a, (o, i))) = outer
            .iter()
            .zip(&inner)
            .enumerate()
            .find(|(_, (o, i))| **o == 0 || **o % **i != 0)
        {
            return Err(at(format!(
                "shard size {o} along axis {a} is not a positive multiple of the chunk size {i}"
            )));
        }
        let fill = options.fill_value.unwrap_or(Scalar::I64(0)).cast(dtype);
        let mut builder = match fill {
            Scalar::F64(v) => ArrayBuilder::new(shape64, outer.clone(), zarr_data_type(dtype), v),
            Scalar::F32(v) => ArrayBuilder::new(shape64, outer.clone(), zarr_data_type(dtype), v),
            Scalar::I64(v) => ArrayBuilder::new(shape64, outer.clone(), zarr_data_type(dtype), v),
            Scalar::I32(v) => ArrayBuilder::new(shape64, outer.clone(), zarr_data_type(dtype), v),
            Scalar::U8(v) => ArrayBuilder::new(shape64, outer.clone(), zarr_data_type(dtype), v),
            Scalar::U64(v) => ArrayBuilder::new(shape64, outer.clone(), zarr_data_type(dtype), v),
            Scalar::Bool(v) => ArrayBuilder::new(
                shape64,
                outer.clone(),
                zarr_data_type(dtype),
                FillValueMetadata::Bool(v),
            ),
            Scalar::C128(_) => return Err(at(format!("{dtype} fill values are not supported"))),
        };
        builder.bytes_to_bytes_codecs(options.codec.build(dtype).map_err(at)?);
        if options.shards.is_some() {
            builder.subchunk_shape(inner);
        }
        let array = builder
            .build(storage.clone(), path)
            .map_err(|e| at(display_chain(&e)))?;
        // Overwrite: remove the node's old chunks and metadata (v2 or v3) first.
        let prefix = node_prefix(path).map_err(at)?;
        storage.erase_prefix(&prefix).map_err(|e| {
            at(format!(
                "cannot clear the old contents: {}",
                display_chain(&e)
            ))
        })?;
        array
            .store_metadata()
            .map_err(|e| at(format!("cannot write the metadata: {}", display_chain(&e))))?;
        let json = serde_json::to_string(array.metadata()).map_err(|e| at(e.to_string()))?;
        let array = Arc::new(array);
        let r = Self::describe(store, path, json.into(), array.clone())?;
        *r.opened.lock().expect("zarr array") = Some(array);
        Ok(r)
    }

    /// The array on its real store, opened once per process.
    fn array(&self) -> Result<Arc<ZArray>> {
        let mut opened = self.opened.lock().expect("zarr array");
        if let Some(a) = &*opened {
            return Ok(a.clone());
        }
        let a = Arc::new(self.decoded.with_storage(storage(&self.store)?));
        *opened = Some(a.clone());
        Ok(a)
    }

    fn chunk_err(
        &self,
        array: &ZArray,
        idx: &[u64],
        what: &str,
        e: &dyn std::error::Error,
    ) -> Error {
        zarr_err(
            &self.store,
            format!(
                "array {}, chunk {} (key {}): {what}: {}",
                self.path,
                fmt_indices(idx),
                array.chunk_key(idx),
                display_chain(e)
            ),
        )
    }

    /// Reads the box at `offset` with extent `shape`, chunk by chunk (missing chunks read as the fill
    /// value).
    pub fn read_region(&self, offset: &[usize], shape: &[usize]) -> Result<ArrayData> {
        Ok(match self.dtype {
            DType::F64 => ArrayData::F64(self.read_typed(offset, shape)?),
            DType::F32 => ArrayData::F32(self.read_typed(offset, shape)?),
            DType::I64 => ArrayData::I64(self.read_typed(offset, shape)?),
            DType::I32 => ArrayData::I32(self.read_typed(offset, shape)?),
            DType::U8 => ArrayData::U8(self.read_typed(offset, shape)?),
            DType::U64 => ArrayData::U64(self.read_typed(offset, shape)?),
            DType::Bool => ArrayData::Bool(self.read_typed(offset, shape)?),
            // `dtype_of` never opens a complex array; refuse rather than guess a layout.
            DType::C128 => {
                return Err(zarr_err(
                    &self.store,
                    format!("array {}: complex128 is not supported", self.path),
                ));
            }
        })
    }

    fn read_typed<T: ElementOwned + Clone + Default>(
        &self,
        offset: &[usize],
        shape: &[usize],
    ) -> Result<ArrayD<T>> {
        let array = self.array()?;
        let region = subset(offset, shape);
        if shape.contains(&0) {
            return Ok(ArrayD::<T>::default(IxDyn(shape)));
        }
        let chunks = self.chunks_in(&array, &region)?;
        // A region that is one whole store chunk (the usual case: the array's chunks default to the
        // store's) is decoded straight into the result: no zero-filled buffer, no subset copy. Each
        // 8 MB buffer avoided is a round of page faults saved.
        let mut out = None;
        for (idx, inter) in chunks {
            let whole = array
                .chunk_subset(&idx)
                .map_err(|e| self.chunk_err(&array, &idx, "chunk grid", &e))?;
            let start = whole.start().to_vec();
            let part: ArrayD<T> = if inter == whole {
                array.retrieve_chunk(&idx)
            } else {
                let in_chunk = inter
                    .relative_to(&start)
                    .expect("overlap lies in its chunk");
                array.retrieve_chunk_subset(&idx, &in_chunk)
            }
            .map_err(|e| self.chunk_err(&array, &idx, "cannot read", &e))?;
            if inter.shape() == region.shape() {
                return Ok(part);
            }
            let out = out.get_or_insert_with(|| ArrayD::<T>::default(IxDyn(shape)));
            let dst = inter
                .relative_to(region.start())
                .expect("overlap lies in the region");
            out.slice_each_axis_mut(|ax| {
                let i = ax.axis.index();
                let s = dst.start()[i] as usize;
                Slice::from(s..s + dst.shape()[i] as usize)
            })
            .assign(&part);
        }
        Ok(out.unwrap_or_else(|| ArrayD::<T>::default(IxDyn(shape))))
    }

    /// The store chunks meeting `region`, with the part of the region in each.
    fn chunks_in(
        &self,
        array: &ZArray,
        region: &ArraySubset,
    ) -> Result<Vec<(Vec<u64>, ArraySubset)>> {
        let at = |reason: String| {
            zarr_err(
                &self.store,
                format!("array {}: region {region}: {reason}", self.path),
            )
        };
        let chunks = array
            .chunks_in_array_subset(region)
            .map_err(|e| at(e.to_string()))?
            .ok_or_else(|| at("its chunks cannot be determined".into()))?;
        let mut out = Vec::new();
        for idx in chunks.indices() {
            let idx: Vec<u64> = idx.to_vec();
            let bounded = array
                .chunk_subset_bounded(&idx)
                .map_err(|e| self.chunk_err(array, &idx, "chunk grid", &e))?;
            let inter = bounded.overlap(region).map_err(|e| at(e.to_string()))?;
            if !inter.is_empty() {
                out.push((idx, inter));
            }
        }
        Ok(out)
    }

    /// Writes `data` at `offset`: a store chunk it covers within the array's bounds is encoded whole
    /// (padded with the fill value past the array's end); one it covers in part is read, updated and
    /// written back. Returns the number of elements written.
    pub fn write_region(&self, offset: &[usize], data: &ArrayData) -> Result<u64> {
        let array = self.array()?;
        let bytes = array.fill_value().as_ne_bytes();
        let bad_fill = || {
            zarr_err(
                &self.store,
                format!(
                    "array {}: its fill value has {} bytes",
                    self.path,
                    bytes.len()
                ),
            )
        };
        let word = |n: usize| bytes.get(..n).ok_or_else(bad_fill);
        match data {
            ArrayData::F64(a) => {
                let fill = f64::from_ne_bytes(word(8)?.try_into().expect("8 bytes"));
                self.write_typed(&array, offset, a, fill)
            }
            ArrayData::F32(a) => {
                let fill = f32::from_ne_bytes(word(4)?.try_into().expect("4 bytes"));
                self.write_typed(&array, offset, a, fill)
            }
            ArrayData::I64(a) => {
                let fill = i64::from_ne_bytes(word(8)?.try_into().expect("8 bytes"));
                self.write_typed(&array, offset, a, fill)
            }
            ArrayData::I32(a) => {
                let fill = i32::from_ne_bytes(word(4)?.try_into().expect("4 bytes"));
                self.write_typed(&array, offset, a, fill)
            }
            ArrayData::U8(a) => self.write_typed(&array, offset, a, word(1)?[0]),
            ArrayData::U64(a) => {
                let fill = u64::from_ne_bytes(word(8)?.try_into().expect("8 bytes"));
                self.write_typed(&array, offset, a, fill)
            }
            ArrayData::Bool(a) => self.write_typed(&array, offset, a, word(1)?[0] != 0),
            ArrayData::C128(_) => Err(zarr_err(
                &self.store,
                format!("array {}: complex128 is not supported", self.path),
            )),
        }
    }

    fn write_typed<T>(
        &self,
        array: &ZArray,
        offset: &[usize],
        data: &ArrayD<T>,
        fill: T,
    ) -> Result<u64>
    where
        T: zarrs::array::Element + Clone,
    {
        let region = subset(offset, data.shape());
        if data.is_empty() {
            return Ok(0);
        }
        for (idx, inter) in self.chunks_in(array, &region)? {
            let src = inter
                .relative_to(region.start())
                .expect("overlap lies in the region");
            let part = data.slice_each_axis(|ax| {
                let i = ax.axis.index();
                let s = src.start()[i] as usize;
                Slice::from(s..s + src.shape()[i] as usize)
            });
            let full = array
                .chunk_subset(&idx)
                .map_err(|e| self.chunk_err(array, &idx, "chunk grid", &e))?;
            let bounded = array
                .chunk_subset_bounded(&idx)
                .map_err(|e| self.chunk_err(array, &idx, "chunk grid", &e))?;
            let result = if inter == bounded {
                if inter == full {
                    array.store_chunk(&idx, part.as_standard_layout().into_owned())
                } else {
                    // An edge chunk: stored at the full chunk shape, the part past the end filled.
                    let mut padded = ArrayD::from_elem(IxDyn(&full.shape_usize()), fill.clone());
                    padded
                        .slice_each_axis_mut(|ax| Slice::from(0..part.shape()[ax.axis.index()]))
                        .assign(&part);
                    array.store_chunk(&idx, padded)
                }
            } else {
                let in_chunk = inter
                    .relative_to(full.start())
                    .expect("overlap lies in its chunk");
                array.store_chunk_subset(&idx, &in_chunk, part.as_standard_layout().into_owned())
            };
            result.map_err(|e| self.chunk_err(array, &idx, "cannot write", &e))?;
        }
        Ok(data.len() as u64)
    }
}

/// A node path as zarrs takes it: absolute (`group/x` is `/group/x`).
fn node_path(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

/// The store keys under an array node: `path/` (the whole store for the root).
fn node_prefix(path: &str) -> std::result::Result<StorePrefix, String> {
    let trimmed = path.trim_matches('/');
    let prefix = if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}/")
    };
    StorePrefix::new(prefix).map_err(|e| e.to_string())
}

fn subset(offset: &[usize], shape: &[usize]) -> ArraySubset {
    let ranges: Vec<std::ops::Range<u64>> = offset
        .iter()
        .zip(shape)
        .map(|(&o, &n)| o as u64..(o + n) as u64)
        .collect();
    ArraySubset::new_with_ranges(&ranges)
}

fn fmt_indices(idx: &[u64]) -> String {
    let parts: Vec<String> = idx.iter().map(u64::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// Blosc's inner compressors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BloscCompressor {
    /// BloscLZ, Blosc's own compressor.
    BloscLz,
    /// LZ4.
    Lz4,
    /// LZ4HC, LZ4's high-compression mode.
    Lz4hc,
    /// zlib (deflate).
    Zlib,
    /// Zstandard.
    Zstd,
}

/// The compressor of a Zarr array's chunks ([`ZarrOptions::codec`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ZarrCodec {
    /// Chunks stored as raw little-endian bytes.
    None,
    /// Zstandard at a level (1–22; zarr-python's default compressor).
    Zstd {
        /// Compression level, 1–22.
        level: i32,
    },
    /// gzip at a level (0–9).
    Gzip {
        /// Compression level, 0–9.
        level: u32,
    },
    /// Blosc with an inner compressor, a level (0–9) and byte shuffling on or off.
    Blosc {
        /// The inner compressor.
        compressor: BloscCompressor,
        /// Compression level, 0–9.
        level: u8,
        /// Whether bytes are shuffled before compressing.
        shuffle: bool,
    },
}

impl ZarrCodec {
    fn build(
        self,
        dtype: DType,
    ) -> std::result::Result<Vec<Arc<dyn BytesToBytesCodecTraits>>, String> {
        use zarrs::array::codec::{BloscCompressionLevel, BloscCompressor as Z, BloscShuffleMode};
        Ok(match self {
            ZarrCodec::None => vec![],
            ZarrCodec::Zstd { level } => {
                if !(-7..=22).contains(&level) {
                    return Err(format!("zstd level {level} is outside -7..=22"));
                }
                let codec: Arc<dyn BytesToBytesCodecTraits> =
                    Arc::new(ZstdCodec::new(level, false));
                vec![codec]
            }
            ZarrCodec::Gzip { level } => {
                let codec: Arc<dyn BytesToBytesCodecTraits> = Arc::new(
                    GzipCodec::new(level).map_err(|e| format!("gzip level {level}: {e}"))?,
                );
                vec![codec]
            }
            ZarrCodec::Blosc {
                compressor,
                level,
                shuffle,
            } => {
                let cname = match compressor {
                    BloscCompressor::BloscLz => Z::BloscLZ,
                    BloscCompressor::Lz4 => Z::LZ4,
                    BloscCompressor::Lz4hc => Z::LZ4HC,
                    BloscCompressor::Zlib => Z::Zlib,
                    BloscCompressor::Zstd => Z::Zstd,
                };
                let clevel = BloscCompressionLevel::try_from(level)
                    .map_err(|l| format!("blosc level {l} is outside 0..=9"))?;
                let mode = if shuffle {
                    BloscShuffleMode::Shuffle
                } else {
                    BloscShuffleMode::NoShuffle
                };
                let codec = BloscCodec::new(cname, clevel, None, mode, Some(dtype.size()))
                    .map_err(|e| format!("blosc: {e}"))?;
                let codec: Arc<dyn BytesToBytesCodecTraits> = Arc::new(codec);
                vec![codec]
            }
        })
    }
}

/// How [`Array::to_zarr`](crate::Array::to_zarr) writes: the array's node path in the store, the
/// store's chunk shape, sharding, the codec and the fill value — or, with [`ZarrOptions::region`],
/// where in an existing array to write.
///
/// ```
/// use tessera::{ZarrCodec, ZarrOptions};
/// let opts = ZarrOptions::new()
///     .chunks([100, 100])
///     .shards([400, 400])
///     .codec(ZarrCodec::Gzip { level: 5 });
/// # let _ = opts;
/// ```
#[derive(Clone, Debug)]
pub struct ZarrOptions {
    pub(crate) path: String,
    pub(crate) chunks: Option<Vec<usize>>,
    pub(crate) shards: Option<Vec<usize>>,
    pub(crate) codec: ZarrCodec,
    pub(crate) fill_value: Option<Scalar>,
    pub(crate) region: Option<Vec<usize>>,
}

impl Default for ZarrOptions {
    fn default() -> Self {
        ZarrOptions {
            path: "/".into(),
            chunks: None,
            shards: None,
            codec: ZarrCodec::Zstd { level: 3 },
            fill_value: None,
            region: None,
        }
    }
}

impl ZarrOptions {
    /// The defaults: the array at the store's root, the store chunked like the array's first chunk,
    /// no sharding, zstd at level 3, fill value 0, a new array (an existing one is replaced).
    pub fn new() -> Self {
        Self::default()
    }

    /// The array's node path in the store (`"/"`, the default, is the store's root).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// The store's chunk shape (the inner chunk shape when sharded).
    pub fn chunks(mut self, chunks: impl Into<Vec<usize>>) -> Self {
        self.chunks = Some(chunks.into());
        self
    }

    /// Shards of this shape, each a multiple of the chunk shape, each one store object (file).
    pub fn shards(mut self, shards: impl Into<Vec<usize>>) -> Self {
        self.shards = Some(shards.into());
        self
    }

    /// The compressor of the chunks (default: [`ZarrCodec::Zstd`]).
    pub fn codec(mut self, codec: ZarrCodec) -> Self {
        self.codec = codec;
        self
    }

    /// The value of elements never written (and of missing chunks).
    pub fn fill_value(mut self, value: impl Into<Scalar>) -> Self {
        self.fill_value = Some(value.into());
        self
    }

    /// Writes into the existing array at the store's path, at this offset, instead of creating one;
    /// its chunking, codec and fill value are the store's, and the other options are ignored.
    pub fn region(mut self, offset: impl Into<Vec<usize>>) -> Self {
        self.region = Some(offset.into());
        self
    }
}

/// How [`from_zarr_with`](crate::from_zarr_with) reads.
#[derive(Clone, Debug)]
pub struct ZarrReadOptions {
    pub(crate) path: String,
    pub(crate) group: Option<Vec<usize>>,
}

impl Default for ZarrReadOptions {
    fn default() -> Self {
        ZarrReadOptions {
            path: "/".into(),
            group: None,
        }
    }
}

impl ZarrReadOptions {
    /// The defaults: the array at the store's root.
    pub fn new() -> Self {
        Self::default()
    }

    /// The array's node path in the store (`"/"`, the default, is the store's root).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// One task (one chunk of the array) per this many store chunks along each axis, instead of one
    /// per store chunk.
    pub fn group(mut self, group: impl Into<Vec<usize>>) -> Self {
        self.group = Some(group.into());
        self
    }
}
