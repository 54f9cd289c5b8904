//! The derive input, with its `#[sse(..)]` attributes parsed, before any rule is checked.

use syn::ext::IdentExt;
use syn::{Attribute, DataUnion, DeriveInput, Fields, Generics, Ident, Type};

use crate::attr::{self, TypeAttrs, VariantAttrs};
use crate::ctxt::Ctxt;

pub(crate) struct Input<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) generics: &'a Generics,
    pub(crate) attrs: TypeAttrs<'a>,
    /// The top-level keys of the type's `#[serde(..)]` attributes.
    pub(crate) serde: Vec<Ident>,
    pub(crate) data: Data<'a>,
}

pub(crate) enum Data<'a> {
    Struct(Style, Vec<Field<'a>>),
    Enum(Vec<Variant<'a>>),
    Union(&'a DataUnion),
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// `{ a: A, b: B }`
    Named,
    /// `(A)`
    Newtype,
    /// `(A, B)` or `()`
    Tuple,
    /// no fields
    Unit,
}

pub(crate) struct Field<'a> {
    /// `None` in a tuple struct or variant.
    pub(crate) ident: Option<&'a Ident>,
    pub(crate) ty: &'a Type,
    /// `#[sse]` attributes, which do not belong on a field.
    pub(crate) sse: Vec<&'a Attribute>,
}

pub(crate) struct Variant<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) attrs: VariantAttrs,
    /// The top-level keys of the variant's `#[serde(..)]` attributes.
    pub(crate) serde: Vec<Ident>,
    pub(crate) style: Style,
    pub(crate) fields: Vec<Field<'a>>,
}

impl<'a> Input<'a> {
    pub(crate) fn from_syn(cx: &Ctxt, input: &'a DeriveInput) -> Self {
        let data = match &input.data {
            syn::Data::Struct(data) => {
                let (style, fields) = fields_from_syn(&data.fields);
                Data::Struct(style, fields)
            }
            syn::Data::Enum(data) => Data::Enum(
                data.variants
                    .iter()
                    .map(|variant| {
                        let (style, fields) = fields_from_syn(&variant.fields);
                        Variant {
                            ident: &variant.ident,
                            attrs: VariantAttrs::from_ast(cx, &variant.attrs),
                            serde: attr::serde_keys(&variant.attrs),
                            style,
                            fields,
                        }
                    })
                    .collect(),
            ),
            syn::Data::Union(data) => Data::Union(data),
        };
        Self {
            ident: &input.ident,
            generics: &input.generics,
            attrs: TypeAttrs::from_ast(cx, &input.attrs),
            serde: attr::serde_keys(&input.attrs),
            data,
        }
    }

    /// The SSE event name of a struct, or the name of an enum stream.
    pub(crate) fn name(&self) -> String {
        self.attrs
            .name
            .as_ref()
            .map_or_else(|| self.ident.unraw().to_string(), syn::LitStr::value)
    }

    /// The name of the key field as written in `#[sse(key = "..")]`.
    pub(crate) fn key_name(&self) -> Option<String> {
        self.attrs.key.as_ref().map(syn::LitStr::value)
    }

    /// The fields of a struct, empty for an enum or a union.
    pub(crate) fn struct_fields(&self) -> &[Field<'a>] {
        match &self.data {
            Data::Struct(_, fields) => fields,
            Data::Enum(_) | Data::Union(_) => &[],
        }
    }
}

impl Variant<'_> {
    /// The SSE event name of this variant.
    pub(crate) fn name(&self) -> String {
        self.attrs
            .name
            .as_ref()
            .map_or_else(|| self.ident.unraw().to_string(), syn::LitStr::value)
    }
}

impl Field<'_> {
    /// Whether this field is named `name` (a raw identifier `r#type` is named `type`).
    pub(crate) fn is_named(&self, name: &str) -> bool {
        self.ident.is_some_and(|ident| ident.unraw() == name)
    }
}

/// The field named `name` among `fields`.
pub(crate) fn find_field<'f, 'a>(fields: &'f [Field<'a>], name: &str) -> Option<&'f Field<'a>> {
    fields.iter().find(|field| field.is_named(name))
}

fn fields_from_syn(fields: &Fields) -> (Style, Vec<Field<'_>>) {
    let style = match fields {
        Fields::Named(_) => Style::Named,
        Fields::Unnamed(unnamed) if unnamed.unnamed.len() == 1 => Style::Newtype,
        Fields::Unnamed(_) => Style::Tuple,
        Fields::Unit => Style::Unit,
    };
    let fields = fields
        .iter()
        .map(|field| Field {
            ident: field.ident.as_ref(),
            ty: &field.ty,
            sse: attr::sse_attrs(&field.attrs),
        })
        .collect();
    (style, fields)
}
