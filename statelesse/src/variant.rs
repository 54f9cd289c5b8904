//! Enum streams on the wire: each variant is its own SSE event, whose `data` is the variant's
//! content (the wrapped value, or the fields as an object), not serde's `{"Variant": ..}` wrapper.
//!
//! Both directions go through serde, so every `#[serde(..)]` attribute on fields and variants is
//! honoured: encoding intercepts the enum's `serialize_*_variant` call, decoding hands the derived
//! `Deserialize` an enum whose variant is chosen by index and whose content is the JSON `data`.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, VariantAccess, Visitor,
};
use serde::ser::{self, Impossible, Serialize, Serializer};

/// Serializes the content of the enum variant `value` as compact JSON into `out`; returns the
/// variant's declaration index.
pub(crate) fn encode<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> serde_json::Result<u32> {
    let mut json = serde_json::Serializer::new(out);
    value.serialize(Capture { json: &mut json })
}

/// Deserializes the variant with declaration index `index` of `T` from its JSON content.
pub(crate) fn decode<'de, T: de::Deserialize<'de>>(
    index: u32,
    data: &'de [u8],
) -> serde_json::Result<T> {
    let mut json = serde_json::Deserializer::from_slice(data);
    let value = T::deserialize(Variant {
        index,
        json: &mut json,
    })?;
    json.end()?;
    Ok(value)
}

type Json<'a> = serde_json::Serializer<&'a mut Vec<u8>>;

fn not_a_variant() -> serde_json::Error {
    ser::Error::custom(
        "an enum stream must serialize as an externally tagged enum with data in every variant",
    )
}

struct Capture<'a, 'b> {
    json: &'a mut Json<'b>,
}

macro_rules! reject {
    ($($method:ident($($arg:ty),*) -> $ret:ty;)*) => {$(
        fn $method(self, $(_: $arg),*) -> Result<$ret, Self::Error> {
            Err(not_a_variant())
        }
    )*};
}

impl<'a, 'b> Serializer for Capture<'a, 'b> {
    type Ok = u32;
    type Error = serde_json::Error;
    type SerializeSeq = Impossible<u32, serde_json::Error>;
    type SerializeTuple = Impossible<u32, serde_json::Error>;
    type SerializeTupleStruct = Impossible<u32, serde_json::Error>;
    type SerializeTupleVariant = TupleVariant<'a, 'b>;
    type SerializeMap = Impossible<u32, serde_json::Error>;
    type SerializeStruct = Impossible<u32, serde_json::Error>;
    type SerializeStructVariant = StructVariant<'a, 'b>;

