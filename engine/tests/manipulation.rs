//! numpy's manipulation functions (squeeze, expand_dims, broadcast_to/broadcast_arrays, flip,
//! roll, moveaxis, swapaxes, ravel, tile, pad in every mode, diff, triu/tril, diag/diagonal,
//! eye/identity, meshgrid, atleast_*d, h/v/dstack, split/array_split, block) against oracles
//! written with plain ndarray indexing, on regular, irregular, 0-d and empty cases.

mod common;

use common::*;
use ndarray::{ArrayD, Axis, Dimension, IxDyn, arr1, arr2};
use proptest::prelude::*;
use tessera::{
    DType, Nested, PadMode, Sections, array_split, atleast_1d, atleast_2d, atleast_3d, block,
    broadcast_arrays, dstack, eye, from_array, hstack, identity, meshgrid, split, vstack,
};

fn flip_oracle<T: Clone>(a: &ArrayD<T>, axis: usize) -> ArrayD<T> {
    let mut b = a.clone();
    b.invert_axis(Axis(axis));
    b.as_standard_layout().to_owned()
}

/// Element `i` along `axis` of the result is element `src(i)` of `a` (an index map oracle).
fn remap<T: Clone>(
    a: &ArrayD<T>,
    axis: usize,
    len: usize,
    src: impl Fn(usize) -> usize,
) -> ArrayD<T> {
    let mut shape = a.shape().to_vec();
    shape[axis] = len;
    ArrayD::from_shape_fn(IxDyn(&shape), |ix| {
        let mut j = ix.slice().to_vec();
        j[axis] = src(j[axis]);
        a[IxDyn(&j)].clone()
    })
}

#[test]
fn flip_roll_moveaxis_every_rank_and_chunking() {
    for shape in shapes_0_to_4() {
        let data = iota(&shape);
        for (cname, spec) in chunkings(&shape) {
            let x = from_array(data.clone(), spec).unwrap();
            in_context(format!("{shape:?} {cname}"), || {
                let mut all = data.clone();
                for a in 0..shape.len() {
                    check(&x.flip(Some(a as isize)).unwrap(), &flip_oracle(&data, a));
                    all = flip_oracle(&all, a);
                    let n = shape[a];
                    for shift in [-7isize, -1, 0, 1, 3, 40] {
                        let s = shift.rem_euclid(n as isize) as usize;
                        check(
                            &x.roll(shift, Some(a as isize)).unwrap(),
                            &remap(&data, a, n, |i| (i + n - s) % n),
                        );
                    }
                    let last = shape.len() as isize - 1;
                    let moved = x.moveaxis(a as isize, last).unwrap();
                    let mut perm: Vec<usize> = (0..shape.len()).filter(|&d| d != a).collect();
                    perm.push(a);
                    let want = data
                        .clone()
                        .permuted_axes(IxDyn(&perm))
                        .as_standard_layout()
                        .to_owned();
                    check(&moved, &want);
                    let sw = x.swapaxes(a as isize, 0).unwrap();
                    let mut p: Vec<usize> = (0..shape.len()).collect();
                    p.swap(a, 0);
                    check(
                        &sw,
                        &data
                            .clone()
                            .permuted_axes(IxDyn(&p))
                            .as_standard_layout()
                            .to_owned(),
                    );
                }
                check(&x.flip(None).unwrap(), &all);
                // roll without an axis rolls the flattened array.
                let flat: Vec<i64> = data.iter().copied().collect();
                let n = flat.len();
                let rolled: Vec<i64> = (0..n).map(|i| flat[(i + n - 2 % n.max(1)) % n]).collect();
                check(
                    &x.roll(2, None).unwrap(),
                    &ArrayD::from_shape_vec(IxDyn(&shape), rolled).unwrap(),
                );
                check(
                    &x.ravel().unwrap(),
                    &ArrayD::from_shape_vec(IxDyn(&[n]), flat).unwrap(),
                );
            });
        }
    }
}

