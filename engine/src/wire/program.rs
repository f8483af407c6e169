//! Blockwise programs on the wire: elementwise functions, instructions, leaves, the reduce sink.

use smallvec::SmallVec;

use super::pb;
use super::{
    dtype_of, enum_of, reduction_of, required, u32_of, u32s_of, u64s, usizes_of, usizes_of_u32,
    wire, within,
};
use crate::error::{Error, Result};
use crate::ops::{
    BinaryFn, Distribution, ElemFunc, Instr, Leaf, LeafKind, LeafWindow, Program, ReduceSink,
    UnaryFn,
};

// ---------------------------------------------------------------------------------------------
// programs

impl From<ElemFunc> for pb::ElemFunc {
    fn from(f: ElemFunc) -> Self {
        use pb::elem_func::Func;
        pb::ElemFunc {
            func: Some(match f {
                ElemFunc::Unary(u) => Func::Unary(u.code()),
                ElemFunc::Binary(b) => Func::Binary(b.code()),
                ElemFunc::Compare(c) => Func::Compare(pb::CmpFn::from(c) as i32),
                ElemFunc::Where => Func::Where(pb::Empty {}),
                ElemFunc::Clip => Func::Clip(pb::Empty {}),
                ElemFunc::Cast => Func::Cast(pb::Empty {}),
            }),
        }
    }
}

impl TryFrom<pb::ElemFunc> for ElemFunc {
    type Error = Error;
    fn try_from(f: pb::ElemFunc) -> Result<Self> {
        use pb::elem_func::Func;
        Ok(match required(f.func, "function")? {
            // Table functions travel by their stable codes, so a new row needs no proto change.
            Func::Unary(u) => ElemFunc::Unary(
                UnaryFn::from_code(u)
                    .ok_or_else(|| wire(format!("unknown unary function value {u}")))?,
            ),
            Func::Binary(b) => ElemFunc::Binary(
                BinaryFn::from_code(b)
                    .ok_or_else(|| wire(format!("unknown binary function value {b}")))?,
            ),
            Func::Compare(c) => ElemFunc::Compare(enum_of::<pb::CmpFn>(c, "comparison")?.into()),
            Func::Where(_) => ElemFunc::Where,
            Func::Clip(_) => ElemFunc::Clip,
            Func::Cast(_) => ElemFunc::Cast,
        })
    }
}

impl From<&Instr> for pb::Instr {
    fn from(i: &Instr) -> Self {
        pb::Instr {
            func: Some(i.func.into()),
            args: i.args.to_vec(),
            dtype: pb::DType::from(i.dtype) as i32,
        }
    }
}

impl TryFrom<pb::Instr> for Instr {
    type Error = Error;
    fn try_from(i: pb::Instr) -> Result<Self> {
        Ok(Instr {
            func: required(i.func, "instruction function")?.try_into()?,
            args: SmallVec::from_vec(i.args),
            dtype: dtype_of(i.dtype)?,
        })
    }
}

impl TryFrom<&Leaf> for pb::Leaf {
    type Error = Error;
    fn try_from(l: &Leaf) -> Result<Self> {
        use pb::leaf::Kind;
        let kind = match l.kind {
            LeafKind::Input(i) => Kind::Input(u32_of(i, "input index")?),
            LeafKind::Random { seed, dist } => Kind::Random(pb::RandomLeaf {
                seed,
                dist: dist.code() as i32,
                params: if dist.params() == [0, 0] {
                    Vec::new()
                } else {
                    dist.params().to_vec()
                },
            }),
            LeafKind::Full(s) => Kind::Full(s.into()),
            LeafKind::Arange { start, step } => Kind::Arange(pb::ArangeLeaf { start, step }),
            LeafKind::Linspace {
                start,
                stop,
                step,
                num,
                endpoint,
            } => Kind::Linspace(pb::LinspaceLeaf {
                start,
                stop,
                step,
                num,
                endpoint,
            }),
        };
        Ok(pb::Leaf {
            kind: Some(kind),
            shape: u64s(&l.shape),
            rank: u32_of(l.rank, "leaf rank")?,
            dtype: pb::DType::from(l.dtype) as i32,
            axes: l
                .axes
                .iter()
                .map(|&a| u32_of(a, "leaf axis"))
                .collect::<Result<_>>()?,
            window_source: l.window.as_ref().map_or_else(Vec::new, |w| u64s(&w.source)),
            window_start: l.window.as_ref().map_or_else(Vec::new, |w| u64s(&w.start)),
            window_step: l.window.as_ref().map_or_else(Vec::new, |w| u64s(&w.step)),
        })
    }
}