    reject! {
        serialize_bool(bool) -> u32;
        serialize_i8(i8) -> u32;
        serialize_i16(i16) -> u32;
        serialize_i32(i32) -> u32;
        serialize_i64(i64) -> u32;
        serialize_u8(u8) -> u32;
        serialize_u16(u16) -> u32;
        serialize_u32(u32) -> u32;
        serialize_u64(u64) -> u32;
        serialize_f32(f32) -> u32;
        serialize_f64(f64) -> u32;
        serialize_char(char) -> u32;
        serialize_str(&str) -> u32;
        serialize_bytes(&[u8]) -> u32;
        serialize_none() -> u32;
        serialize_unit() -> u32;
        serialize_unit_struct(&'static str) -> u32;
        serialize_unit_variant(&'static str, u32, &'static str) -> u32;
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<u32, Self::Error> {
        Err(not_a_variant())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<u32, Self::Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        value: &T,
    ) -> Result<u32, Self::Error> {
        value.serialize(&mut *self.json)?;
        Ok(index)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, Self::Error> {
        Ok(TupleVariant {
            index,
            inner: self.json.serialize_tuple(len)?,
        })
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        _: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, Self::Error> {
        Ok(StructVariant {
            index,
            inner: self.json.serialize_struct(name, len)?,
        })
    }
}

type Compound<'a, 'b> =
    serde_json::ser::Compound<'a, &'b mut Vec<u8>, serde_json::ser::CompactFormatter>;

struct TupleVariant<'a, 'b> {
    index: u32,
    inner: Compound<'a, 'b>,
}

impl ser::SerializeTupleVariant for TupleVariant<'_, '_> {
    type Ok = u32;
    type Error = serde_json::Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        ser::SerializeTuple::serialize_element(&mut self.inner, value)
    }

    fn end(self) -> Result<u32, Self::Error> {
        ser::SerializeTuple::end(self.inner)?;
        Ok(self.index)
    }
}

struct StructVariant<'a, 'b> {
    index: u32,
    inner: Compound<'a, 'b>,
}

impl ser::SerializeStructVariant for StructVariant<'_, '_> {
    type Ok = u32;
    type Error = serde_json::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Self::Error> {
        ser::SerializeStruct::serialize_field(&mut self.inner, key, value)
    }

    fn skip_field(&mut self, key: &'static str) -> Result<(), Self::Error> {
        ser::SerializeStruct::skip_field(&mut self.inner, key)
    }

    fn end(self) -> Result<u32, Self::Error> {
        ser::SerializeStruct::end(self.inner)?;
        Ok(self.index)
    }
}

struct Variant<'a, 'de> {
    index: u32,
    json: &'a mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
}

impl<'de> Deserializer<'de> for Variant<'_, 'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom(
            "an enum stream decodes only into its own enum",
        ))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

impl<'a, 'de> EnumAccess<'de> for Variant<'a, 'de> {
    type Error = serde_json::Error;
    type Variant = Content<'a, 'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Self::Error> {
        let index: de::value::U32Deserializer<serde_json::Error> = self.index.into_deserializer();
        let tag = seed.deserialize(index)?;
        Ok((tag, Content { json: self.json }))
    }
}

struct Content<'a, 'de> {
    json: &'a mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
}

impl<'de> VariantAccess<'de> for Content<'_, 'de> {
    type Error = serde_json::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        de::Deserialize::deserialize(&mut *self.json)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        seed.deserialize(&mut *self.json)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.json.deserialize_tuple(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.json.deserialize_struct("", fields, visitor)
    }
}

impl fmt::Debug for Capture<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Capture")
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Joined {
        name: String,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    enum Game {
        Joined(Joined),
        #[serde(rename_all = "camelCase")]
        ScoreChanged {
            game_id: u32,
            new_score: i64,
        },
    }

    #[test]
    fn newtype_variant_data_is_the_wrapped_value() {
        let mut out = Vec::new();
        let index = encode(&Game::Joined(Joined { name: "ada".into() }), &mut out).unwrap();
        assert_eq!((index, out.as_slice()), (0, &br#"{"name":"ada"}"#[..]));
    }

    #[test]
    fn struct_variant_data_is_its_fields_with_serde_renames() {
        let mut out = Vec::new();
        let index = encode(
            &Game::ScoreChanged {
                game_id: 1,
                new_score: -3,
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(
            (index, out.as_slice()),
            (1, &br#"{"gameId":1,"newScore":-3}"#[..])
        );
    }

    #[test]
    fn decode_reverses_encode() {
        for game in [
            Game::Joined(Joined { name: "x".into() }),
            Game::ScoreChanged {
                game_id: 2,
                new_score: 9,
            },
        ] {
            let mut out = Vec::new();
            let index = encode(&game, &mut out).unwrap();
            assert_eq!(decode::<Game>(index, &out).unwrap(), game);
        }
    }

    #[test]
    fn decode_rejects_content_of_another_variant() {
        assert!(decode::<Game>(1, br#"{"name":"ada"}"#).is_err());
    }

    #[test]
    fn encode_rejects_a_struct() {
        assert!(encode(&Joined { name: "x".into() }, &mut Vec::new()).is_err());
    }
}
