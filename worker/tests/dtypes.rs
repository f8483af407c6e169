//! int32, uint8 and uint64 on the distributed executor: the real scheduler and worker binaries on
//! loopback ports, and every result compared bit for bit with the local executor — chunks of the
//! new types, their scalars (weak Python ints) and their partial reductions crossing the wire,
//! over irregular chunkings so that blocks land on different workers.
//!
//! The harness (starting the binaries, comparing bits) is in `common/mod.rs`.

mod common;

use common::{Cluster, assert_suite_matches_local};
use tessera::{Array, DType, Scalar};

fn suite() -> Vec<(&'static str, Array)> {
    let rng = tessera::default_rng(11);
    let base = rng
        .integers(
            -3_000_000_000,
            3_000_000_000,
            &[40, 30],
            vec![vec![13, 20, 7], vec![30]],
        )
        .unwrap();
    let i32s = base.astype(DType::I32).unwrap();
    let u8s = base.astype(DType::U8).unwrap();
    let u64s = base.astype(DType::U64).unwrap() * Scalar::U64(0x9e37_79b9_7f4a_7c15);
    let small = rng
        .integers(0, 9, &[40, 30], vec![vec![5, 35], vec![10, 20]])
        .unwrap()
        .astype(DType::U8)
        .unwrap();
    vec![
        ("int32 add", &i32s + &i32s),
        ("int32 floor_divide", i32s.floor_divide(7).unwrap()),
        ("int32 remainder", &i32s % -7),
        (
            "int32 shift",
            i32s.right_shift(small.astype(DType::I32).unwrap()).unwrap(),
        ),
        ("uint8 mul", &u8s * &u8s),
        ("uint8 plus int", &u8s + 200),
        ("uint8 shift", u8s.left_shift(&small).unwrap()),
        ("uint8 xor", u8s.bitwise_xor(&small).unwrap()),
        ("uint8 invert", !&u8s),
        ("uint8 lt out of range", u8s.lt(300).unwrap()),
        (
            "uint64 sub",
            &u64s - &u64s.right_shift(Scalar::U64(3)).unwrap(),
        ),
        ("uint64 div", &u64s / &u8s),
        ("uint64 + int64", &u64s + &base),
        ("int32 sum", i32s.sum_axis(0).unwrap()),
        ("uint8 sum", u8s.sum().unwrap()),
        ("uint64 prod", u64s.prod_axis(1).unwrap()),
        ("uint64 max", u64s.max_axis(0).unwrap()),
        ("uint8 argmin", u8s.argmin_axis(0).unwrap()),
        ("int32 mean", i32s.mean().unwrap()),
        ("uint64 var", u64s.var().unwrap()),
        ("uint8 cumsum", u8s.cumsum(Some(0)).unwrap()),
        ("int32 cumprod", i32s.cumprod(Some(0)).unwrap()),
        ("uint64 to float32", u64s.astype(DType::F32).unwrap()),
        ("int32 to uint8", i32s.astype(DType::U8).unwrap()),
        (
            "uint64 sort",
            u64s.rechunk([40, 30]).unwrap().sort(0).unwrap(),
        ),
        ("uint8 full", tessera::full(&[7, 5], 250u8, [3, 2]).unwrap()),
        ("int32 arange", tessera::arange(-50i32, 50, 3, [7]).unwrap()),
    ]
}

#[test]
fn new_integer_dtypes_on_the_cluster_match_the_local_executor_bit_for_bit() {
    let cluster = Cluster::start(2);
    let client = cluster.client();
    assert_suite_matches_local(&client, suite());
}
