//! `take_along_axis` (numpy, the Array API): along one axis, the element of the first input at the
//! position the second (an int64 array of indices) holds, the two broadcast against each other on
//! the other axes. This file owns the op's metadata rule, which blocks an output block reads, and
//! the gather.
//!
//! The indices are data, known only when the task runs, so an output block reads its block of
//! indices and every block of the values along the axis in the same lanes (the input may be
//! chunked along the axis, which dask's `take_along_axis` refuses); it concatenates them and
//! gathers. Out-of-range indices are a typed error of the task, naming the axis, the index and the
//! length, as numpy raises one.

use std::sync::Arc;

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};

use crate::data::{ArrayData, ChunkValue};
use crate::error::{Error, Result};
use crate::graph::{ArrayMeta, Block};
use crate::meta::{Chunks, DType};
use crate::ops::{Derived, InputMeta, RuleResult};

/// `values[.., indices[.., j, ..], ..]` along `axis`.
#[derive(Clone, Debug, PartialEq)]
pub struct TakeAlongOp {
    pub axis: usize,
}

impl TakeAlongOp {
    pub(crate) fn output_meta(&self, inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
        let [values, indices] = inputs else {
            return Err(format!(
                "take_along_axis reads the values and the indices, this layer has {} inputs",
                inputs.len()
            ));
        };
        let (vm, im) = (values.meta, indices.meta);
        let nd = vm.ndim();
        if im.ndim() != nd {
            return Err(format!(
                "its values {} are {nd}-d and its indices {} {}-d; they must have the same rank",
                values.id,
                indices.id,
                im.ndim()
            ));
        }
        if self.axis >= nd {
            return Err(format!(
                "takes along axis {}, out of range for rank {nd}",
                self.axis
            ));
        }
        if im.dtype != DType::I64 {
            return Err(format!(
                "its indices {} are {}, not int64",
                indices.id, im.dtype
            ));
        }
        let (vs, is) = (vm.chunks.shape(), im.chunks.shape());
        let mut sizes = Vec::with_capacity(nd);
        for d in 0..nd {
            let (v, i) = (vm.chunks.axis(d), im.chunks.axis(d));
            sizes.push(if d == self.axis {
                i.to_vec()
            } else if vs[d] == is[d] {
                if v != i {
                    return Err(format!(
                        "values {} and indices {} are chunked {v:?} and {i:?} along axis {d}",
                        values.id, indices.id
                    ));
                }
                v.to_vec()
            } else if is[d] == 1 {
                v.to_vec()
            } else if vs[d] == 1 {
                i.to_vec()
            } else {
                return Err(format!(
                    "values of shape {vs:?} and indices of shape {is:?} do not broadcast on \
                     axis {d}"
                ));
            });
        }
        Ok(Derived::new(
            Chunks::from_sizes(sizes),
            vm.dtype,
            "its indices' chunks along the axis, and elsewhere the chunks of whichever input is \
             not broadcast",
            "keeping its values' dtype",
        ))
    }

    /// Block `block` of an input read by output block `block`: block 0 on an axis the input has
    /// one block along (a broadcast one, or the whole output axis), the same block elsewhere.
    fn input_block(input: &ArrayMeta, block: &[u32]) -> Block {
        input
            .chunks
            .numblocks()
            .iter()
            .zip(block)
            .map(|(&n, &b)| if n == 1 { 0 } else { b })
            .collect()
    }

    /// Deps in order: the indices' block, then every values block along the axis.
    pub(crate) fn deps(&self, inputs: &[&ArrayMeta], block: &[u32], out: &mut Vec<(usize, Block)>) {
        out.push((1, Self::input_block(inputs[1], block)));
        let base = Self::input_block(inputs[0], block);
        for c in 0..inputs[0].chunks.numblocks()[self.axis] {
            let mut b = base.clone();
            b[self.axis] = c as u32;
            out.push((0, b));
        }
    }

