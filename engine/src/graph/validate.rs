//! Structural validation of a [`Graph`] that came from outside the process (a client's submission, a
//! scheduler's job graph), before anything expands or runs it. The graph builders in `array` only make
//! consistent graphs, so the kernels index, slice and match on dtypes without checking; a graph decoded
//! from the network has no such guarantee. [`validate`] checks every assumption the expansion and the
//! kernels make, so that a malformed graph is refused at submission with an error naming the layer and
//! what does not fit, and never reaches a kernel as a panic.
//!
//! What is checked: the layer order (every input earlier in the list, so no cycle and no missing
//! dependency), unique ids, outputs present, well-formed chunk grids, and per op, that its parameters
//! and its chunk grid and dtype are the ones the engine would derive from its inputs' metadata.

use std::collections::HashMap;

use super::{ArrayMeta, Graph, Layer, LayerId};
use crate::error::{Error, Result};
use crate::meta::{Chunks, DType, block_indices};
use crate::ops::reduce::partial_chunks;
use crate::ops::{AxisSlice, ElemFunc, LeafKind, Op, Program, ReduceCombine, Reduction, SliceOp};

/// What a layer's chunks hold, which decides who may read them.
#[derive(Clone, Debug, PartialEq)]
enum Produces {
    /// Array chunks of the layer's dtype.
    Array,
    /// Partial reductions (sums, moments, arg pairs) that only a [`ReduceCombine`] can read.
    Partial {
        reduction: Reduction,
        axes: Vec<usize>,
    },
    /// Matmul's partial products: arrays, summed by a combine over axis 2.
    Products,
}

/// An input of the layer being checked.
struct Input<'a> {
    id: LayerId,
    meta: &'a ArrayMeta,
    produces: &'a Produces,
}

