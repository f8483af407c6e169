//! Helpers shared by the wire module's tests: every variant of each enum (by exhaustive matches, so a
//! new variant is a compile error until listed) and round-trip helpers.

use std::sync::Arc;

use prost::Message;

use super::meta::static_name;
use super::pb;
use crate::array::Array;
use crate::default_rng;
use crate::error::Error;
use crate::graph::Layer;
use crate::graph::Tokenizer;
use crate::meta::{Chunks, DType, Scalar};
use crate::ops::{
    BinaryFn, CmpFn, Distribution, ElemFunc, Instr, Leaf, LeafKind, Op, ParamF64, Program,
    ReduceSink, Reduction, UnaryFn,
};

// -----------------------------------------------------------------------------------------
// every variant, by exhaustive matches: a new variant is a compile error here until it is listed

/// The function tables generate `ALL` from the same rows as the enums, so these are complete.
pub(super) fn all_unary() -> Vec<UnaryFn> {
    UnaryFn::ALL.to_vec()
}

pub(super) fn all_binary() -> Vec<BinaryFn> {
    BinaryFn::ALL.to_vec()
}

pub(super) fn all_cmp() -> Vec<CmpFn> {
    use CmpFn::*;
    let all = vec![Eq, Ne, Lt, Le, Gt, Ge];
    for f in &all {
        match f {
            Eq | Ne | Lt | Le | Gt | Ge => {}
        }
    }
    all
}

pub(super) fn all_elem_funcs() -> Vec<ElemFunc> {
    let mut all: Vec<ElemFunc> = all_unary().into_iter().map(ElemFunc::Unary).collect();
    all.extend(all_binary().into_iter().map(ElemFunc::Binary));
    all.extend(all_cmp().into_iter().map(ElemFunc::Compare));
    all.extend([ElemFunc::Where, ElemFunc::Clip, ElemFunc::Cast]);
    for f in &all {
        match f {
            ElemFunc::Unary(_)
            | ElemFunc::Binary(_)
            | ElemFunc::Compare(_)
            | ElemFunc::Where
            | ElemFunc::Clip
            | ElemFunc::Cast => {}
        }
    }
    all
}

pub(super) fn all_reductions() -> Vec<Reduction> {
    Reduction::ALL.to_vec()
}

pub(super) fn all_dtypes() -> Vec<DType> {
    let all = DType::ALL.to_vec();
    for d in &all {
        match d {
            DType::Bool
            | DType::I32
            | DType::U8
            | DType::U64
            | DType::I64
            | DType::F32
            | DType::F64
            | DType::C128 => {}
        }
    }
    all
}

/// One of each distribution (the match makes a new one a compile error here).
pub(super) fn all_distributions() -> Vec<Distribution> {
    let f = ParamF64::new;
    let all = vec![
        Distribution::Uniform,
        Distribution::StandardNormal,
        Distribution::Integers {
            low: i64::MIN,
            high: -3,
        },
        Distribution::StandardExponential,
        Distribution::StandardGamma { shape: f(0.25) },
        Distribution::Beta {
            a: f(2.0),
            b: f(0.5),
        },
        Distribution::Poisson { lam: f(12.5) },
        Distribution::Binomial {
            n: 1 << 40,
            p: f(0.125),
        },
        Distribution::Permutation { n: 1 << 33 },
    ];
    for d in &all {
        match d {
            Distribution::Uniform
            | Distribution::StandardNormal
            | Distribution::Integers { .. }
            | Distribution::StandardExponential
            | Distribution::StandardGamma { .. }
            | Distribution::Beta { .. }
            | Distribution::Poisson { .. }
            | Distribution::Binomial { .. }
            | Distribution::Permutation { .. } => {}
        }
    }
    all
}

pub(super) fn all_leaf_kinds() -> Vec<LeafKind> {
    let mut all = vec![LeafKind::Input(3)];
    all.extend(
        all_distributions()
            .into_iter()
            .enumerate()
            .map(|(i, dist)| LeafKind::Random {
                seed: u64::MAX - i as u64,
                dist,
            }),
    );
    all.extend([
        LeafKind::Full(Scalar::Bool(true)),
        LeafKind::Full(Scalar::I64(i64::MIN)),
        LeafKind::Full(Scalar::F32(-0.0)),
        LeafKind::Full(Scalar::F64(f64::NAN)),
        LeafKind::Arange {
            start: -2.5,
            step: 0.1,
        },
        LeafKind::Linspace {
            start: 0.0,
            stop: 1.0,
            step: 0.25,
            num: 5,
            endpoint: true,
        },
    ]);
    for k in &all {
        match k {
            LeafKind::Input(_)
            | LeafKind::Random { .. }
            | LeafKind::Full(_)
            | LeafKind::Arange { .. }
            | LeafKind::Linspace { .. } => {}
        }
    }
    all
}

// -----------------------------------------------------------------------------------------
// helpers

pub(super) fn token(op: &Op) -> u64 {
    let mut t = Tokenizer::new(op.name());
    op.tokenize(&mut t);
    t.finish()
}

/// Op → message → bytes → message → Op.
pub(super) fn through_wire(op: &Op) -> Op {
    let msg = pb::Op::try_from(op).unwrap();
    let bytes = msg.encode_to_vec();
    let back = pb::Op::decode(bytes.as_slice()).unwrap();
    // Bytes, not messages: NaN constants make equal messages compare unequal.
    assert_eq!(back.encode_to_vec(), bytes);
    Op::try_from(back).unwrap()
}

/// Op has no `PartialEq`: equal Debug output (every field, floats printed exactly) and equal tokens.
pub(super) fn assert_round_trip(op: &Op) {
    let back = through_wire(op);
    assert_eq!(format!("{op:?}"), format!("{back:?}"));
    assert_eq!(token(op), token(&back));
    assert_eq!(static_name(op.name()), Some(op.name()));
}

pub(super) fn top(a: &Array) -> Arc<Layer> {
    a.graph().get(a.id()).unwrap().clone()
}

pub(super) fn program(leaves: Vec<Leaf>, instrs: Vec<Instr>, reduce: Option<ReduceSink>) -> Op {
    let nvalues = (leaves.len() + instrs.len()) as u32;
    Op::Blockwise(Box::new(Program {
        domain: Chunks::from_sizes(vec![vec![3, 3, 1], vec![4]]),
        leaves,
        instrs,
        output: nvalues.saturating_sub(1),
        reduce,
    }))
}

pub(super) fn leaf(kind: LeafKind, dtype: DType) -> Leaf {
    Leaf {
        kind,
        shape: vec![7, 1],
        rank: 1,
        dtype,
        axes: Vec::new(),
        window: None,
    }
}

pub(super) fn x() -> Array {
    default_rng(5).random(&[12, 10], [5, 4]).unwrap()
}

/// The message of a wire error; any other error fails the test.
pub(super) fn what(e: Error) -> String {
    match e {
        Error::Wire { what } => what,
        other => panic!("expected a wire error, got {other}"),
    }
}
