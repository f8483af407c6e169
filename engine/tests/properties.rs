//! Property tests: random shapes (rank 1–3, dims 1–12) with random chunkings, random chains of
//! elementwise ops, a reduction over a random axis subset and a random slice, all compared with the
//! same computation written directly with ndarray.

mod common;

use common::*;
use ndarray::{ArrayD, IxDyn, SliceInfoElem};
use proptest::prelude::*;
use proptest::test_runner::Config;
use tessera::{Array, ReduceOptions, default_rng, from_array, where_};

fn config() -> Config {
    Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Chunk sizes for an axis of length `n`: cut at a random subset of the positions 1..n.
fn axis_chunks(n: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(any::<bool>(), n.saturating_sub(1)).prop_map(move |cuts| {
        let mut sizes = Vec::new();
        let mut last = 0;
        for (i, &c) in cuts.iter().enumerate() {
            if c {
                sizes.push(i + 1 - last);
                last = i + 1;
            }
        }
        sizes.push(n - last);
        sizes
    })
}

fn chunks_for(shape: Vec<usize>) -> impl Strategy<Value = Vec<Vec<usize>>> {
    shape.into_iter().map(axis_chunks).collect::<Vec<_>>()
}

/// A shape of rank 1–3 with dims 1–12 and two independent chunkings of it.
fn shape_and_two_chunkings() -> impl Strategy<Value = (Vec<usize>, Vec<Vec<usize>>, Vec<Vec<usize>>)>
{
    prop::collection::vec(1usize..=12, 1..=3).prop_flat_map(|shape| {
        (
            Just(shape.clone()),
            chunks_for(shape.clone()),
            chunks_for(shape),
        )
    })
}

#[derive(Clone, Copy, Debug)]
enum Step {
    AddScalar(f64),
    MulScalar(f64),
    ScalarMinus(f64),
    AddOther,
    MulOther,
    SubRow,
    Abs,
    Neg,
    Square,
    Sin,
    Clip(f64),
    MaxScalar(f64),
    WhereNegative,
    Round,
    AddRandom,
    AddArange,
}

fn step() -> impl Strategy<Value = Step> {
    let small = (-40i32..40).prop_map(|v| v as f64 / 8.0);
    prop_oneof![
        small.clone().prop_map(Step::AddScalar),
        small.clone().prop_map(Step::MulScalar),
        small.clone().prop_map(Step::ScalarMinus),
        Just(Step::AddOther),
        Just(Step::MulOther),
        Just(Step::SubRow),
        Just(Step::Abs),
        Just(Step::Neg),
        Just(Step::Square),
        Just(Step::Sin),
        (1i32..40).prop_map(|v| Step::Clip(v as f64 / 4.0)),
        small.prop_map(Step::MaxScalar),
        Just(Step::WhereNegative),
        Just(Step::Round),
        Just(Step::AddRandom),
        Just(Step::AddArange),
    ]
}

/// The lazy array and its oracle, advanced together by one step.
fn apply_step(
    step: Step,
    lazy: &Array,
    oracle: &ArrayD<f64>,
    other: (&Array, &ArrayD<f64>),
    row: (&Array, &ArrayD<f64>),
    generated: (&Array, &ArrayD<f64>, &Array, &ArrayD<f64>),
) -> (Array, ArrayD<f64>) {
    let r = |x: tessera::Result<Array>| x.unwrap();
    match step {
        Step::AddScalar(c) => (r((lazy + c).checked()), oracle.mapv(|v| v + c)),
        Step::MulScalar(c) => (r((lazy * c).checked()), oracle.mapv(|v| v * c)),
        Step::ScalarMinus(c) => (r((c - lazy).checked()), oracle.mapv(|v| c - v)),
        Step::AddOther => (
            r((lazy + other.0).checked()),
            zip_with(oracle, other.1, |a, b| a + b),
        ),
        Step::MulOther => (
            r((lazy * other.0).checked()),
            zip_with(oracle, other.1, |a, b| a * b),
        ),
        Step::SubRow => (
            r((lazy - row.0).checked()),
            zip_with(oracle, row.1, |a, b| a - b),
        ),
        Step::Abs => (r(lazy.abs()), oracle.mapv(f64::abs)),
        Step::Neg => (r((-lazy).checked()), oracle.mapv(|v| -v)),
        Step::Square => (r(lazy.square()), oracle.mapv(|v| v * v)),
        Step::Sin => (r(lazy.sin()), oracle.mapv(f64::sin)),
        Step::Clip(c) => (r(lazy.clip(-c, c)), oracle.mapv(|v| v.clamp(-c, c))),
        Step::MaxScalar(c) => (r(lazy.maximum(c)), oracle.mapv(|v| v.max(c))),
        Step::WhereNegative => {
            let neg = r((-lazy).checked());
            (
                r(where_(r(lazy.lt(0.0f64)), &neg, lazy)),
                oracle.mapv(|v| if v < 0.0 { -v } else { v }),
            )
        }
        Step::Round => (r(lazy.round()), oracle.mapv(f64::round_ties_even)),
        Step::AddRandom => (
            r((lazy + generated.0).checked()),
            zip_with(oracle, generated.1, |a, b| a + b),
        ),
        Step::AddArange => (
            r((lazy * generated.2).checked()),
            zip_with(oracle, generated.3, |a, b| a * b),
        ),
    }
}

#[derive(Clone, Copy, Debug)]
enum Red {
    Sum,
    Mean,
    Max,
    Min,
    Var,
    Std,
    ArgMax,
    ArgMin,
    None,
}

fn red() -> impl Strategy<Value = Red> {
    prop_oneof![
        Just(Red::Sum),
        Just(Red::Mean),
        Just(Red::Max),
        Just(Red::Min),
        Just(Red::Var),
        Just(Red::Std),
        Just(Red::ArgMax),
        Just(Red::ArgMin),
        Just(Red::None),
    ]
}

/// One axis of a random slice, resolved against the axis length when applied.
#[derive(Clone, Copy, Debug)]
enum AxisSel {
    Full,
    Range {
        start: isize,
        end: Option<isize>,
        step: isize,
    },
    Index(isize),
}

fn axis_sel() -> impl Strategy<Value = AxisSel> {
    prop_oneof![
        Just(AxisSel::Full),
        (
            -15isize..15,
            prop::option::of(-15isize..15),
            prop_oneof![-3isize..=-1, 1isize..=3]
        )
            .prop_map(|(start, end, step)| AxisSel::Range { start, end, step }),
        (-15isize..15).prop_map(AxisSel::Index),
    ]
}

fn to_slice_info(sel: &[AxisSel], shape: &[usize]) -> Vec<SliceInfoElem> {
    shape
        .iter()
        .zip(sel.iter().chain(std::iter::repeat(&AxisSel::Full)))
        .map(|(&n, s)| match *s {
            AxisSel::Full => SliceInfoElem::Slice {
                start: 0,
                end: None,
                step: 1,
            },
            AxisSel::Range { start, end, step } => SliceInfoElem::Slice { start, end, step },
            // Keep integer indices in range (out-of-range indices are an error, tested elsewhere).
            AxisSel::Index(i) if n > 0 => {
                let n = n as isize;
                SliceInfoElem::Index(if i < 0 { -(i.abs() % n) - 1 } else { i % n })
            }
            AxisSel::Index(_) => SliceInfoElem::Slice {
                start: 0,
                end: None,
                step: 1,
            },
        })
        .collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn elementwise_chain_reduction_and_slice(
        (shape, chunks_a, chunks_b) in shape_and_two_chunkings(),
        steps in prop::collection::vec(step(), 0..6),
        reduction in red(),
        axis_mask in 0usize..8,
        keepdims in any::<bool>(),
        split_every in 2usize..6,
        sel in prop::collection::vec(axis_sel(), 0..=3),
        seed in 0u64..1000,
    ) {
        let ndim = shape.len();
        let x = sample::<f64>(&shape, seed);
        let y = sample::<f64>(&shape, seed + 1);
        let row_shape = &shape[ndim - 1..];
        let row = sample::<f64>(row_shape, seed + 2);
        let lx = from_array(x.clone(), chunks_a.clone()).unwrap();
        let ly = from_array(y.clone(), chunks_b.clone()).unwrap();
        let lrow = from_array(row.clone(), vec![chunks_b[ndim - 1].clone()]).unwrap();

        // Generated sources: random values chunked like y, and an arange along the last axis.
        let lrand = default_rng(seed).random(&shape, chunks_b.clone()).unwrap();
        let rand = lrand.compute::<f64>().unwrap();
        let n_last = shape[ndim - 1];
        let lar = tessera::arange(1.0f64, 1.0 + n_last as f64 / 4.0, 0.25, [3]).unwrap();
        let ar = ArrayD::from_shape_fn(IxDyn(&[n_last]), |i| 1.0 + i[0] as f64 * 0.25);
        prop_assert_eq!(lar.shape(), &[n_last]);

        let (mut lazy, mut oracle) = (lx, x);
        for &s in &steps {
            let (l, o) = apply_step(
                s,
                &lazy,
                &oracle,
                (&ly, &y),
                (&lrow, &row),
                (&lrand, &rand, &lar, &ar),
            );
            lazy = l;
            oracle = o;
        }

        let mut axes: Vec<usize> = (0..ndim).filter(|a| axis_mask >> a & 1 == 1).collect();
        if matches!(reduction, Red::ArgMax | Red::ArgMin) && axes.len() > 1 {
            axes.truncate(1);
        }
        let reduced: Option<(Array, ArrayD<f64>)> = if axes.is_empty() && !matches!(reduction, Red::Sum) {
            None
        } else {
            let opts = ReduceOptions {
                axes: Some(axes.iter().map(|&a| a as isize - if keepdims { ndim as isize } else { 0 }).collect()),
                keepdims,
                split_every,
                ddof: 0.0,
            };
            let lanes = |f: &dyn Fn(&[f64]) -> f64| reduce_lanes(&oracle, &axes, keepdims, f);
            match reduction {
                Red::Sum => Some((lazy.sum_with(&opts).unwrap(), lanes(&|l| l.iter().sum()))),
                Red::Mean => Some((lazy.mean_with(&opts).unwrap(), lanes(&|l| l.iter().sum::<f64>() / l.len() as f64))),
                Red::Max => Some((lazy.max_with(&opts).unwrap(), lanes(&|l| nan_extreme(l, false)))),
                Red::Min => Some((lazy.min_with(&opts).unwrap(), lanes(&|l| nan_extreme(l, true)))),
                Red::Var => Some((lazy.var_with(&opts).unwrap(), lanes(&|l| two_pass_var(l, 0.0)))),
                Red::Std => Some((lazy.std_with(&opts).unwrap(), lanes(&|l| two_pass_var(l, 0.0).sqrt()))),
                Red::ArgMax | Red::ArgMin => {
                    let is_min = matches!(reduction, Red::ArgMin);
                    let l = if is_min { lazy.argmin_with(&opts) } else { lazy.argmax_with(&opts) };
                    // Compare indices as floats: exact for these sizes.
                    let idx = reduce_lanes(&oracle, &axes, keepdims, |l| arg_best(l, is_min) as f64);
                    Some((l.unwrap().astype(tessera::DType::F64).unwrap(), idx))
                }
                Red::None => None,
            }
        };
        let (lazy, oracle) = reduced.unwrap_or((lazy, oracle));

        let info = to_slice_info(&sel, oracle.shape());
        let sliced = lazy.slice(&info).unwrap();
        let expected = oracle_slice(&oracle, &info);
        let tol = Tol { rtol: 1e-9, atol: 1e-9 };
        in_context(format!("steps {steps:?} {reduction:?} over {axes:?} slice {info:?}"), || {
            check_tol(&sliced, &expected, tol)
        });
    }

    #[test]
    fn broadcasting_between_random_chunkings(
        (shape, chunks_a, chunks_b) in shape_and_two_chunkings(),
        ones_mask in 0usize..8,
        drop in 0usize..3,
        seed in 0u64..1000,
    ) {
        // b's shape: a's with some axes set to 1 and some leading axes dropped.
        let ndim = shape.len();
        let drop = drop.min(ndim - 1);
        let b_shape: Vec<usize> = (drop..ndim)
            .map(|a| if ones_mask >> a & 1 == 1 { 1 } else { shape[a] })
            .collect();
        let b_chunks: Vec<Vec<usize>> = (drop..ndim)
            .map(|a| if ones_mask >> a & 1 == 1 { vec![1] } else { chunks_b[a].clone() })
            .collect();
        let x = sample::<f64>(&shape, seed);
        let y = sample::<i64>(&b_shape, seed + 1);
        let lx = from_array(x.clone(), chunks_a).unwrap();
        let ly = from_array(y.clone(), b_chunks).unwrap();
        let yf = y.mapv(|v| v as f64);
        check(&(&lx + &ly), &zip_with(&x, &yf, |a, b| a + b));
        check(&(&ly - &lx), &zip_with(&yf, &x, |a, b| a - b));
        check(&(&ly * &ly), &y.mapv(|v| v * v));
        check(&lx.gt(&ly).unwrap(), &zip_with(&x, &yf, |a, b| a > b));
    }

    #[test]
    fn structure_chains(
        (shape, chunks_a, chunks_b) in shape_and_two_chunkings(),
        perm_seed in 0usize..6,
        sel in prop::collection::vec(axis_sel(), 0..=3),
        seed in 0u64..1000,
    ) {
        let ndim = shape.len();
        let x = iota(&shape).mapv(|v| v * 3 - 7 + seed as i64);
        let lx = from_array(x.clone(), chunks_a).unwrap();
        // A permutation picked by index.
        let mut axes: Vec<usize> = (0..ndim).collect();
        let mut perm = Vec::new();
        let mut k = perm_seed;
        while !axes.is_empty() {
            perm.push(axes.remove(k % axes.len()));
            k /= 2;
        }
        let t = lx.permute_axes(&perm).unwrap();
        let xt = x.view().permuted_axes(IxDyn(&perm)).to_owned();
        let info = to_slice_info(&sel, xt.shape());
        let s = t.slice(&info).unwrap();
        let xs = oracle_slice(&xt, &info);
        check(&s, &xs);
        let flat = s.reshape(&[-1]).unwrap();
        let xf = oracle_reshape(&xs, &[xs.len()]);
        check(&flat, &xf);
        // Back to the original shape from the flat array, rechunked like the second chunking.
        let back = lx.reshape(&[-1]).unwrap()
            .reshape(&shape.iter().map(|&d| d as isize).collect::<Vec<_>>()).unwrap()
            .rechunk(chunks_b).unwrap();
        check(&back, &x);
    }

    #[test]
    fn random_values_do_not_depend_on_chunking(
        (shape, chunks_a, chunks_b) in shape_and_two_chunkings(),
        seed in any::<u64>(),
    ) {
        let rng = default_rng(seed);
        let a = rng.random(&shape, chunks_a.clone()).unwrap().compute_dyn().unwrap();
        let b = rng.random(&shape, chunks_b.clone()).unwrap().compute_dyn().unwrap();
        assert_bits_eq(&a, &b);
        let n1 = rng.standard_normal(&shape, chunks_a).unwrap().compute_dyn().unwrap();
        let n2 = rng.standard_normal(&shape, chunks_b).unwrap().compute_dyn().unwrap();
        assert_bits_eq(&n1, &n2);
    }
}
