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
use crate::meta::block_indices;
use crate::ops::{Derived, InputMeta, RuleResult, chosen, no_inputs};

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
            ArrayData::I32(a) => t.bulk(&bytes_of(a.as_slice().expect("standard layout"))),
            ArrayData::U8(a) => t.bulk(a.as_slice().expect("standard layout")),
            ArrayData::U64(a) => t.bulk(&bytes_of(a.as_slice().expect("standard layout"))),
            ArrayData::F32(a) => t.bulk(&bytes_of(a.as_slice().expect("standard layout"))),
            ArrayData::F64(a) => t.bulk(&bytes_of(a.as_slice().expect("standard layout"))),
            ArrayData::C128(a) => {
                let parts: Vec<f64> = a.iter().flat_map(|v| [v.re, v.im]).collect();
                t.bulk(&bytes_of(&parts))
            }
        }
        FromArray {
            content_token: t.finish(),
            data: Arc::new(data),
        }
    }

    pub(crate) fn tokenize(&self, t: &mut Tokenizer) {
        t.u64(self.content_token);
    }

    /// The data's shape and dtype, cut by the grid the caller chose.
    pub(crate) fn output_meta(
        &self,
        inputs: &[InputMeta<'_>],
        chosen_meta: Option<&ArrayMeta>,
    ) -> RuleResult<Derived> {
        no_inputs(inputs, "from_array")?;
        let grid = &chosen(chosen_meta, "from_array")?.chunks;
        if self.data.shape() != grid.shape().as_slice() {
            return Err(format!(
                "holds a {} array of shape {:?}, but the layer's grid {grid} has shape {:?}",
                self.data.dtype(),
                self.data.shape(),
                grid.shape()
            ));
        }
        Ok(Derived::new(
            grid.clone(),
            self.data.dtype(),
            "the chosen grid",
            "the data it holds",
        ))
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
impl ToLeBytes for i32 {
    fn extend_le(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes())
    }
}
impl ToLeBytes for u64 {
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

    /// The file's shape and dtype, cut by the grid the caller chose.
    pub(crate) fn output_meta(
        &self,
        inputs: &[InputMeta<'_>],
        chosen_meta: Option<&ArrayMeta>,
    ) -> RuleResult<Derived> {
        no_inputs(inputs, "from_npy")?;
        let grid = &chosen(chosen_meta, "from_npy")?.chunks;
        if self.header.shape != grid.shape() {
            return Err(format!(
                "reads {} holding {} of shape {:?}, but the layer's grid {grid} has shape {:?}",
                self.path.display(),
                self.header.dtype,
                self.header.shape,
                grid.shape()
            ));
        }
        Ok(Derived::new(
            grid.clone(),
            self.header.dtype,
            "the chosen grid",
            "the file's header",
        ))
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

    /// The grid and dtype the caller chose, which every kept chunk must fit.
    pub(crate) fn output_meta(
        &self,
        inputs: &[InputMeta<'_>],
        chosen_meta: Option<&ArrayMeta>,
    ) -> RuleResult<Derived> {
        no_inputs(inputs, "persist")?;
        let meta = chosen(chosen_meta, "persist")?;
        let n = meta.chunks.num_chunks();
        if self.chunks.len() != n {
            return Err(format!(
                "keeps {} chunks, but its grid {} has {n}",
                self.chunks.len(),
                meta.chunks
            ));
        }
        for (chunk, block) in self
            .chunks
            .iter()
            .zip(block_indices(&meta.chunks.numblocks()))
        {
            let want = meta.chunks.block_shape(&block);
            match chunk.as_array() {
                Ok(a) if a.shape() == want.as_slice() && a.dtype() == meta.dtype => {}
                Ok(a) => {
                    return Err(format!(
                        "kept chunk {block:?} is {} of shape {:?}, expected {} of shape {want:?}",
                        a.dtype(),
                        a.shape(),
                        meta.dtype
                    ));
                }
                Err(_) => {
                    return Err(format!(
                        "kept chunk {block:?} is a {} partial, not array data",
                        chunk.kind()
                    ));
                }
            }
        }
        Ok(Derived::new(
            meta.chunks.clone(),
            meta.dtype,
            "the chosen grid",
            "the kept chunks",
        ))
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