#[test]
fn fliplr_flipud_need_axes() {
    let d = iota(&[3, 4]);
    let x = from_array(d.clone(), [2, 3]).unwrap();
    check(&x.fliplr().unwrap(), &flip_oracle(&d, 1));
    check(&x.flipud().unwrap(), &flip_oracle(&d, 0));
    let v = from_array(iota(&[3]), [2]).unwrap();
    let msg = v.fliplr().unwrap_err().to_string();
    assert!(msg.contains("fliplr") && msg.contains("[3]"), "{msg}");
}

#[test]
fn squeeze_expand_dims_atleast() {
    let d = iota(&[1, 4, 1, 3]);
    let x = from_array(d.clone(), [1, 3, 1, 2]).unwrap();
    check(
        &x.squeeze(None).unwrap(),
        &d.clone().into_shape_with_order(IxDyn(&[4, 3])).unwrap(),
    );
    check(
        &x.squeeze(Some(&[2])).unwrap(),
        &d.clone().into_shape_with_order(IxDyn(&[1, 4, 3])).unwrap(),
    );
    let err = x.squeeze(Some(&[1])).unwrap_err().to_string();
    assert!(err.contains("axis 1") && err.contains("length 4"), "{err}");
    let y = from_array(iota(&[4, 3]), [3, 2]).unwrap();
    for (axis, shape) in [
        (0isize, vec![1, 4, 3]),
        (1, vec![4, 1, 3]),
        (-1, vec![4, 3, 1]),
    ] {
        check(
            &y.expand_dims(axis).unwrap(),
            &iota(&[4, 3]).into_shape_with_order(IxDyn(&shape)).unwrap(),
        );
    }
    let s = from_array(ArrayD::from_elem(IxDyn(&[]), 5i64), ChunkSpecEmpty::spec()).unwrap();
    assert_eq!(atleast_1d(&s).unwrap().shape(), &[1]);
    assert_eq!(atleast_2d(&s).unwrap().shape(), &[1, 1]);
    assert_eq!(atleast_3d(&s).unwrap().shape(), &[1, 1, 1]);
    let v = from_array(iota(&[5]), [2]).unwrap();
    assert_eq!(atleast_2d(&v).unwrap().shape(), &[1, 5]);
    assert_eq!(atleast_3d(&v).unwrap().shape(), &[1, 5, 1]);
    assert_eq!(atleast_3d(&y).unwrap().shape(), &[4, 3, 1]);
    check(
        &atleast_3d(&v).unwrap(),
        &iota(&[5]).into_shape_with_order(IxDyn(&[1, 5, 1])).unwrap(),
    );
    assert_eq!(
        atleast_3d(&s).unwrap().compute::<i64>().unwrap()[[0, 0, 0]],
        5
    );
}

/// A 0-d chunk spec.
struct ChunkSpecEmpty;
impl ChunkSpecEmpty {
    fn spec() -> tessera::ChunkSpec {
        tessera::ChunkSpec::Block(vec![])
    }
}

#[test]
fn broadcast_to_and_broadcast_arrays() {
    let d = iota(&[3, 1]);
    let x = from_array(d.clone(), [2, 1]).unwrap();
    let b = x.broadcast_to(&[2, 3, 4]).unwrap();
    check(&b, &d.broadcast(IxDyn(&[2, 3, 4])).unwrap().to_owned());
    assert!(matches!(
        x.broadcast_to(&[2, 4]),
        Err(tessera::Error::Broadcast { .. })
    ));
    assert!(x.broadcast_to(&[3]).is_err());
    let y = from_array(iota(&[4]), [3]).unwrap();
    let out = broadcast_arrays(&[&x, &y]).unwrap();
    check(&out[0], &d.broadcast(IxDyn(&[3, 4])).unwrap().to_owned());
    check(
        &out[1],
        &iota(&[4]).broadcast(IxDyn(&[3, 4])).unwrap().to_owned(),
    );
    assert_eq!(out[0].chunks(), out[1].chunks());
}