/// Checks `graph` as described in the module docs. Errors are [`Error::InvalidLayer`] naming the
/// layer, or [`Error::InvalidGraph`] for an output that is not in the graph.
pub fn validate(graph: &Graph) -> Result<()> {
    let layers = graph.layers();
    let mut seen: HashMap<LayerId, usize> = HashMap::with_capacity(layers.len());
    let mut produces: Vec<Produces> = Vec::with_capacity(layers.len());
    for (pos, layer) in layers.iter().enumerate() {
        let bad = |reason: String| Error::InvalidLayer {
            layer: layer.id.to_string(),
            reason,
        };
        if let Some(first) = seen.get(&layer.id) {
            return Err(bad(format!(
                "appears twice in the graph, at positions {first} and {pos}"
            )));
        }
        let mut inputs = Vec::with_capacity(layer.inputs.len());
        for id in &layer.inputs {
            let Some(&p) = seen.get(id) else {
                return Err(bad(if graph.position(*id).is_some() {
                    format!(
                        "reads {id}, which comes after it in the graph (a forward reference or a cycle)"
                    )
                } else {
                    format!("reads {id}, which is not in the graph")
                }));
            };
            if let (Produces::Partial { .. }, false) =
                (&produces[p], matches!(layer.op, Op::ReduceCombine(_)))
            {
                return Err(bad(format!(
                    "reads {id}, which holds partial reductions that only a combine step can read"
                )));
            }
            inputs.push(Input {
                id: *id,
                meta: &layers[p].meta,
                produces: &produces[p],
            });
        }
        check_chunks(&layer.meta.chunks)
            .map_err(|r| bad(format!("chunks {}: {r}", layer.meta.chunks)))?;
        let p = check_op(layer, &inputs).map_err(bad)?;
        seen.insert(layer.id, pos);
        produces.push(p);
    }
    for out in graph.outputs() {
        match seen.get(out) {
            None => {
                return Err(Error::InvalidGraph {
                    reason: format!("output {out} is not in the graph"),
                });
            }
            Some(&p) if matches!(produces[p], Produces::Partial { .. }) => {
                return Err(Error::InvalidLayer {
                    layer: out.to_string(),
                    reason: "is an output, but holds partial reductions, not array chunks".into(),
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// A chunk grid the engine can index: every axis has chunks (a length-0 axis exactly one, of size 0;
/// otherwise none empty), block indices fit in `u32`, and element and chunk counts fit in `usize`.
fn check_chunks(c: &Chunks) -> Result<(), String> {
    let mut elems = 1usize;
    let mut blocks = 1usize;
    for (axis, sizes) in c.sizes().iter().enumerate() {
        let len = sizes
            .iter()
            .try_fold(0usize, |acc, &s| acc.checked_add(s))
            .ok_or_else(|| format!("the sizes on axis {axis} overflow"))?;
        match (len, sizes.len()) {
            (_, 0) => return Err(format!("axis {axis} has no chunks")),
            (0, 1) => {}
            (0, _) => {
                return Err(format!(
                    "axis {axis} has length 0 and must have exactly one chunk"
                ));
            }
            _ if sizes.contains(&0) => return Err(format!("axis {axis} has an empty chunk")),
            _ => {}
        }
        if u32::try_from(sizes.len()).is_err() {
            return Err(format!(
                "axis {axis} has more chunks than block indices reach"
            ));
        }
        elems = elems
            .checked_mul(len)
            .ok_or("the array has too many elements")?;
        blocks = blocks
            .checked_mul(sizes.len())
            .ok_or("the grid has too many chunks")?;
    }
    Ok(())
}

/// Axes of an `ndim` array, strictly increasing.
fn check_axes(axes: &[usize], ndim: usize, what: &str) -> Result<(), String> {
    if let Some(&a) = axes.iter().find(|&&a| a >= ndim) {
        return Err(format!(
            "{what} {axes:?} include axis {a}, out of range for rank {ndim}"
        ));
    }
    if axes.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!("{what} {axes:?} are not sorted and distinct"));
    }
    Ok(())
}

fn one_input<'a, 'b>(inputs: &'b [Input<'a>], op: &str) -> Result<&'b Input<'a>, String> {
    match inputs {
        [i] => Ok(i),
        _ => Err(format!(
            "{op} reads exactly one input, this layer has {}",
            inputs.len()
        )),
    }
}

fn no_inputs(inputs: &[Input<'_>], op: &str) -> Result<(), String> {
    match inputs {
        [] => Ok(()),
        _ => Err(format!(
            "{op} is a source and reads no input, this layer has {}",
            inputs.len()
        )),
    }
}

fn same_dtype(layer: &Layer, input: &Input<'_>) -> Result<(), String> {
    if layer.meta.dtype != input.meta.dtype {
        return Err(format!(
            "dtype is {}, but its input {} is {} and the op keeps the dtype",
            layer.meta.dtype, input.id, input.meta.dtype
        ));
    }
    Ok(())
}

fn expect_chunks(layer: &Layer, want: &Chunks, why: &str) -> Result<(), String> {
    if &layer.meta.chunks != want {
        return Err(format!(
            "chunks are {}, but {why} gives {want}",
            layer.meta.chunks
        ));
    }
    Ok(())
}

/// Checks the op against its inputs and returns what the layer's chunks hold.
fn check_op(layer: &Layer, inputs: &[Input<'_>]) -> Result<Produces, String> {
    let meta = &layer.meta;
    match &layer.op {
        Op::Blockwise(p) => check_program(layer, p, inputs),
        Op::FromArray(a) => {
            no_inputs(inputs, "from_array")?;
            if a.data.shape() != meta.shape().as_slice() || a.data.dtype() != meta.dtype {
                return Err(format!(
                    "holds a {} array of shape {:?}, but the layer is {} of shape {:?}",
                    a.data.dtype(),
                    a.data.shape(),
                    meta.dtype,
                    meta.shape()
                ));
            }
            Ok(Produces::Array)
        }
        Op::Npy(n) => {
            no_inputs(inputs, "from_npy")?;
            if n.header.shape != meta.shape() || n.header.dtype != meta.dtype {
                return Err(format!(
                    "reads {} holding {} of shape {:?}, but the layer is {} of shape {:?}",
                    n.path.display(),
                    n.header.dtype,
                    n.header.shape,
                    meta.dtype,
                    meta.shape()
                ));
            }
            Ok(Produces::Array)
        }
        Op::Materialized(m) => {
            no_inputs(inputs, "persist")?;
            let n = meta.chunks.num_chunks();
            if m.chunks.len() != n {
                return Err(format!(
                    "keeps {} chunks, but its grid {} has {n}",
                    m.chunks.len(),
                    meta.chunks
                ));
            }
            for (chunk, block) in m.chunks.iter().zip(block_indices(&meta.chunks.numblocks())) {
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
            Ok(Produces::Array)
        }
        Op::ReduceCombine(c) => check_combine(layer, c, inputs),
        Op::Transpose { perm } => {
            let input = one_input(inputs, "transpose")?;
            let nd = input.meta.ndim();
            let mut seen = vec![false; nd];
            if perm.len() != nd
                || perm
                    .iter()
                    .any(|&p| p >= nd || std::mem::replace(&mut seen[p], true))
            {
                return Err(format!(
                    "{perm:?} is not a permutation of the {nd} axes of its input {}",
                    input.id
                ));
            }
            same_dtype(layer, input)?;
            let want = Chunks::from_sizes(
                perm.iter()
                    .map(|&p| input.meta.chunks.axis(p).to_vec())
                    .collect(),
            );
            expect_chunks(layer, &want, "permuting its input's chunks")?;
            Ok(Produces::Array)
        }
        Op::Slice(s) => {
            let input = one_input(inputs, "getitem")?;
            same_dtype(layer, input)?;
            let want = check_slice(s, &input.meta.chunks)?;
            expect_chunks(layer, &want, "the slice's pieces")?;
            Ok(Produces::Array)
        }
        Op::Rechunk => {
            let input = one_input(inputs, "rechunk")?;
            same_dtype(layer, input)?;
            if meta.shape() != input.meta.shape() {
                return Err(format!(
                    "has shape {:?}, but rechunking keeps its input's shape {:?}",
                    meta.shape(),
                    input.meta.shape()
                ));
            }
            Ok(Produces::Array)
        }
        Op::Reshape => {
            let input = one_input(inputs, "reshape")?;
            same_dtype(layer, input)?;
            let size = |m: &ArrayMeta| m.shape().iter().product::<usize>();
            if size(meta) != size(input.meta) {
                return Err(format!(
                    "has shape {:?}, which does not hold the {} elements of its input's shape {:?}",
                    meta.shape(),
                    size(input.meta),
                    input.meta.shape()
                ));
            }
            for (what, m) in [("its input's", input.meta), ("its", meta)] {
                if let Some(a) = (1..m.ndim()).find(|&a| m.chunks.axis(a).len() != 1) {
                    return Err(format!(
                        "reshape needs arrays chunked along axis 0 only, but {what} chunks {} split axis {a}",
                        m.chunks
                    ));
                }
            }
            Ok(Produces::Array)
        }
        Op::Concatenate { axis } => {
            let axis = *axis;
            if inputs.is_empty() {
                return Err("concatenate reads no input".into());
            }
            if axis >= meta.ndim() {
                return Err(format!(
                    "concatenates along axis {axis}, out of range for rank {}",
                    meta.ndim()
                ));
            }
            let mut along = Vec::new();
            for input in inputs {
                same_dtype(layer, input)?;
                let m = input.meta;
                if m.ndim() != meta.ndim()
                    || (0..m.ndim()).any(|a| a != axis && m.chunks.axis(a) != meta.chunks.axis(a))
                {
                    return Err(format!(
                        "input {} is chunked {}, which does not line up with {} off axis {axis}",
                        input.id, m.chunks, meta.chunks
                    ));
                }
                along.extend_from_slice(m.chunks.axis(axis));
            }
            if along != meta.chunks.axis(axis) {
                return Err(format!(
                    "chunks along axis {axis} are {:?}, but its inputs' add up to {along:?}",
                    meta.chunks.axis(axis)
                ));
            }
            Ok(Produces::Array)
        }
        Op::Stack { axis } => {
            let axis = *axis;
            let Some(first) = inputs.first() else {
                return Err("stack reads no input".into());
            };
            if axis > first.meta.ndim() {
                return Err(format!(
                    "stacks along axis {axis}, out of range for inputs of rank {}",
                    first.meta.ndim()
                ));
            }
            for input in inputs {
                same_dtype(layer, input)?;
                if input.meta.chunks != first.meta.chunks {
                    return Err(format!(
                        "inputs {} and {} are chunked differently ({} and {})",
                        first.id, input.id, first.meta.chunks, input.meta.chunks
                    ));
                }
            }
            let mut sizes = first.meta.chunks.sizes().to_vec();
            sizes.insert(axis, vec![1; inputs.len()]);
            expect_chunks(
                layer,
                &Chunks::from_sizes(sizes),
                "stacking its inputs' chunks",
            )?;
            Ok(Produces::Array)
        }
        Op::Matmul(m) => {
            let [a, b] = inputs else {
                return Err(format!(
                    "matmul reads two inputs, this layer has {}",
                    inputs.len()
                ));
            };
            if a.meta.ndim() != 2 || b.meta.ndim() != 2 {
                return Err(format!(
                    "matmul needs 2-d inputs, {} has shape {:?} and {} has {:?}",
                    a.id,
                    a.meta.shape(),
                    b.id,
                    b.meta.shape()
                ));
            }
            same_dtype(layer, a)?;
            same_dtype(layer, b)?;
            if meta.dtype == DType::Bool {
                return Err("matmul does not support bool".into());
            }
            // Which stored axes are the rows, the inner dimension and the columns.
            let (rows, a_inner) = if m.transpose_a { (1, 0) } else { (0, 1) };
            let (b_inner, cols) = if m.transpose_b { (1, 0) } else { (0, 1) };
            if a.meta.chunks.axis(a_inner) != b.meta.chunks.axis(b_inner) {
                return Err(format!(
                    "inner chunks differ: {} is chunked {:?} along axis {a_inner}, {} {:?} along axis {b_inner}",
                    a.id,
                    a.meta.chunks.axis(a_inner),
                    b.id,
                    b.meta.chunks.axis(b_inner)
                ));
            }
            let want = Chunks::from_sizes(vec![
                a.meta.chunks.axis(rows).to_vec(),
                b.meta.chunks.axis(cols).to_vec(),
                vec![1; a.meta.chunks.axis(a_inner).len()],
            ]);
            expect_chunks(layer, &want, "the grid of block products")?;
            Ok(Produces::Products)
        }
        Op::MirrorUpper => {
            let input = one_input(inputs, "mirror_upper")?;
            let chunks = &input.meta.chunks;
            if chunks.ndim() != 2 || chunks.axis(0) != chunks.axis(1) {
                return Err(format!(
                    "mirror_upper needs a square 2-d input chunked alike on both axes, {} is chunked {chunks}",
                    input.id
                ));
            }
            same_dtype(layer, input)?;
            expect_chunks(layer, chunks, "its input")?;
            Ok(Produces::Array)
        }
        Op::MapBlocks(_) => {
            let input = one_input(inputs, "map_blocks")?;
            expect_chunks(layer, &input.meta.chunks, "its input")?;
            Ok(Produces::Array)
        }
    }
}

fn check_program(layer: &Layer, p: &Program, inputs: &[Input<'_>]) -> Result<Produces, String> {
    check_chunks(&p.domain).map_err(|r| format!("program domain {}: {r}", p.domain))?;
    let nd = p.domain.ndim();
    let full = p.domain.shape();
    let mut read_by: Vec<Option<usize>> = vec![None; inputs.len()];
    for (li, leaf) in p.leaves.iter().enumerate() {
        if leaf.shape.len() != nd || leaf.rank > nd {
            return Err(format!(
                "leaf {li} has shape {:?} and rank {}, but the domain has rank {nd}",
                leaf.shape, leaf.rank
            ));
        }
        let pad = nd - leaf.rank;
        if leaf.shape[..pad].iter().any(|&d| d != 1)
            || leaf
                .shape
                .iter()
                .zip(&full)
                .any(|(&l, &d)| l != 1 && l != d)
        {
            return Err(format!(
                "leaf {li} of shape {:?} and rank {} does not broadcast to the domain shape {full:?}",
                leaf.shape, leaf.rank
            ));
        }
        if !leaf.axes.is_empty() {
            let mut seen = vec![false; nd];
            let permutation = leaf.axes.len() == nd
                && leaf.rank == nd
                && leaf
                    .axes
                    .iter()
                    .all(|&a| a < nd && !std::mem::replace(&mut seen[a], true));
            if !permutation || matches!(leaf.kind, LeafKind::Input(_)) {
                return Err(format!(
                    "leaf {li} has axes {:?}: only a generated leaf of the domain's rank {nd} may \
                     permute its axes, and only with a permutation of 0..{nd}",
                    leaf.axes
                ));
            }
        }
        match &leaf.kind {
            LeafKind::Input(i) => {
                let Some(input) = inputs.get(*i) else {
                    return Err(format!(
                        "leaf {li} reads input {i}, but the layer has {} inputs",
                        inputs.len()
                    ));
                };
                if let Some(other) = read_by[*i].replace(li) {
                    return Err(format!(
                        "input {i} is read by both leaf {other} and leaf {li}"
                    ));
                }
                let m = input.meta;
                if m.dtype != leaf.dtype {
                    return Err(format!(
                        "leaf {li} reads input {} of dtype {} as {}",
                        input.id, m.dtype, leaf.dtype
                    ));
                }
                if m.shape().as_slice() != &leaf.shape[pad..] {
                    return Err(format!(
                        "leaf {li} has shape {:?} and rank {}, but its input {} has shape {:?}",
                        leaf.shape,
                        leaf.rank,
                        input.id,
                        m.shape()
                    ));
                }
                for (a, (&l, &d)) in leaf.shape.iter().zip(&full).enumerate().skip(pad) {
                    let broadcast = l == 1 && d != 1;
                    if !broadcast && m.chunks.axis(a - pad) != p.domain.axis(a) {
                        return Err(format!(
                            "input {} is chunked {:?} along its axis {}, but the domain {:?} along axis {a}",
                            input.id,
                            m.chunks.axis(a - pad),
                            a - pad,
                            p.domain.axis(a)
                        ));
                    }
                }
            }
            LeafKind::Full(s) if s.dtype() != leaf.dtype => {
                return Err(format!(
                    "leaf {li} is the {} constant {s} but has dtype {}",
                    s.dtype(),
                    leaf.dtype
                ));
            }
            LeafKind::Random { .. } | LeafKind::Linspace { .. } if !leaf.dtype.is_float() => {
                return Err(format!(
                    "leaf {li} generates floats but has dtype {}",
                    leaf.dtype
                ));
            }
            LeafKind::Arange { .. } if leaf.dtype == DType::Bool => {
                return Err(format!("leaf {li} is an arange of dtype bool"));
            }
            LeafKind::Arange { start, step } if leaf.dtype == DType::I64 => {
                // The kernel computes `start + i·step` in int64 for every flat index `i` of the leaf;
                // the largest `i` bounds both the product and the sum.
                let n: usize = leaf.shape.iter().product();
                let last = (n.max(1) - 1) as i128 * (*step as i64) as i128;
                let end = (*start as i64) as i128 + last;
                if i64::try_from(last).is_err() || i64::try_from(end).is_err() {
                    return Err(format!(
                        "leaf {li}: an int64 arange from {start} by {step} over {n} elements overflows"
                    ));
                }
            }
            _ => {}
        }
    }
    if let Some(i) = read_by.iter().position(Option::is_none) {
        return Err(format!(
            "input {i} ({}) is read by no leaf of the program",
            inputs[i].id
        ));
    }
    let nleaves = p.leaves.len();
    for (k, ins) in p.instrs.iter().enumerate() {
        let defined = nleaves + k;
        if let Some(&a) = ins.args.iter().find(|&&a| a as usize >= defined) {
            return Err(format!(
                "instruction {k} ({}) reads value {a}, which is not defined before it (values 0..{defined})",
                ins.func.name()
            ));
        }
        let args: Vec<DType> = ins.args.iter().map(|&a| p.value_dtype(a)).collect();
        check_typing(ins.func, &args, ins.dtype)
            .map_err(|r| format!("instruction {k} ({}): {r}", ins.func.name()))?;
    }
    let nvalues = nleaves + p.instrs.len();
    if p.output as usize >= nvalues {
        return Err(format!(
            "the program's output is value {}, but it defines {nvalues}",
            p.output
        ));
    }
    let out_dtype = p.value_dtype(p.output);
    match &p.reduce {
        None => {
            expect_chunks(layer, &p.domain, "the program's domain")?;
            if layer.meta.dtype != out_dtype {
                return Err(format!(
                    "dtype is {}, but the program computes {out_dtype}",
                    layer.meta.dtype
                ));
            }
            Ok(Produces::Array)
        }
        Some(r) => {
            check_axes(&r.axes, nd, "reduced axes")?;
            if r.domain_shape != full {
                return Err(format!(
                    "the reduction's domain shape {:?} is not the domain's {full:?}",
                    r.domain_shape
                ));
            }
            if matches!(r.reduction, Reduction::Any | Reduction::All) && out_dtype != DType::Bool {
                return Err(format!(
                    "{} reduces bool values, but the program computes {out_dtype}",
                    r.reduction.name()
                ));
            }
            expect_chunks(
                layer,
                &partial_chunks(&p.domain, &r.axes),
                "one partial per chunk of the domain",
            )?;
            let dtype = r.reduction.result_dtype(out_dtype);
            if layer.meta.dtype != dtype {
                return Err(format!(
                    "dtype is {}, but {} of {out_dtype} gives {dtype}",
                    layer.meta.dtype,
                    r.reduction.name()
                ));
            }
            Ok(Produces::Partial {
                reduction: r.reduction,
                axes: r.axes.clone(),
            })
        }
    }
}

/// The engine's typing rules (`ops::elementwise`): arguments arrive in the dtype the function computes
/// in, so each signature must map the arguments' dtype to itself and to the instruction's dtype.
fn check_typing(func: ElemFunc, args: &[DType], out: DType) -> Result<(), String> {
    let arity = match func {
        ElemFunc::Unary(_) | ElemFunc::Cast => 1,
        ElemFunc::Binary(_) | ElemFunc::Compare(_) => 2,
        ElemFunc::Where | ElemFunc::Clip => 3,
    };
    if args.len() != arity {
        return Err(format!("takes {arity} arguments, but has {}", args.len()));
    }
    let same = |what: &str| -> Result<(), String> {
        if args.windows(2).any(|w| w[0] != w[1]) {
            return Err(format!("{what} of dtypes {args:?} differ"));
        }
        Ok(())
    };
    let signature = |sig: Result<(DType, DType)>| -> Result<(), String> {
        let (arg, res) = sig.map_err(|e| e.to_string())?;
        if arg != args[0] || res != out {
            return Err(format!(
                "computes {arg} -> {res}, but reads {} and gives {out}",
                args[0]
            ));
        }
        Ok(())
    };
    match func {
        ElemFunc::Unary(f) => signature(f.signature(args[0])),
        ElemFunc::Binary(f) => {
            same("arguments")?;
            signature(f.signature(args[0]))
        }
        ElemFunc::Compare(_) => {
            same("arguments")?;
            if out != DType::Bool {
                return Err(format!("a comparison gives bool, not {out}"));
            }
            Ok(())
        }
        ElemFunc::Where => {
            if args[0] != DType::Bool || args[1] != out || args[2] != out {
                return Err(format!(
                    "where needs (bool, {out}, {out}) for a {out} result, has {args:?}"
                ));
            }
            Ok(())
        }
        ElemFunc::Clip => {
            if args.iter().any(|&a| a != out) {
                return Err(format!(
                    "clip's arguments {args:?} must all be its result's {out}"
                ));
            }
            Ok(())
        }
        ElemFunc::Cast => Ok(()),
    }
}

fn check_combine(
    layer: &Layer,
    c: &ReduceCombine,
    inputs: &[Input<'_>],
) -> Result<Produces, String> {
    let input = one_input(inputs, "a combine step")?;
    let m = input.meta;
    check_axes(&c.axes, m.ndim(), "combined axes")?;
    if c.group.len() != c.axes.len() || c.group.contains(&0) {
        return Err(format!(
            "group sizes {:?} must be at least 1, one per combined axis {:?}",
            c.group, c.axes
        ));
    }
    match input.produces {
        Produces::Partial { reduction, axes } if *reduction == c.reduction && *axes == c.axes => {}
        Produces::Products if c.reduction == Reduction::Sum && c.axes == [2] => {}
        Produces::Partial { reduction, axes } => {
            return Err(format!(
                "combines {} over {:?}, but its input {} holds {} partials over {axes:?}",
                c.reduction.name(),
                c.axes,
                input.id,
                reduction.name()
            ));
        }
        _ => {
            return Err(format!(
                "combines {} over {:?}, but its input {} holds no partials of that",
                c.reduction.name(),
                c.axes,
                input.id
            ));
        }
    }
    if let Some(&a) = c
        .axes
        .iter()
        .find(|&&a| m.chunks.axis(a).iter().any(|&s| s != 1))
    {
        return Err(format!(
            "its input {} is chunked {:?} along combined axis {a}, where partials are 1 long",
            input.id,
            m.chunks.axis(a)
        ));
    }
    same_dtype(layer, input)?;
    expect_chunks(layer, &c.output_chunks(&m.chunks), "combining its input")?;
    match c.finalize {
        Some(f) if f.dtype != layer.meta.dtype => Err(format!(
            "finalizes to {}, but the layer's dtype is {}",
            f.dtype, layer.meta.dtype
        )),
        Some(_) => Ok(Produces::Array),
        None => Ok(Produces::Partial {
            reduction: c.reduction,
            axes: c.axes.clone(),
        }),
    }
}

/// Checks a slice against its input's chunks and returns the output chunks its pieces make.
fn check_slice(s: &SliceOp, input: &Chunks) -> Result<Chunks, String> {
    let nd = input.ndim();
    if s.axes.len() != nd || s.pieces.len() != nd {
        return Err(format!(
            "the slice has {} selections and {} piece lists for an input of rank {nd}",
            s.axes.len(),
            s.pieces.len()
        ));
    }
    let mut out = Vec::new();
    for (axis, (sel, pieces)) in s.axes.iter().zip(&s.pieces).enumerate() {
        let sizes = input.axis(axis);
        let offs = input.axis_offsets(axis);
        let n = offs[sizes.len()];
        let bad = |what: String| Err(format!("axis {axis}: {what}"));
        for p in pieces {
            if p.in_block as usize >= sizes.len() {
                return bad(format!(
                    "a piece reads block {}, but the input has {} blocks",
                    p.in_block,
                    sizes.len()
                ));
            }
        }
        match *sel {
            AxisSlice::Index(i) => {
                let [p] = pieces.as_slice() else {
                    return bad(format!("an index needs one piece, not {}", pieces.len()));
                };
                let b = p.in_block as usize;
                // Checked in this order so that the sum cannot overflow.
                if i >= n || p.len != 1 || p.local_start >= sizes[b] || offs[b] + p.local_start != i
                {
                    return bad(format!(
                        "index {i} of length {n} does not match its piece {p:?}"
                    ));
                }
            }
            AxisSlice::Range { start, step, len } => {
                if step == 0 {
                    return bad("slice step 0".into());
                }
                if len == 0 {
                    if !matches!(pieces.as_slice(), [p] if p.len == 0) {
                        return bad("an empty selection needs one empty piece".into());
                    }
                } else {
                    let last = start as i128 + (len as i128 - 1) * step as i128;
                    if start >= n || last < 0 || last >= n as i128 {
                        return bad(format!(
                            "{len} elements from {start} step {step} leave the axis of length {n}"
                        ));
                    }
                    let mut k = 0usize;
                    for p in pieces {
                        let b = p.in_block as usize;
                        let want = start as i128 + k as i128 * step as i128;
                        let last_local = p.local_start as i128 + (p.len as i128 - 1) * step as i128;
                        if p.len == 0
                            || offs[b] as i128 + p.local_start as i128 != want
                            || p.local_start >= sizes[b]
                            || last_local < 0
                            || last_local >= sizes[b] as i128
                        {
                            return bad(format!(
                                "piece {p:?} is not the part of block {b} (of size {}) that selection element {k} starts",
                                sizes[b]
                            ));
                        }
                        k = k.saturating_add(p.len);
                    }
                    if k != len {
                        return bad(format!("the pieces select {k} elements, the slice {len}"));
                    }
                }
                out.push(pieces.iter().map(|p| p.len).collect());
            }
        }
    }
    Ok(Chunks::from_sizes(out))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ndarray::{ArrayD, IxDyn, s};

    use super::*;
    use crate::array::Array;
    use crate::meta::Scalar;
    use crate::ops::{LeafKind, MatmulOp};
    use crate::optimize::optimize;
    use crate::{
        ReduceOptions, arange, concatenate, default_rng, from_array, from_npy, full, linspace,
        stack, where_,
    };

    fn x() -> Array {
        default_rng(11).random(&[12, 12], [5, 4]).unwrap()
    }

    /// Arrays built through the public API, covering every op; their graphs must all validate.
    fn examples(dir: &std::path::Path) -> Vec<Array> {
        let x = x();
        let ints = arange(0i64, 144, 1, [50])
            .unwrap()
            .reshape(&[12, 12])
            .unwrap();
        let path = dir.join("x.npy");
        x.to_npy(&path).unwrap();
        let f = from_npy(&path, [6, 6]).unwrap();
        let data = ArrayD::from_shape_fn(IxDyn(&[4, 6]), |i| (i[0] * 6 + i[1]) as f32);
        let small = from_array(data, [3, 4]).unwrap();
        let empty = full(&[0, 4], 1.5, [3, 2]).unwrap();
        let y = (&x + &x.t()).unwrap();
        vec![
            y.mean_axis(0).unwrap(),
            (&f * 2.0f64).unwrap().sum().unwrap(),
            small.slice(s![1..4;2, ..;-3]).unwrap(),
            small.slice(s![-1, 2..2]).unwrap(),
            small
                .astype(DType::F64)
                .unwrap()
                .matmul(&x.slice(s![..6, ..]).unwrap())
                .unwrap(),
            ints.matmul(&ints).unwrap(),
            x.reshape(&[3, -1, 4])
                .unwrap()
                .permute_axes(&[2, 0, 1])
                .unwrap(),
            x.slice(s![..1, ..1]).unwrap().reshape(&[]).unwrap(),
            concatenate(&[&x, &f.slice(s![..5, ..]).unwrap(), &ints], 0).unwrap(),
            stack(&[&x, &f, &ints], 1).unwrap(),
            x.rechunk([12, 3]).unwrap().persist().unwrap().t(),
            where_(x.gt(0.5).unwrap(), &ints, (-&ints).unwrap()).unwrap(),
            x.clip(0.2, 0.8)
                .unwrap()
                .sqrt()
                .unwrap()
                .isnan()
                .unwrap()
                .any()
                .unwrap(),
            ints.lt(70).unwrap().all_axis(1).unwrap(),
            ints.gt(3).unwrap().sum_axis(0).unwrap(),
            (&ints & 6i64)
                .unwrap()
                .prod_with(&ReduceOptions::axes([0]).keepdims(true))
                .unwrap(),
            (&ints / 3i64)
                .unwrap()
                .powf(0.5)
                .unwrap()
                .max_axis(1)
                .unwrap(),
            x.argmin().unwrap(),
            x.argmax_axis(1).unwrap(),
            x.var_axis(1, 1.0).unwrap(),
            x.std_with(&ReduceOptions::all().split_every(2)).unwrap(),
            default_rng(1)
                .standard_normal_dtype(&[40], [3], DType::F32)
                .unwrap()
                .min()
                .unwrap(),
            (&linspace(0.0, 1.0, 12, false, [5]).unwrap() + &x).unwrap(),
            empty.mean_axis(0).unwrap(),
            empty.sum().unwrap(),
            (!&ints.eq(4).unwrap()).unwrap(),
            x.map_blocks(|b: ndarray::ArrayViewD<f64>| b.mapv(|v| v as i64))
                .unwrap(),
        ]
    }

    #[test]
    fn graphs_built_through_the_api_validate() {
        let dir = tempfile::tempdir().unwrap();
        for a in examples(dir.path()) {
            validate(&a.graph()).unwrap_or_else(|e| panic!("{a:?}: {e}"));
            validate(&optimize(a.graph())).unwrap_or_else(|e| panic!("{a:?} optimized: {e}"));
        }
    }

    // -----------------------------------------------------------------------------------------
    // corruptions

    fn copy(l: &Layer) -> Layer {
        Layer {
            id: l.id,
            op: l.op.clone(),
            inputs: l.inputs.clone(),
            meta: l.meta.clone(),
        }
    }

    /// The graph with its layers (copied) changed by `f`.
    fn edit(g: &Graph, f: impl FnOnce(&mut Vec<Layer>)) -> Graph {
        let mut layers: Vec<Layer> = g.layers().iter().map(|l| copy(l)).collect();
        f(&mut layers);
        Graph::new(
            layers.into_iter().map(Arc::new).collect(),
            g.outputs().to_vec(),
        )
    }

    fn find(g: &Graph, pred: impl Fn(&Layer) -> bool) -> usize {
        g.layers().iter().position(|l| pred(l)).unwrap()
    }

    fn program(l: &mut Layer) -> &mut Program {
        match &mut l.op {
            Op::Blockwise(p) => p,
            other => panic!("{other:?} is not blockwise"),
        }
    }

    /// Asserts that validation fails naming `layer`, with `needle` in the reason.
    fn rejects(g: &Graph, layer: LayerId, needle: &str) {
        match validate(g) {
            Err(Error::InvalidLayer { layer: l, reason }) => {
                assert_eq!(l, layer.to_string(), "wrong layer blamed: {reason}");
                assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
                // The message a user sees names it too.
                let shown = Error::InvalidLayer { layer: l, reason }.to_string();
                assert!(shown.contains(&layer.to_string()), "{shown}");
            }
            other => panic!("expected the graph to be rejected for {layer}, got {other:?}"),
        }
    }

    /// `mean(2 * (x + x.T), axis 0)`, unfused: random, transpose, add, multiply, partial, combine.
    fn base() -> Graph {
        let x = x();
        let y = ((&x + &x.t()).unwrap() * 2.0f64).unwrap();
        let g = y.mean_axis(0).unwrap().graph();
        validate(&g).unwrap();
        g
    }

    fn is_transpose(l: &Layer) -> bool {
        matches!(l.op, Op::Transpose { .. })
    }

    fn is_add(l: &Layer) -> bool {
        l.id.name == "add"
    }

    #[test]
    fn a_missing_dependency_names_its_reader() {
        let g = base();
        let t = find(&g, is_transpose);
        let tid = g.layers()[t].id;
        // The transpose's chunks do not line up with x's, so a rechunk reads it before the add.
        let reader = g.layers()[find(&g, |l| l.inputs.contains(&tid))].id;
        rejects(
            &edit(&g, |ls| drop(ls.remove(t))),
            reader,
            "not in the graph",
        );
        // Dropping the source leaves the transpose and the add without it; the first is named.
        let rand = g.layers()[0].id;
        let first_reader = g.layers()[find(&g, |l| l.inputs.contains(&rand))].id;
        rejects(
            &edit(&g, |ls| drop(ls.remove(0))),
            first_reader,
            &rand.to_string(),
        );
    }

    #[test]
    fn a_forward_reference_is_rejected() {
        let g = base();
        let t = find(&g, is_transpose);
        let rand = find(&g, |l| l.id.name == "random");
        rejects(
            &edit(&g, |ls| ls.swap(t, rand)),
            g.layers()[t].id,
            "comes after",
        );
    }

    #[test]
    fn a_cycle_is_rejected() {
        let g = base();
        let last = g.layers().last().unwrap().id;
        let first = g.layers()[0].id;
        let cyclic = edit(&g, |ls| ls[0].inputs.push(last));
        rejects(&cyclic, first, "comes after");
        let own = edit(&g, |ls| {
            let id = ls[1].id;
            ls[1].inputs.push(id)
        });
        rejects(&own, g.layers()[1].id, "comes after");
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let g = base();
        let dup = g.layers()[1].id;
        rejects(&edit(&g, |ls| ls.push(copy(&ls[1]))), dup, "appears twice");
    }

    #[test]
    fn outputs_must_exist_and_be_arrays() {
        let g = base();
        let missing = Graph::new(
            g.layers().to_vec(),
            vec![LayerId {
                name: "sum",
                token: 5,
            }],
        );
        assert!(
            matches!(validate(&missing), Err(Error::InvalidGraph { reason }) if reason.contains("sum-"))
        );
        let partial = g.layers()[find(&g, |l| {
            l.id.name == "mean" && matches!(l.op, Op::Blockwise(_))
        })]
        .id;
        rejects(
            &Graph::new(g.layers().to_vec(), vec![partial]),
            partial,
            "partial",
        );
    }

    #[test]
    fn a_changed_chunk_size_is_rejected() {
        let g = base();
        let t = find(&g, is_transpose);
        let bad = edit(&g, |ls| {
            ls[t].meta.chunks = Chunks::from_sizes(vec![vec![6, 6], vec![6, 6]]);
        });
        rejects(&bad, g.layers()[t].id, "permuting");
        // A source's grid must be its program's domain.
        let bad = edit(&g, |ls| {
            ls[0].meta.chunks = Chunks::from_sizes(vec![vec![5, 5, 2], vec![4, 4, 3, 1]]);
        });
        rejects(&bad, g.layers()[0].id, "domain");
        // And a grid must be well formed.
        let bad = edit(&g, |ls| {
            ls[0].meta.chunks = Chunks::from_sizes(vec![vec![5, 0, 7], vec![4, 4, 4]]);
        });
        rejects(&bad, g.layers()[0].id, "empty chunk");
    }

    #[test]
    fn a_changed_dtype_is_rejected() {
        let g = base();
        let add = find(&g, is_add);
        let bad = edit(&g, |ls| ls[add].meta.dtype = DType::F32);
        rejects(&bad, g.layers()[add].id, "dtype is float32");
        let bad = edit(&g, |ls| program(&mut ls[add]).leaves[0].dtype = DType::I64);
        rejects(&bad, g.layers()[add].id, "as int64");
        let bad = edit(&g, |ls| program(&mut ls[0]).leaves[0].dtype = DType::I64);
        rejects(&bad, g.layers()[0].id, "generates floats");
        let t = find(&g, is_transpose);
        let bad = edit(&g, |ls| ls[t].meta.dtype = DType::Bool);
        rejects(&bad, g.layers()[t].id, "keeps the dtype");
    }

    #[test]
    fn leaves_must_read_inputs_that_exist_once() {
        let g = base();
        let add = find(&g, is_add);
        let id = g.layers()[add].id;
        let bad = edit(&g, |ls| {
            program(&mut ls[add]).leaves[1].kind = LeafKind::Input(5)
        });
        rejects(&bad, id, "reads input 5");
        let bad = edit(&g, |ls| {
            program(&mut ls[add]).leaves[1].kind = LeafKind::Input(0)
        });
        rejects(&bad, id, "read by both");
        let bad = edit(&g, |ls| {
            program(&mut ls[add]).leaves[1].kind = LeafKind::Full(Scalar::F64(1.0))
        });
        rejects(&bad, id, "read by no leaf");
        let bad = edit(&g, |ls| program(&mut ls[add]).leaves[1].shape = vec![12, 3]);
        rejects(&bad, id, "does not broadcast");
    }

    #[test]
    fn instructions_must_be_well_typed_and_ordered() {
        let g = base();
        let add = find(&g, is_add);
        let id = g.layers()[add].id;
        let bad = edit(&g, |ls| program(&mut ls[add]).instrs[0].args[1] = 9);
        rejects(&bad, id, "not defined before it");
        let bad = edit(&g, |ls| program(&mut ls[add]).output = 3);
        rejects(&bad, id, "output is value 3");
        let bad = edit(&g, |ls| {
            program(&mut ls[add]).instrs[0]
                .args
                .pop()
                .map(drop)
                .unwrap()
        });
        rejects(&bad, id, "takes 2 arguments");
        let bad = edit(&g, |ls| {
            let p = program(&mut ls[add]);
            p.instrs[0].func = ElemFunc::Binary(crate::ops::BinaryFn::And);
        });
        rejects(&bad, id, "logical_and does not support dtype float64");
        let bad = edit(&g, |ls| {
            let p = program(&mut ls[add]);
            p.instrs[0].func = ElemFunc::Binary(crate::ops::BinaryFn::Div);
            p.instrs[0].dtype = DType::F32;
        });
        rejects(&bad, id, "computes float64 -> float64");
    }

    #[test]
    fn an_int64_arange_that_overflows_is_rejected() {
        let a = arange(0i64, 10, 1, [4]).unwrap();
        let g = a.graph();
        let bad = edit(&g, |ls| {
            program(&mut ls[0]).leaves[0].kind = LeafKind::Arange {
                start: 0.0,
                step: 2f64.powi(62),
            }
        });
        rejects(&bad, a.id(), "overflows");
        // As floats the same values are fine.
        let f = arange(0.0, 10.0, 1.0, [4]).unwrap();
        let ok = edit(&f.graph(), |ls| {
            program(&mut ls[0]).leaves[0].kind = LeafKind::Arange {
                start: 0.0,
                step: 2f64.powi(62),
            }
        });
        validate(&ok).unwrap();
    }

    #[test]
    fn a_bad_permutation_is_rejected() {
        let g = base();
        let t = find(&g, is_transpose);
        let bad = edit(&g, |ls| ls[t].op = Op::Transpose { perm: vec![0, 0] });
        rejects(&bad, g.layers()[t].id, "not a permutation");
        let bad = edit(&g, |ls| {
            ls[t].op = Op::Transpose {
                perm: vec![1, 0, 2],
            }
        });
        rejects(&bad, g.layers()[t].id, "not a permutation");
    }

    #[test]
    fn reductions_must_line_up() {
        let g = base();
        let partial = find(&g, |l| {
            l.id.name == "mean" && matches!(l.op, Op::Blockwise(_))
        });
        let combine = find(&g, |l| matches!(l.op, Op::ReduceCombine(_)));
        let (pid, cid) = (g.layers()[partial].id, g.layers()[combine].id);
        let bad = edit(&g, |ls| {
            program(&mut ls[partial]).reduce.as_mut().unwrap().axes = vec![1, 0]
        });
        rejects(&bad, pid, "not sorted");
        let combine_op = |ls: &mut Vec<Layer>| match &mut ls[combine].op {
            Op::ReduceCombine(c) => c.clone(),
            _ => unreachable!(),
        };
        let bad = edit(&g, |ls| {
            let mut c = combine_op(ls);
            c.group = vec![0];
            ls[combine].op = Op::ReduceCombine(c);
        });
        rejects(&bad, cid, "group sizes");
        let bad = edit(&g, |ls| {
            let mut c = combine_op(ls);
            c.reduction = Reduction::Sum;
            ls[combine].op = Op::ReduceCombine(c);
        });
        rejects(&bad, cid, "holds mean partials");
        let bad = edit(&g, |ls| {
            let mut c = combine_op(ls);
            c.finalize.as_mut().unwrap().keepdims = true;
            ls[combine].op = Op::ReduceCombine(c);
        });
        rejects(&bad, cid, "combining its input gives");
        // Partials are for combine steps only.
        let bad = edit(&g, |ls| ls[combine].op = Op::Rechunk);
        rejects(&bad, cid, "only a combine step");
    }

    #[test]
    fn structural_ops_must_line_up() {
        let x = x();
        let sl = x.slice(s![1..11;2, ..]).unwrap();
        let g = sl.graph();
        let bad = edit(&g, |ls| {
            let Op::Slice(s) = &mut ls[1].op else {
                unreachable!()
            };
            s.pieces[0][0].local_start = 40;
        });
        rejects(&bad, sl.id(), "axis 0");

        let m = x.matmul(&x).unwrap();
        let g = m.graph();
        let mm = find(&g, |l| matches!(l.op, Op::Matmul(_)));
        let bad = edit(&g, |ls| {
            ls[mm].meta.chunks = Chunks::from_sizes(vec![vec![12], vec![12], vec![1]])
        });
        rejects(&bad, g.layers()[mm].id, "block products");
        let bad = edit(&g, |ls| ls[mm].inputs.reverse());
        rejects(&bad, g.layers()[mm].id, "inner chunks differ");

        // `x @ x.T` reads `x` untransposed; read as it is, its chunks do not line up.
        let sym = x.matmul(&x.t()).unwrap();
        let g = sym.graph();
        let mm = find(&g, |l| matches!(l.op, Op::Matmul(m) if m.transpose_b));
        let bad = edit(&g, |ls| ls[mm].op = Op::Matmul(MatmulOp::default()));
        rejects(&bad, g.layers()[mm].id, "inner chunks differ");
        let mirror = find(&g, |l| matches!(l.op, Op::MirrorUpper));
        let bad = edit(&g, |ls| ls[mirror].inputs = vec![x.id()]);
        rejects(&bad, sym.id(), "square 2-d input chunked alike");

        let c = concatenate(&[&x, &x.slice(s![..2, ..]).unwrap()], 0).unwrap();
        let g = c.graph();
        let bad = edit(&g, |ls| {
            ls.last_mut().unwrap().meta.chunks = Chunks::from_sizes(vec![vec![7, 7], vec![4, 4, 4]])
        });
        rejects(&bad, c.id(), "add up to");

        let st = stack(&[&x, &x], 0).unwrap();
        let g = st.graph();
        let bad = edit(&g, |ls| ls.last_mut().unwrap().op = Op::Stack { axis: 3 });
        rejects(&bad, st.id(), "out of range");

        let r = x.reshape(&[-1]).unwrap();
        let g = r.graph();
        let bad = edit(&g, |ls| {
            let l = ls.last_mut().unwrap();
            l.meta.chunks = Chunks::from_sizes(vec![vec![100]]);
        });
        rejects(&bad, r.id(), "elements");

        let kept = x.persist().unwrap();
        let g = kept.graph();
        let bad = edit(&g, |ls| {
            let Op::Materialized(m) = &mut ls[0].op else {
                unreachable!()
            };
            let mut chunks = (*m.chunks).clone();
            chunks.pop();
            m.chunks = Arc::new(chunks);
        });
        rejects(&bad, kept.id(), "keeps 8 chunks, but its grid");
    }
}