impl TryFrom<pb::Leaf> for Leaf {
    type Error = Error;
    fn try_from(l: pb::Leaf) -> Result<Self> {
        use pb::leaf::Kind;
        let kind = match required(l.kind, "leaf kind")? {
            Kind::Input(i) => LeafKind::Input(i as usize),
            Kind::Random(r) => {
                let code = enum_of::<pb::Distribution>(r.dist, "distribution")? as u64;
                let params = match r.params[..] {
                    [] => [0, 0],
                    [a, b] => [a, b],
                    _ => {
                        return Err(wire(format!(
                            "random leaf: {} parameter words, expected 0 or 2",
                            r.params.len()
                        )));
                    }
                };
                let dist = Distribution::from_code(code, params)
                    .ok_or_else(|| wire(format!("unknown distribution {code}")))?;
                LeafKind::Random { seed: r.seed, dist }
            }
            Kind::Full(s) => LeafKind::Full(s.try_into()?),
            Kind::Arange(a) => LeafKind::Arange {
                start: a.start,
                step: a.step,
            },
            Kind::Linspace(s) => LeafKind::Linspace {
                start: s.start,
                stop: s.stop,
                step: s.step,
                num: s.num,
                endpoint: s.endpoint,
            },
        };
        Ok(Leaf {
            kind,
            shape: usizes_of(&l.shape, "leaf dimension")?,
            rank: l.rank as usize,
            dtype: dtype_of(l.dtype)?,
            axes: l.axes.iter().map(|&a| a as usize).collect(),
            // No window is three empty lists; the validator checks a window's lengths.
            window: if l.window_source.is_empty()
                && l.window_start.is_empty()
                && l.window_step.is_empty()
            {
                None
            } else {
                Some(LeafWindow {
                    source: usizes_of(&l.window_source, "leaf window dimension")?,
                    start: usizes_of(&l.window_start, "leaf window start")?,
                    step: usizes_of(&l.window_step, "leaf window step")?,
                })
            },
        })
    }
}

impl TryFrom<&ReduceSink> for pb::ReduceSink {
    type Error = Error;
    fn try_from(r: &ReduceSink) -> Result<Self> {
        Ok(pb::ReduceSink {
            reduction: r.reduction.code(),
            axes: u32s_of(&r.axes, "reduced axis")?,
            domain_shape: u64s(&r.domain_shape),
        })
    }
}

impl TryFrom<pb::ReduceSink> for ReduceSink {
    type Error = Error;
    fn try_from(r: pb::ReduceSink) -> Result<Self> {
        Ok(ReduceSink {
            reduction: reduction_of(r.reduction)?,
            axes: usizes_of_u32(&r.axes),
            domain_shape: usizes_of(&r.domain_shape, "domain dimension")?,
        })
    }
}

impl TryFrom<&Program> for pb::Program {
    type Error = Error;
    fn try_from(p: &Program) -> Result<Self> {
        Ok(pb::Program {
            domain: Some((&p.domain).into()),
            leaves: p
                .leaves
                .iter()
                .map(pb::Leaf::try_from)
                .collect::<Result<_>>()?,
            instrs: p.instrs.iter().map(pb::Instr::from).collect(),
            output: p.output,
            reduce: p
                .reduce
                .as_ref()
                .map(pb::ReduceSink::try_from)
                .transpose()?,
        })
    }
}

impl TryFrom<pb::Program> for Program {
    type Error = Error;
    fn try_from(p: pb::Program) -> Result<Self> {
        Ok(Program {
            domain: required(p.domain, "program domain")?.try_into()?,
            leaves: p
                .leaves
                .into_iter()
                .enumerate()
                .map(|(i, l)| Leaf::try_from(l).map_err(|e| within(e, format!("leaf {i}"))))
                .collect::<Result<_>>()?,
            instrs: p
                .instrs
                .into_iter()
                .enumerate()
                .map(|(i, x)| Instr::try_from(x).map_err(|e| within(e, format!("instruction {i}"))))
                .collect::<Result<_>>()?,
            output: p.output,
            reduce: p.reduce.map(ReduceSink::try_from).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use smallvec::smallvec;

    use crate::meta::{DType, Scalar};
    use crate::ops::{Finalize, Instr, LeafKind, Op, ReduceCombine, ReduceSink};
    use crate::wire::testing::*;

    #[test]
    fn every_elem_func_round_trips() {
        for f in all_elem_funcs() {
            for d in all_dtypes() {
                let op = program(
                    vec![
                        leaf(LeafKind::Input(0), d),
                        leaf(LeafKind::Full(Scalar::I64(2)), d),
                    ],
                    vec![Instr {
                        func: f,
                        args: smallvec![0, 1, 1],
                        dtype: d,
                    }],
                    None,
                );
                assert_round_trip(&op);
                if let Op::Blockwise(p) = through_wire(&op) {
                    assert_eq!(p.instrs[0].func, f);
                }
            }
        }
    }

    #[test]
    fn every_reduction_round_trips() {
        for r in all_reductions() {
            let sink = ReduceSink {
                reduction: r,
                axes: vec![0, 1],
                domain_shape: vec![7, 4],
            };
            assert_round_trip(&program(
                vec![leaf(LeafKind::Input(0), DType::F32)],
                vec![],
                Some(sink),
            ));
            for finalize in [
                None,
                Some(Finalize {
                    keepdims: true,
                    ddof: 1.5,
                    dtype: DType::F32,
                }),
            ] {
                let op = Op::ReduceCombine(ReduceCombine {
                    reduction: r,
                    axes: vec![1, 2],
                    group: vec![4, 1],
                    finalize,
                });
                assert_round_trip(&op);
            }
        }
    }

    #[test]
    fn every_leaf_kind_round_trips() {
        for kind in all_leaf_kinds() {
            for d in all_dtypes() {
                let op = program(vec![leaf(kind.clone(), d)], vec![], None);
                assert_round_trip(&op);
                if let Op::Blockwise(p) = through_wire(&op) {
                    // NaN != NaN, so compare the Debug text (exact for floats).
                    assert_eq!(
                        format!("{:?}", p.leaves[0]),
                        format!("{:?}", leaf(kind.clone(), d))
                    );
                }
            }
        }
    }
}