#[test]
fn tile_matches_index_oracle() {
    let d = iota(&[3, 2]);
    let x = from_array(d.clone(), [2, 1]).unwrap();
    for reps in [
        vec![2usize],
        vec![2, 3],
        vec![1, 1],
        vec![2, 1, 2],
        vec![0, 2],
    ] {
        let mut a = d.clone();
        while a.ndim() < reps.len() {
            a.insert_axis_inplace(Axis(0));
        }
        let off = a.ndim() - reps.len();
        for (i, &r) in reps.iter().enumerate() {
            let ax = off + i;
            let n = a.shape()[ax];
            a = remap(&a, ax, n * r, |j| j % n.max(1));
        }
        in_context(format!("{reps:?}"), || check(&x.tile(&reps).unwrap(), &a));
    }
}

fn pad_index(i: isize, n: isize, mode: PadMode) -> usize {
    (match mode {
        PadMode::Edge => i.clamp(0, n - 1),
        PadMode::Wrap => i.rem_euclid(n),
        PadMode::Reflect => {
            if i < 0 {
                -i
            } else if i >= n {
                2 * (n - 1) - i
            } else {
                i
            }
        }
        PadMode::Symmetric => {
            if i < 0 {
                -i - 1
            } else if i >= n {
                2 * n - 1 - i
            } else {
                i
            }
        }
        PadMode::Constant(_) => unreachable!(),
    }) as usize
}

#[test]
fn pad_every_mode_against_index_oracle() {
    let shape = [5, 4];
    let d = iota(&shape);
    let widths = [(2usize, 3usize), (3, 1)];
    for (cname, spec) in chunkings(&shape) {
        let x = from_array(d.clone(), spec).unwrap();
        for mode in [
            PadMode::Edge,
            PadMode::Wrap,
            PadMode::Reflect,
            PadMode::Symmetric,
        ] {
            let want = ArrayD::from_shape_fn(IxDyn(&[10, 8]), |ix| {
                let i = pad_index(ix[0] as isize - 2, 5, mode);
                let j = pad_index(ix[1] as isize - 3, 4, mode);
                d[[i, j]]
            });
            in_context(format!("{cname} {mode:?}"), || {
                check(&x.pad(&widths, mode).unwrap(), &want)
            });
        }
        let want = ArrayD::from_shape_fn(IxDyn(&[10, 8]), |ix| {
            let (i, j) = (ix[0] as isize - 2, ix[1] as isize - 3);
            if (0..5).contains(&i) && (0..4).contains(&j) {
                d[[i as usize, j as usize]]
            } else {
                -1
            }
        });
        check(
            &x.pad(&widths, PadMode::Constant((-1i64).into())).unwrap(),
            &want,
        );
    }
    // numpy's documented examples.
    let v = from_array(arr1(&[1i64, 2, 3, 4, 5]).into_dyn(), [2]).unwrap();
    let got = |m| {
        v.pad(&[(2, 3)], m)
            .unwrap()
            .compute::<i64>()
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>()
    };
    assert_eq!(got(PadMode::Reflect), vec![3, 2, 1, 2, 3, 4, 5, 4, 3, 2]);
    assert_eq!(got(PadMode::Symmetric), vec![2, 1, 1, 2, 3, 4, 5, 5, 4, 3]);
    assert_eq!(got(PadMode::Wrap), vec![4, 5, 1, 2, 3, 4, 5, 1, 2, 3]);
    assert_eq!(got(PadMode::Edge), vec![1, 1, 1, 2, 3, 4, 5, 5, 5, 5]);
    let err = v.pad(&[(5, 0)], PadMode::Reflect).unwrap_err().to_string();
    assert!(err.contains("axis 0") && err.contains("length 5"), "{err}");
    assert!(v.pad(&[(1, 1), (1, 1)], PadMode::Edge).is_err());
}

