//! Lookups of every element of one array in a sorted table built from a second, 1-D or any-shape
//! array: [`SearchSortedOp`] (numpy's `searchsorted`, and `digitize` through it) and [`IsInOp`]
//! (numpy's `isin`). Each output block reads its own block of the first input and every block of
//! the second (the table is gathered whole per output block: meant for tables far smaller than the
//! searched array, as bins and test sets are). Output chunks are the first input's.
//!
//! Order is numpy's sort order ([`SortKey`]): NaN after every number, `-0.0 == 0.0`. The builder
//! casts both inputs to one dtype first.

use std::sync::Arc;

use ndarray::ArrayD;

use crate::data::{ArrayData, ChunkValue};
use crate::error::{Error, Result};
use crate::graph::{ArrayMeta, Block};
use crate::kernels::sort::{SortKey, is_nan, search};
use crate::meta::DType;
use crate::ops::{Derived, Holds, InputMeta, RuleResult};

/// numpy's `searchsorted(a, v, side)`: inputs `[v, a]` with `a` 1-D and sorted; int64 output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SearchSortedOp {
    /// `side="right"`: the index after the last element equal to `v`.
    pub right: bool,
}

/// numpy's `isin(element, test_elements, invert)`: inputs `[element, test]`; bool output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IsInOp {
    pub invert: bool,
}

/// The checks both lookups share: two array inputs of one sortable dtype.
fn two_inputs<'b, 'a>(
    inputs: &'b [InputMeta<'a>],
    op: &str,
) -> RuleResult<(&'b InputMeta<'a>, &'b InputMeta<'a>)> {
    let [x, table] = inputs else {
        return Err(format!(
            "{op} reads two inputs, this layer has {}",
            inputs.len()
        ));
    };
    for i in [x, table] {
        if i.holds != Holds::Array {
            return Err(format!("its input {} holds no array chunks", i.id));
        }
    }
    if x.meta.dtype != table.meta.dtype {
        return Err(format!(
            "{op} reads two inputs of one dtype, not {} ({}) and {} ({})",
            x.meta.dtype, x.id, table.meta.dtype, table.id
        ));
    }
    Ok((x, table))
}

/// The input block first, then every block of the table.
fn lookup_deps(inputs: &[&ArrayMeta], block: &[u32], out: &mut Vec<(usize, Block)>) {
    out.push((0, Block::from_slice(block)));
    let table = &inputs[1].chunks;
    let n = table.num_chunks();
    let grid = table.numblocks();
    for flat in 0..n {
        // Row-major block index of the table.
        let mut b = Block::from_elem(0, grid.len());
        let mut rest = flat;
        for a in (0..grid.len()).rev() {
            b[a] = (rest % grid[a]) as u32;
            rest /= grid[a];
        }
        out.push((1, b));
    }
}

/// The block to look up, and the table's keys in block order.
fn split_deps<'a>(
    op: &'static str,
    deps: &'a [Arc<ChunkValue>],
) -> Result<(&'a ArrayData, Vec<&'a ArrayData>)> {
    let (first, rest) = deps.split_first().ok_or(Error::InvalidArgument {
        op,
        reason: "reads its own block and the table".into(),
    })?;
    let rest = rest.iter().map(|d| d.as_array()).collect::<Result<_>>()?;
    Ok((first.as_array()?, rest))
}

fn keys_of<T: SortKey>(table: &[&ArrayData]) -> Result<Vec<u64>> {
    let mut keys = Vec::new();
    for t in table {
        let t = T::view(t).ok_or(Error::DTypeMismatch {
            expected: T::DTYPE,
            actual: t.dtype(),
        })?;
        keys.extend(t.iter().map(|v| v.key()));
    }
    Ok(keys)
}

impl SearchSortedOp {
    /// The searched values' chunks; int64; the table 1-D.
    pub(crate) fn output_meta(&self, inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
        let (v, a) = two_inputs(inputs, "searchsorted")?;
        if a.meta.ndim() != 1 {
            return Err(format!(
                "searches a 1-D sorted array, but {} has rank {}",
                a.id,
                a.meta.ndim()
            ));
        }
        Ok(Derived::new(
            v.meta.chunks.clone(),
            DType::I64,
            "keeping its values' chunks",
            "int64 indices",
        ))
    }

    pub(crate) fn deps(&self, inputs: &[&ArrayMeta], block: &[u32], out: &mut Vec<(usize, Block)>) {
        lookup_deps(inputs, block, out)
    }

    pub(crate) fn run(&self, deps: &[Arc<ChunkValue>]) -> Result<ChunkValue> {
        let (v, table) = split_deps("searchsorted", deps)?;
        let out = crate::with_real_array!(v, x => self.lookup(x, &table)?, complex => return Err(Error::UnsupportedDType { op: "searchsorted", dtype: DType::C128 }));
        Ok(ChunkValue::Array(ArrayData::I64(out)))
    }

    fn lookup<T: SortKey>(&self, v: &ArrayD<T>, table: &[&ArrayData]) -> Result<ArrayD<i64>> {
        let keys = keys_of::<T>(table)?;
        Ok(v.mapv(|x| search(&keys, x.key(), self.right) as i64))
    }
}

impl IsInOp {
    /// The elements' chunks; bool.
    pub(crate) fn output_meta(&self, inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
        let (x, _) = two_inputs(inputs, "isin")?;
        Ok(Derived::new(
            x.meta.chunks.clone(),
            DType::Bool,
            "keeping its elements' chunks",
            "bool",
        ))
    }

    pub(crate) fn deps(&self, inputs: &[&ArrayMeta], block: &[u32], out: &mut Vec<(usize, Block)>) {
        lookup_deps(inputs, block, out)
    }

    pub(crate) fn run(&self, deps: &[Arc<ChunkValue>]) -> Result<ChunkValue> {
        let (x, table) = split_deps("isin", deps)?;
        let out = crate::with_real_array!(x, a => self.lookup(a, &table)?, complex => return Err(Error::UnsupportedDType { op: "isin", dtype: DType::C128 }));
        Ok(ChunkValue::Array(ArrayData::Bool(out)))
    }

    fn lookup<T: SortKey>(&self, x: &ArrayD<T>, table: &[&ArrayData]) -> Result<ArrayD<bool>> {
        let mut keys = keys_of::<T>(table)?;
        keys.sort_unstable();
        keys.dedup();
        // NaN equals nothing, itself included (numpy compares with ==).
        Ok(x.mapv(|v| {
            let found = !is_nan(v) && keys.binary_search(&v.key()).is_ok();
            found != self.invert
        }))
    }
}