    pub(crate) fn run(
        &self,
        out: &ArrayMeta,
        block: &[u32],
        deps: &[Arc<ChunkValue>],
    ) -> Result<ChunkValue> {
        let indices = match deps[0].as_array()? {
            ArrayData::I64(a) => a,
            other => {
                return Err(Error::DTypeMismatch {
                    expected: DType::I64,
                    actual: other.dtype(),
                });
            }
        };
        let parts = deps[1..]
            .iter()
            .map(|d| d.as_array())
            .collect::<Result<Vec<_>>>()?;
        let shape = out.chunks.block_shape(block);
        macro_rules! gather_as {
            ($($v:ident),*) => {
                match parts[0] {
                    $(ArrayData::$v(_) => {
                        let views = parts
                            .iter()
                            .map(|p| match p {
                                ArrayData::$v(a) => Ok(a.view()),
                                other => Err(Error::DTypeMismatch {
                                    expected: out.dtype,
                                    actual: other.dtype(),
                                }),
                            })
                            .collect::<Result<Vec<_>>>()?;
                        ArrayData::$v(gather(&views, indices, self.axis, &shape)?)
                    })*
                }
            };
        }
        Ok(ChunkValue::Array(gather_as!(
            Bool, I32, U8, U64, I64, F32, F64, C128
        )))
    }
}

/// The gather on one block: `parts` are the values' blocks along the axis in order, `indices`
/// the block of indices (both possibly of length 1 on a broadcast axis), `shape` the output
/// block's.
fn gather<T: Clone>(
    parts: &[ArrayViewD<'_, T>],
    indices: &ArrayD<i64>,
    axis: usize,
    shape: &[usize],
) -> Result<ArrayD<T>> {
    let joined;
    let whole = if parts.len() == 1 {
        parts[0].view()
    } else {
        joined = ndarray::concatenate(Axis(axis), parts).map_err(|e| Error::ShapeMismatch {
            op: "take_along_axis",
            reason: format!("values blocks along axis {axis} do not line up: {e}"),
        })?;
        joined.view()
    };
    let len = whole.shape()[axis];
    let mut along = shape.to_vec();
    along[axis] = len;
    let mismatch = |what: &str, had: &[usize], want: &[usize]| Error::ShapeMismatch {
        op: "take_along_axis",
        reason: format!("{what} block of shape {had:?} does not broadcast to {want:?}"),
    };
    let values = whole
        .broadcast(IxDyn(&along))
        .ok_or_else(|| mismatch("a values", whole.shape(), &along))?;
    let idx = indices
        .broadcast(IxDyn(shape))
        .ok_or_else(|| mismatch("an indices", indices.shape(), shape))?;
    // Every index checked first (numpy's error names the first bad one in C order), so the
    // gather below can index without checks failing halfway.
    if let Some(&index) = idx
        .iter()
        .find(|&&k| !(-(len as i64)..len as i64).contains(&k))
    {
        return Err(Error::IndexOutOfBounds {
            index: index as isize,
            axis,
            len,
        });
    }
    // With the axis moved last, lanes in C order fill the output in C order.
    let last = shape.len() - 1;
    let (mut idx, mut values) = (idx, values);
    idx.swap_axes(axis, last);
    values.swap_axes(axis, last);
    let mut data = Vec::with_capacity(shape.iter().product());
    for (i, v) in idx
        .lanes(Axis(last))
        .into_iter()
        .zip(values.lanes(Axis(last)))
    {
        data.extend(i.iter().map(|&k| {
            let j = if k < 0 { k + len as i64 } else { k };
            v[j as usize].clone()
        }));
    }
    let mut moved = shape.to_vec();
    moved.swap(axis, last);
    let mut result =
        ArrayD::from_shape_vec(IxDyn(&moved), data).expect("one element per output position");
    result.swap_axes(axis, last);
    Ok(result.as_standard_layout().into_owned())
}