#[test]
fn diff_every_order() {
    for shape in [vec![17], vec![6, 7], vec![3, 4, 5]] {
        let d = sample::<i64>(&shape, 100);
        let f = sample::<f64>(&shape, 101);
        for (cname, spec) in chunkings(&shape) {
            let x = from_array(d.clone(), spec.clone()).unwrap();
            let y = from_array(f.clone(), spec).unwrap();
            for axis in 0..shape.len() {
                let mut want = d.clone();
                let mut wantf = f.clone();
                for n in 1..=3 {
                    let len = want.shape()[axis];
                    want =
                        remap(&want, axis, len - 1, |i| i + 1) - remap(&want, axis, len - 1, |i| i);
                    wantf = remap(&wantf, axis, len - 1, |i| i + 1)
                        - remap(&wantf, axis, len - 1, |i| i);
                    in_context(format!("{shape:?} {cname} axis {axis} n {n}"), || {
                        check(&x.diff(n, axis as isize).unwrap(), &want);
                        check(&y.diff(n, axis as isize).unwrap(), &wantf);
                    });
                }
            }
        }
    }
    let b = from_array(arr1(&[true, true, false, true]).into_dyn(), [3]).unwrap();
    let got = b.diff(1, 0).unwrap();
    assert_eq!(got.dtype(), DType::Bool);
    assert_eq!(
        got.compute::<bool>()
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![false, true, true]
    );
}

#[test]
fn triangles_diagonals_and_eye() {
    let shape = [6, 8];
    let f = sample::<f64>(&shape, 102);
    for (cname, spec) in chunkings(&shape) {
        let x = from_array(f.clone(), spec).unwrap();
        for k in [-7isize, -2, 0, 1, 3, 9] {
            in_context(format!("{cname} k {k}"), || {
                let triu = ArrayD::from_shape_fn(IxDyn(&shape), |ix| {
                    if ix[1] as isize - ix[0] as isize >= k {
                        f[[ix[0], ix[1]]]
                    } else {
                        0.0
                    }
                });
                let tril = ArrayD::from_shape_fn(IxDyn(&shape), |ix| {
                    if ix[1] as isize - ix[0] as isize <= k {
                        f[[ix[0], ix[1]]]
                    } else {
                        0.0
                    }
                });
                check(&x.triu(k).unwrap(), &triu);
                check(&x.tril(k).unwrap(), &tril);
                let diag: Vec<f64> = (0..6isize)
                    .filter(|&i| (0..8).contains(&(i + k)))
                    .map(|i| f[[i as usize, (i + k) as usize]])
                    .collect();
                let n = diag.len();
                check_tol(
                    &x.diagonal(k).unwrap(),
                    &ArrayD::from_shape_vec(IxDyn(&[n]), diag).unwrap(),
                    EXACT,
                );
                let e = eye(6, Some(8), k, DType::F64, [4, 3]).unwrap();
                let want = ArrayD::from_shape_fn(IxDyn(&shape), |ix| {
                    (ix[1] as isize - ix[0] as isize == k) as u8 as f64
                });
                check(&e, &want);
            });
        }
    }
    // -0.0 and NaN on the diagonal survive; bool diagonals too.
    let m = from_array(
        arr2(&[[-0.0, 1.0], [f64::NAN, f64::NAN]]).into_dyn(),
        [1, 1],
    )
    .unwrap();
    let d = m
        .diagonal(0)
        .unwrap()
        .compute::<f64>()
        .unwrap()
        .into_iter()
        .collect::<Vec<_>>();
    assert!(
        d[0] == 0.0 && d[0].is_sign_negative() && d[1].is_nan(),
        "{d:?}"
    );
    let b = from_array(arr2(&[[true, false], [true, true]]).into_dyn(), [1, 2]).unwrap();
    assert_eq!(
        b.diagonal(-1)
            .unwrap()
            .compute::<bool>()
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![true]
    );
    check(
        &identity(3, DType::I64, [2, 2]).unwrap(),
        &arr2(&[[1i64, 0, 0], [0, 1, 0], [0, 0, 1]]).into_dyn(),
    );
    for k in [-2isize, 0, 1] {
        let v = arr1(&[1i64, 2, 3]).into_dyn();
        let size = 3 + k.unsigned_abs();
        let want = ArrayD::from_shape_fn(IxDyn(&[size, size]), |ix| {
            let (i, j) = (ix[0] as isize, ix[1] as isize);
            if j - i == k {
                v[[(i.min(j)) as usize]]
            } else {
                0
            }
        });
        check(&from_array(v.clone(), [2]).unwrap().diag(k).unwrap(), &want);
    }
}

