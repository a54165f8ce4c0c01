//! eddy's snapshot encoder (`eddy_engine::codec`) writes postcard's bytes exactly: snapshots
//! are decoded by postcard, and golden traces hash their bytes. Checked against postcard's
//! own encoder on values that cover every shape of the serde data model.

use std::collections::BTreeMap;

use eddy_engine::codec::{encode_into, EncodeError};
use proptest::prelude::*;
use serde::{Serialize, Serializer};

#[derive(Clone, Debug, Serialize)]
struct Marker;

#[derive(Clone, Debug, Serialize)]
struct Wrapped(u16);

#[derive(Clone, Debug, Serialize)]
struct Pair(i32, Option<u8>);

#[derive(Clone, Debug, Serialize)]
enum Shape {
    Unit,
    Flag(bool),
    Signed {
        i8: i8,
        i16: i16,
        i32: i32,
        i64: i64,
        i128: i128,
    },
    Unsigned(u8, u16, u32, u64, u128),
    Floats(f32, f64),
    Text(char, String, #[serde(with = "serde_bytes")] Vec<u8>),
    Structs(Marker, Wrapped, Pair, ()),
    Maybe(Option<Box<Shape>>),
    List(Vec<Shape>),
    Tuple((usize, isize, Box<Shape>)),
    Map(BTreeMap<u32, Shape>),
}

/// Integers near the varint length boundaries (7 bits per byte) as well as anywhere.
fn edgy_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        (0u32..64, -2i64..=2).prop_map(|(bits, delta)| (1u64 << bits).wrapping_add_signed(delta)),
        Just(0),
        Just(u64::MAX),
    ]
}

fn shape() -> impl Strategy<Value = Shape> {
    let leaf = prop_oneof![
        Just(Shape::Unit),
        any::<bool>().prop_map(Shape::Flag),
        (any::<i8>(), any::<i16>(), any::<i32>(), edgy_u64(), any::<i128>()).prop_map(|(i8, i16, i32, i64, i128)| {
            Shape::Signed {
                i8,
                i16,
                i32,
                i64: i64::from_ne_bytes(i64.to_ne_bytes()),
                i128,
            }
        }),
        (any::<u8>(), any::<u16>(), any::<u32>(), edgy_u64(), any::<u128>())
            .prop_map(|(a, b, c, d, e)| Shape::Unsigned(a, b, c, d, e)),
        (any::<f32>(), any::<f64>()).prop_map(|(a, b)| Shape::Floats(a, b)),
        (any::<char>(), ".{0,20}", proptest::collection::vec(any::<u8>(), 0..200))
            .prop_map(|(c, s, b)| Shape::Text(c, s, b)),
        (any::<u16>(), any::<i32>(), any::<Option<u8>>()).prop_map(|(w, a, b)| Shape::Structs(
            Marker,
            Wrapped(w),
            Pair(a, b),
            ()
        )),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::option::of(inner.clone().prop_map(Box::new)).prop_map(Shape::Maybe),
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Shape::List),
            (any::<usize>(), any::<isize>(), inner.clone()).prop_map(|(u, i, s)| Shape::Tuple((u, i, Box::new(s)))),
            proptest::collection::btree_map(any::<u32>(), inner, 0..8).prop_map(Shape::Map),
        ]
    })
}

fn encoded<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    let mut bytes = vec![0xEE];
    encode_into(&mut bytes, value)?;
    assert_eq!(bytes[0], 0xEE, "encoding appends after what the vector held");
    Ok(bytes.split_off(1))
}

proptest! {
    #[test]
    fn encodes_the_bytes_postcard_encodes(value in shape()) {
        let ours = encoded(&value).expect("every shape encodes");
        prop_assert_eq!(&ours, &postcard::to_allocvec(&value).expect("postcard encodes"));
    }

    #[test]
    fn every_integer_encodes_as_postcard_does(n in edgy_u64()) {
        let signed = i64::from_ne_bytes(n.to_ne_bytes());
        for (ours, theirs) in [
            (encoded(&n), postcard::to_allocvec(&n)),
            (encoded(&signed), postcard::to_allocvec(&signed)),
            (encoded(&(n as u32)), postcard::to_allocvec(&(n as u32))),
            (encoded(&(signed as i16)), postcard::to_allocvec(&(signed as i16))),
            (encoded(&(u128::from(n) << 64 | u128::from(n))), postcard::to_allocvec(&(u128::from(n) << 64 | u128::from(n)))),
            (encoded(&(i128::from(signed) << 64)), postcard::to_allocvec(&(i128::from(signed) << 64))),
        ] {
            prop_assert_eq!(ours.expect("integers encode"), theirs.expect("postcard encodes"));
        }
    }
}

/// A sequence whose length is not known up front: postcard's format cannot hold it, and
/// both encoders refuse it rather than write something else.
struct Unsized(Vec<u8>);

impl Serialize for Unsized {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().filter(|b| **b > 0))
    }
}

#[test]
fn a_sequence_of_unknown_length_is_an_error_as_in_postcard() {
    let value = Unsized(vec![1, 0, 2]);
    assert!(matches!(encoded(&value), Err(EncodeError::LengthUnknown)));
    assert!(postcard::to_allocvec(&value).is_err());
}

#[test]
fn a_failing_serialize_impl_is_an_error() {
    struct Refuses;
    impl Serialize for Refuses {
        fn serialize<S: Serializer>(&self, _serializer: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("refused"))
        }
    }
    let error = encoded(&Refuses).expect_err("the impl fails");
    assert_eq!(error.to_string(), "refused");
}
