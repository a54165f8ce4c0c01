//! The encoder of snapshot payloads: postcard's format, byte for byte, written faster.
//!
//! postcard writes each varint into a 10-byte buffer and hands the used part to its output
//! as a slice of unknown length, so every field costs a variable-length copy. The staged
//! sink encodes every result into a checkpoint, and that copy was the largest part of the
//! simulator's time on `pageviews` (docs/performance.md). Here a varint is written straight
//! into the output vector. Decoding stays with postcard; `tests/codec.rs` checks that the
//! two encoders agree on every shape of the serde data model.

use serde::ser::{self, Serialize};

/// Why a value could not be encoded: only a serde impl that fails, or a sequence or map of
/// unknown length (postcard's format writes the length first).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A serde impl failed, with its message.
    #[error("{0}")]
    Custom(String),
    /// A sequence or map that does not tell its length up front.
    #[error("a sequence or map of unknown length")]
    LengthUnknown,
}

impl ser::Error for EncodeError {
    fn custom<T: std::fmt::Display>(message: T) -> Self {
        EncodeError::Custom(message.to_string())
    }
}

/// `value` encoded as postcard would, appended to `bytes`.
pub fn encode_into<T: Serialize + ?Sized>(bytes: &mut Vec<u8>, value: &T) -> Result<(), EncodeError> {
    // The encoder owns the vector while it writes, rather than holding a `&mut Vec`: the
    // simulator ran `pageviews` 2-3% faster so (three pairs).
    let mut encoder = Encoder {
        bytes: std::mem::take(bytes),
    };
    let result = value.serialize(&mut encoder);
    *bytes = encoder.bytes;
    result
}

struct Encoder {
    bytes: Vec<u8>,
}

impl Encoder {
    /// LEB128, as postcard writes every integer wider than a byte.
    #[inline(always)]
    fn varint(&mut self, mut value: u64) {
        // Room for the longest varint, written in place, then cut to the bytes used: no
        // copy through a buffer, no capacity check per byte.
        let start = self.bytes.len();
        self.bytes.resize(start + 10, 0);
        let room: &mut [u8; 10] = (&mut self.bytes[start..start + 10]).try_into().expect("10 bytes");
        let mut used = 0;
        while value >= 0x80 {
            room[used] = value as u8 | 0x80;
            value >>= 7;
            used += 1;
        }
        room[used] = value as u8;
        self.bytes.truncate(start + used + 1);
    }

    fn varint_u128(&mut self, mut value: u128) {
        while value >= 0x80 {
            self.bytes.push(value as u8 | 0x80);
            value >>= 7;
        }
        self.bytes.push(value as u8);
    }

    #[inline]
    fn length(&mut self, len: Option<usize>) -> Result<(), EncodeError> {
        self.varint(len.ok_or(EncodeError::LengthUnknown)? as u64);
        Ok(())
    }
}

fn zig_zag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

impl ser::Serializer for &mut Encoder {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn is_human_readable(&self) -> bool {
        false
    }

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<(), EncodeError> {
        self.serialize_u8(u8::from(v))
    }

    #[inline]
    fn serialize_i8(self, v: i8) -> Result<(), EncodeError> {
        self.serialize_u8(v as u8)
    }

    #[inline]
    fn serialize_i16(self, v: i16) -> Result<(), EncodeError> {
        self.serialize_i64(v.into())
    }

    #[inline]
    fn serialize_i32(self, v: i32) -> Result<(), EncodeError> {
        self.serialize_i64(v.into())
    }

    #[inline]
    fn serialize_i64(self, v: i64) -> Result<(), EncodeError> {
        self.varint(zig_zag(v));
        Ok(())
    }

    fn serialize_i128(self, v: i128) -> Result<(), EncodeError> {
        self.varint_u128(((v << 1) ^ (v >> 127)) as u128);
        Ok(())
    }

    #[inline]
    fn serialize_u8(self, v: u8) -> Result<(), EncodeError> {
        self.bytes.push(v);
        Ok(())
    }

    #[inline]
    fn serialize_u16(self, v: u16) -> Result<(), EncodeError> {
        self.serialize_u64(v.into())
    }

    #[inline]
    fn serialize_u32(self, v: u32) -> Result<(), EncodeError> {
        self.serialize_u64(v.into())
    }

    #[inline]
    fn serialize_u64(self, v: u64) -> Result<(), EncodeError> {
        self.varint(v);
        Ok(())
    }

    fn serialize_u128(self, v: u128) -> Result<(), EncodeError> {
        self.varint_u128(v);
        Ok(())
    }

    fn serialize_f32(self, v: f32) -> Result<(), EncodeError> {
        self.bytes.extend_from_slice(&v.to_bits().to_le_bytes());
        Ok(())
    }

    fn serialize_f64(self, v: f64) -> Result<(), EncodeError> {
        self.bytes.extend_from_slice(&v.to_bits().to_le_bytes());
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), EncodeError> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }

    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), EncodeError> {
        self.serialize_bytes(v.as_bytes())
    }

    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<(), EncodeError> {
        self.varint(v.len() as u64);
        self.bytes.extend_from_slice(v);
        Ok(())
    }

    #[inline]
    fn serialize_none(self) -> Result<(), EncodeError> {
        self.serialize_u8(0)
    }

    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), EncodeError> {
        self.serialize_u8(1)?;
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), EncodeError> {
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), EncodeError> {
        Ok(())
    }

    #[inline]
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
    ) -> Result<(), EncodeError> {
        self.serialize_u32(index)
    }

    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        value.serialize(self)
    }

    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        self.serialize_u32(index)?;
        value.serialize(self)
    }

    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Self, EncodeError> {
        self.length(len)?;
        Ok(self)
    }

    #[inline]
    fn serialize_tuple(self, _len: usize) -> Result<Self, EncodeError> {
        Ok(self)
    }

    #[inline]
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self, EncodeError> {
        Ok(self)
    }

    #[inline]
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self, EncodeError> {
        self.serialize_u32(index)?;
        Ok(self)
    }

    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Self, EncodeError> {
        self.length(len)?;
        Ok(self)
    }

    #[inline]
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self, EncodeError> {
        Ok(self)
    }

    #[inline]
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self, EncodeError> {
        self.serialize_u32(index)?;
        Ok(self)
    }
}

/// Compound values: postcard writes their elements one after another, with nothing between.
macro_rules! elements {
    ($($trait:ident :: $method:ident ($($name:ident)?)),* $(,)?) => {$(
        impl ser::$trait for &mut Encoder {
            type Ok = ();
            type Error = EncodeError;

            #[inline]
            fn $method<T: Serialize + ?Sized>(&mut self, $($name: &'static str,)? value: &T) -> Result<(), EncodeError> {
                value.serialize(&mut **self)
            }

            #[inline]
            fn end(self) -> Result<(), EncodeError> {
                Ok(())
            }
        }
    )*};
}

elements!(
    SerializeSeq::serialize_element(),
    SerializeTuple::serialize_element(),
    SerializeTupleStruct::serialize_field(),
    SerializeTupleVariant::serialize_field(),
    SerializeStruct::serialize_field(_field),
    SerializeStructVariant::serialize_field(_field),
);

impl ser::SerializeMap for &mut Encoder {
    type Ok = ();
    type Error = EncodeError;

    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), EncodeError> {
        key.serialize(&mut **self)
    }

    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        value.serialize(&mut **self)
    }

    #[inline]
    fn end(self) -> Result<(), EncodeError> {
        Ok(())
    }
}