#[test]
fn meshgrid_both_indexings() {
    let (a, b, c) = (
        iota(&[3]),
        iota(&[4]).mapv(|v| v * 10),
        iota(&[2]).mapv(|v| v * 100),
    );
    let x = from_array(a.clone(), [2]).unwrap();
    let y = from_array(b.clone(), [3]).unwrap();
    let z = from_array(c.clone(), [1]).unwrap();
    let ij = meshgrid(&[&x, &y, &z], false).unwrap();
    let xy = meshgrid(&[&x, &y, &z], true).unwrap();
    let shape_ij = [3, 4, 2];
    let shape_xy = [4, 3, 2];
    check(
        &ij[0],
        &ArrayD::from_shape_fn(IxDyn(&shape_ij), |ix| a[[ix[0]]]),
    );
    check(
        &ij[1],
        &ArrayD::from_shape_fn(IxDyn(&shape_ij), |ix| b[[ix[1]]]),
    );
    check(
        &ij[2],
        &ArrayD::from_shape_fn(IxDyn(&shape_ij), |ix| c[[ix[2]]]),
    );
    check(
        &xy[0],
        &ArrayD::from_shape_fn(IxDyn(&shape_xy), |ix| a[[ix[1]]]),
    );
    check(
        &xy[1],
        &ArrayD::from_shape_fn(IxDyn(&shape_xy), |ix| b[[ix[0]]]),
    );
    check(
        &xy[2],
        &ArrayD::from_shape_fn(IxDyn(&shape_xy), |ix| c[[ix[2]]]),
    );
}

#[test]
fn stacking_and_splitting() {
    let a = iota(&[3, 4]);
    let b = iota(&[3, 2]).mapv(|v| v + 100);
    let x = from_array(a.clone(), [2, 3]).unwrap();
    let y = from_array(b.clone(), [1, 2]).unwrap();
    check(
        &hstack(&[&x, &y]).unwrap(),
        &oracle_concat(&[a.clone(), b.clone()], 1),
    );
    let v1 = from_array(iota(&[4]), [3]).unwrap();
    let v2 = from_array(iota(&[4]).mapv(|v| -v), [2]).unwrap();
    check(
        &hstack(&[&v1, &v2]).unwrap(),
        &oracle_concat(&[iota(&[4]), iota(&[4]).mapv(|v| -v)], 0),
    );
    check(
        &vstack(&[&v1, &v2]).unwrap(),
        &oracle_stack(&[iota(&[4]), iota(&[4]).mapv(|v| -v)], 0),
    );
    check(
        &vstack(&[&x, &v1]).unwrap(),
        &oracle_concat(&[a.clone(), iota(&[1, 4])], 0),
    );
    let d = dstack(&[&x, &x]).unwrap();
    check(&d, &oracle_stack(&[a.clone(), a.clone()], 2));

    let n = 11;
    let data = iota(&[n, 3]);
    for (cname, spec) in chunkings(&[n, 3]) {
        let z = from_array(data.clone(), spec).unwrap();
        for k in 1..=12 {
            let parts = array_split(&z, Sections::Count(k), 0).unwrap();
            assert_eq!(parts.len(), k);
            let mut start = 0;
            for (i, p) in parts.iter().enumerate() {
                let len = n / k + usize::from(i < n % k);
                in_context(format!("{cname} {k} part {i}"), || {
                    check(
                        p,
                        &data
                            .slice(ndarray::s![start..start + len, ..])
                            .to_owned()
                            .into_dyn(),
                    )
                });
                start += len;
            }
        }
        let parts = split(&z, Sections::Indices(vec![2, 5, 20]), 0).unwrap();
        let lens: Vec<usize> = parts.iter().map(|p| p.shape()[0]).collect();
        assert_eq!(lens, vec![2, 3, 6, 0]);
        check(
            &parts[2],
            &data.slice(ndarray::s![5..11, ..]).to_owned().into_dyn(),
        );
    }
    let z = from_array(data, [4, 3]).unwrap();
    let err = split(&z, Sections::Count(3), 0).unwrap_err().to_string();
    assert!(err.contains("array_split") && err.contains("11"), "{err}");
}

