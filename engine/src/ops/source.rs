//! Sources that read existing data rather than generate it: an in-memory ndarray (`from_array`), a
//! `.npy` file read chunk by chunk, and chunks kept by `persist`.

use std::path::PathBuf;
use std::sync::Arc;

use ndarray::Slice;

use crate::data::{ArrayData, ChunkValue};
use crate::error::Result;
use crate::graph::{ArrayMeta, Tokenizer};
use crate::io::npy::{self, NpyHeader};
use crate::map_array;

/// An in-memory array cut into chunks.
#[derive(Clone, Debug)]
pub struct FromArray {
    pub data: Arc<ArrayData>,
    /// Token of the contents, computed once when the array is wrapped.
    pub content_token: u64,
}

impl FromArray {
    pub fn new(data: ArrayData) -> Self {
        let data = data.into_standard_layout();
        let mut t = Tokenizer::new("array-contents");
        t.dtype(data.dtype());
        t.usizes(data.shape());
        match &data {
            ArrayData::Bool(a) => {
                let bytes: Vec<u8> = a.iter().map(|&b| b as u8).collect();
                t.bulk(&bytes)
            }
            ArrayData::I64(a) => t.bulk(&bytes_of(a.as_slice().expect("standard layout"))),
            ArrayData::F32(a) => t.bulk(&bytes_of(a.as_slice().expect("standard layout"))),
            ArrayData::F64(a) => t.bulk(&bytes_of(a.as_slice().expect("standard layout"))),
        }
        FromArray {
            content_token: t.finish(),
            data: Arc::new(data),
        }
    }

    pub(crate) fn tokenize(&self, t: &mut Tokenizer) {
        t.u64(self.content_token);
    }

    pub(crate) fn run(&self, meta: &ArrayMeta, block: &[u32]) -> ChunkValue {
        let offset = meta.chunks.block_offset(block);
        let shape = meta.chunks.block_shape(block);
        ChunkValue::Array(slice_box(&self.data, &offset, &shape))
    }
}

/// Copies the box at `offset` with extent `shape` out of `data`.
pub(crate) fn slice_box(data: &ArrayData, offset: &[usize], shape: &[usize]) -> ArrayData {
    map_array!(data, a => {
        a.slice_each_axis(|ax| {
            let i = ax.axis.index();
            Slice::from(offset[i]..offset[i] + shape[i])
        })
        .to_owned()
    })
}

fn bytes_of<T: Copy + ToLeBytes>(v: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(std::mem::size_of_val(v));
    for x in v {
        x.extend_le(&mut out);
    }
    out
}

trait ToLeBytes {
    fn extend_le(&self, out: &mut Vec<u8>);
}
impl ToLeBytes for i64 {
    fn extend_le(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes())
    }
}
impl ToLeBytes for f64 {
    fn extend_le(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes())
    }
}
impl ToLeBytes for f32 {
    fn extend_le(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes())
    }
}

/// A `.npy` file read lazily: each chunk task reads only its own box.
#[derive(Clone, Debug)]
pub struct NpySource {
    pub path: PathBuf,
    pub header: NpyHeader,
    /// Modification time and length when opened, so a rewritten file is a different array.
    pub stamp: (u64, u64),
}

impl NpySource {
    pub(crate) fn tokenize(&self, t: &mut Tokenizer) {
        t.str(&self.path.to_string_lossy());
        t.u64(self.stamp.0);
        t.u64(self.stamp.1);
        t.u64(self.header.fortran_order as u64);
        t.u64(self.header.data_offset);
    }

    pub(crate) fn run(&self, meta: &ArrayMeta, block: &[u32]) -> Result<ChunkValue> {
        let offset = meta.chunks.block_offset(block);
        let shape = meta.chunks.block_shape(block);
        Ok(ChunkValue::Array(npy::read_region(
            &self.path,
            &self.header,
            &offset,
            &shape,
        )?))
    }
}

/// Chunks computed and kept in memory, in C order of their block indices.
#[derive(Clone, Debug)]
pub struct Materialized {
    pub chunks: Arc<Vec<Arc<ChunkValue>>>,
    pub token: u64,
}

impl Materialized {
    pub(crate) fn tokenize(&self, t: &mut Tokenizer) {
        t.u64(self.token);
    }

    pub(crate) fn get(&self, meta: &ArrayMeta, block: &[u32]) -> Arc<ChunkValue> {
        let nb = meta.chunks.numblocks();
        let flat = block
            .iter()
            .zip(&nb)
            .fold(0usize, |acc, (&b, &n)| acc * n + b as usize);
        self.chunks[flat].clone()
    }
}