#[test]
fn manipulation_of_empty_arrays() {
    let e = from_array(ArrayD::<f64>::zeros(IxDyn(&[0, 3])), [1, 2]).unwrap();
    assert_eq!(
        e.flip(None).unwrap().compute::<f64>().unwrap().shape(),
        &[0, 3]
    );
    assert_eq!(e.roll(2, Some(0)).unwrap().shape(), &[0, 3]);
    assert_eq!(
        e.roll(2, Some(1))
            .unwrap()
            .compute::<f64>()
            .unwrap()
            .shape(),
        &[0, 3]
    );
    assert_eq!(
        e.pad(&[(1, 1), (0, 0)], PadMode::Constant(0.0.into()))
            .unwrap()
            .shape(),
        &[2, 3]
    );
    assert_eq!(e.diff(1, 1).unwrap().shape(), &[0, 2]);
    assert_eq!(e.tile(&[3, 2]).unwrap().shape(), &[0, 6]);
    assert_eq!(
        e.expand_dims(0).unwrap().compute::<f64>().unwrap().shape(),
        &[1, 0, 3]
    );
    assert_eq!(
        e.triu(0).unwrap().compute::<f64>().unwrap().shape(),
        &[0, 3]
    );
    assert_eq!(
        e.diagonal(0).unwrap().compute::<f64>().unwrap().shape(),
        &[0]
    );
    assert!(e.pad(&[(1, 1), (0, 0)], PadMode::Edge).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// roll then roll back is the identity, and flip twice is too, on random shapes and chunks.
    #[test]
    fn roll_and_flip_round_trip(
        dims in prop::collection::vec(1usize..7, 1..4),
        shift in -20isize..20,
        seed in 0u64..100,
    ) {
        let data = sample::<i64>(&dims, seed);
        let chunks: Vec<usize> = dims.iter().map(|&n| (n / 3).max(1)).collect();
        let x = from_array(data.clone(), chunks).unwrap();
        let axis = (seed as usize % dims.len()) as isize;
        let back = x.roll(shift, Some(axis)).unwrap().roll(-shift, Some(axis)).unwrap();
        check(&back, &data);
        let n = dims[axis as usize];
        let s = shift.rem_euclid(n as isize) as usize;
        check(&x.roll(shift, Some(axis)).unwrap(), &remap(&data, axis as usize, n, |i| (i + n - s) % n));
        check(&x.flip(Some(axis)).unwrap().flip(Some(axis)).unwrap(), &data);
    }
}

// ---------------------------------------------------------------------------------------------
// block

/// A nesting of plain ndarray arrays, for the oracle.
enum Nd {
    Leaf(ArrayD<f64>),
    List(Vec<Nd>),
}

/// numpy's `block` on plain arrays: leaves padded with leading 1-axes to the result rank, lists at
/// depth `l` (of `d`) joined with `ndarray::concatenate` along axis `rank - d + l`.
fn block_oracle(n: &Nd) -> ArrayD<f64> {
    fn depth_rank(n: &Nd, level: usize) -> (usize, usize) {
        match n {
            Nd::Leaf(a) => (level, a.ndim()),
            Nd::List(v) => v
                .iter()
                .map(|c| depth_rank(c, level + 1))
                .fold((0, 0), |a, b| (a.0.max(b.0), a.1.max(b.1))),
        }
    }
    fn go(n: &Nd, level: usize, depth: usize, rank: usize) -> ArrayD<f64> {
        match n {
            Nd::Leaf(a) => {
                let mut shape = vec![1; rank - a.ndim()];
                shape.extend_from_slice(a.shape());
                a.clone().into_shape_with_order(IxDyn(&shape)).unwrap()
            }
            Nd::List(v) => {
                let parts: Vec<ArrayD<f64>> =
                    v.iter().map(|c| go(c, level + 1, depth, rank)).collect();
                let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
                ndarray::concatenate(Axis(rank - depth + level), &views).unwrap()
            }
        }
    }
    let (depth, rank) = depth_rank(n, 0);
    go(n, 0, depth, rank.max(depth))
}

/// The same nesting as tessera arrays, chunked by `chunk` on every axis.
fn to_arrays(n: &Nd, chunk: usize) -> Vec<tessera::Array> {
    match n {
        Nd::Leaf(a) => vec![from_array(a.clone(), vec![chunk; a.ndim()]).unwrap()],
        Nd::List(v) => v.iter().flat_map(|c| to_arrays(c, chunk)).collect(),
    }
}

fn nest<'a>(n: &Nd, arrays: &mut impl Iterator<Item = &'a tessera::Array>) -> Nested<'a> {
    match n {
        Nd::Leaf(_) => Nested::Array(arrays.next().unwrap()),
        Nd::List(v) => Nested::List(v.iter().map(|c| nest(c, arrays)).collect()),
    }
}

fn leaf(shape: &[usize], seed: u64) -> Nd {
    Nd::Leaf(sample::<f64>(shape, seed))
}

#[test]
fn block_matches_numpy_on_nestings_and_chunkings() {
    let cases = vec![
        // A 2×2 block matrix.
        Nd::List(vec![
            Nd::List(vec![leaf(&[2, 3], 1), leaf(&[2, 4], 2)]),
            Nd::List(vec![leaf(&[5, 3], 3), leaf(&[5, 4], 4)]),
        ]),
        // A flat list of 1-D arrays: concatenation.
        Nd::List(vec![leaf(&[3], 5), leaf(&[0], 6), leaf(&[4], 7)]),
        // Lower ranks promoted: a 1-D row and a 0-d scalar under 2-D blocks.
        Nd::List(vec![
            Nd::List(vec![leaf(&[2, 2], 8), leaf(&[2, 1], 9)]),
            Nd::List(vec![leaf(&[2], 10), leaf(&[], 11)]),
        ]),
        // Depth larger than the arrays' rank: 1-D arrays in a 3-level nesting make a 3-D result.
        Nd::List(vec![
            Nd::List(vec![Nd::List(vec![leaf(&[2], 12), leaf(&[3], 13)])]),
            Nd::List(vec![Nd::List(vec![leaf(&[5], 14)])]),
        ]),
        // Rank larger than the depth: 3-D arrays in one list join along the last axis.
        Nd::List(vec![leaf(&[2, 3, 1], 15), leaf(&[2, 3, 4], 16)]),
        // Empty pieces on the joined axes.
        Nd::List(vec![
            Nd::List(vec![leaf(&[0, 3], 17), leaf(&[0, 2], 18)]),
            Nd::List(vec![leaf(&[4, 3], 19), leaf(&[4, 2], 20)]),
        ]),
    ];
    for case in &cases {
        let want = block_oracle(case);
        for chunk in [1usize, 2, 5] {
            let arrays = to_arrays(case, chunk);
            let nested = nest(case, &mut arrays.iter());
            let got = block(nested).unwrap();
            assert_eq!(got.shape(), want.shape(), "chunk {chunk}");
            assert_eq!(got.compute::<f64>().unwrap(), want, "chunk {chunk}");
        }
    }
    // A bare array is itself.
    let a = from_array(sample::<f64>(&[3, 2], 21), [2, 2]).unwrap();
    assert_eq!(
        block(&a).unwrap().compute::<f64>().unwrap(),
        a.compute::<f64>().unwrap()
    );
}

#[test]
fn block_keeps_each_blocks_chunks_and_promotes_dtypes() {
    let a = from_array(arr2(&[[1i64, 2], [3, 4]]).into_dyn(), [1, 2]).unwrap();
    let b = from_array(arr2(&[[0.5], [1.5]]).into_dyn(), [2, 1]).unwrap();
    let c = from_array(arr1(&[7i64, 8, 9]).into_dyn(), [2]).unwrap();
    let m = block(vec![vec![&a, &b], vec![&c]]).unwrap();
    assert_eq!(m.dtype(), DType::F64);
    assert_eq!(
        m.compute::<f64>().unwrap(),
        arr2(&[[1.0, 2.0, 0.5], [3.0, 4.0, 1.5], [7.0, 8.0, 9.0]]).into_dyn()
    );
    // Rows: a's row chunks then c's promoted row; columns: the first row's pieces.
    assert_eq!(m.chunks().axis(0), &[1, 1, 1]);
    assert_eq!(m.chunks().axis(1), &[2, 1]);
}

#[test]
fn block_errors_name_the_position_and_shapes() {
    let a = from_array(sample::<f64>(&[2, 2], 1), [2, 2]).unwrap();
    let b = from_array(sample::<f64>(&[3, 1], 2), [2, 1]).unwrap();
    match block(vec![vec![&a, &b]]) {
        Err(e @ tessera::Error::ShapeMismatch { op: "block", .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("arrays[0][1] has shape [3, 1]"), "{msg}");
            assert!(msg.contains("arrays[0][0] shape [2, 2]"), "{msg}");
            assert!(msg.contains("axis 0"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    // Rows of different widths.
    match block(vec![vec![&a], vec![&b]]) {
        Err(e @ tessera::Error::ShapeMismatch { .. }) => {
            assert!(e.to_string().contains("arrays[1]"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    let mixed = Nested::List(vec![
        Nested::Array(&a),
        Nested::List(vec![Nested::Array(&a)]),
    ]);
    match block(mixed) {
        Err(e @ tessera::Error::InvalidArgument { op: "block", .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("arrays[0] is at depth 1, arrays[1][0] at depth 2"),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }
    let empty: Vec<Vec<&tessera::Array>> = vec![vec![&a], vec![]];
    match block(empty) {
        Err(e @ tessera::Error::InvalidArgument { .. }) => {
            assert!(e.to_string().contains("the list arrays[1] is empty"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// A random 2×k block matrix with random widths, heights and chunkings, against the oracle.
    #[test]
    fn block_matrix_matches_the_oracle(
        heights in prop::collection::vec(0usize..5, 1..4),
        widths in prop::collection::vec(0usize..5, 1..4),
        chunk in 1usize..4,
        seed in 0u64..1000,
    ) {
        let case = Nd::List(
            heights
                .iter()
                .enumerate()
                .map(|(i, &h)| {
                    Nd::List(
                        widths
                            .iter()
                            .enumerate()
                            .map(|(j, &w)| leaf(&[h, w], seed + (i * 10 + j) as u64))
                            .collect(),
                    )
                })
                .collect(),
        );
        let arrays = to_arrays(&case, chunk);
        let got = block(nest(&case, &mut arrays.iter())).unwrap().compute::<f64>().unwrap();
        prop_assert_eq!(got, block_oracle(&case));
    }
}
