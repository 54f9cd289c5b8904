//! The expansion: `derive` → `try_expand` → tokens, or on error every error plus a stub impl.

use heck::ToKebabCase;
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{DeriveInput, Ident, LitStr, Type};

use crate::ast::{Data, Field, Input, Style, Variant, find_field};
use crate::ctxt::Ctxt;
use crate::valid;

pub(crate) fn derive(node: &DeriveInput) -> TokenStream {
    match try_expand(node) {
        Ok(expanded) => expanded,
        Err(error) => fallback(node, &error),
    }
}

fn try_expand(node: &DeriveInput) -> syn::Result<TokenStream> {
    let cx = Ctxt::new();
    let input = Input::from_syn(&cx, node);
    valid::validate(&cx, &input);
    cx.check()?;
    let domain = required(input.attrs.domain.as_ref(), input.ident)?;
    match &input.data {
        Data::Struct(_, fields) => expand_struct(&input, domain, fields),
        Data::Enum(variants) => expand_enum(&input, domain, variants),
        Data::Union(data) => Err(syn::Error::new_spanned(
            data.union_token,
            "#[derive(SseEvent)] does not support unions",
        )),
    }
}

/// Something validation guarantees; an error rather than a panic if a rule ever misses it.
fn required<'t, T>(value: Option<&'t T>, ident: &Ident) -> syn::Result<&'t T> {
    value.ok_or_else(|| {
        syn::Error::new_spanned(
            ident,
            "statelesse-macros: an invalid input passed validation; please report this bug",
        )
    })
}

fn expand_struct(
    input: &Input<'_>,
    domain: &LitStr,
    fields: &[Field<'_>],
) -> syn::Result<TokenStream> {
    let ident = input.ident;
    let name = input.name();
    let kebab = name.to_kebab_case();
    let key = if let Some(key_lit) = &input.attrs.key {
        let key_name = key_lit.value();
        let field = required(find_field(fields, &key_name), ident)?;
        let member = required(field.ident, ident)?;
        let ty = field.ty;
        let path = custom_path(input)
            .unwrap_or_else(|| format!("/sse/{}/{{{key_name}}}/{kebab}", domain.value()));
        KeyTokens {
            ty: quote!(#ty),
            field: quote!(::core::option::Option::Some(#key_name)),
            kind: quote!(::statelesse::EventKind::Keyed { name: #name }),
            path,
            body: quote!(&self.#member),
        }
    } else {
        let path = custom_path(input).unwrap_or_else(|| format!("/sse/{}/{kebab}", domain.value()));
        KeyTokens {
            ty: quote!(()),
            field: quote!(::core::option::Option::None),
            kind: quote!(::statelesse::EventKind::Broadcast { name: #name }),
            path,
            body: quote!(&()),
        }
    };
    let KeyTokens {
        ty: key_ty,
        field: key_field,
        kind,
        path,
        body: key_body,
    } = key;
    let registration = register(input);
    let Presence {
        flag: presence_flag,
        impl_: presence_impl,
    } = presence(input);
    let (span, self_ty) = at_type(ident);
    Ok(quote_spanned! {span=>
        #[automatically_derived]
        impl ::statelesse::SseEvent for #self_ty {
            type Key = #key_ty;
            const DOMAIN: &'static str = #domain;
            const KEY_FIELD: ::core::option::Option<&'static str> = #key_field;
            const KIND: ::statelesse::EventKind = #kind;
            const PATH: &'static str = #path;
            #presence_flag

            fn key(&self) -> &Self::Key {
                #key_body
            }

            fn event_name(&self) -> &'static str {
                #name
            }
        }
        #presence_impl
        #registration
    })
}

struct KeyTokens {
    ty: TokenStream,
    field: TokenStream,
    kind: TokenStream,
    path: String,
    body: TokenStream,
}

fn expand_enum(
    input: &Input<'_>,
    domain: &LitStr,
    variants: &[Variant<'_>],
) -> syn::Result<TokenStream> {
    let ident = input.ident;
    let name = input.name();
    let key_lit = required(input.attrs.key.as_ref(), ident)?;
    let key_name = key_lit.value();
    let path =
        custom_path(input).unwrap_or_else(|| format!("/sse/{}/{{{key_name}}}", domain.value()));

    // The key type is the key field's type in the first struct variant, or else the key type of
    // the event wrapped by the first newtype variant; every other variant is checked against it.
    let key_source = variants.iter().find_map(|variant| match variant.style {
        Style::Named => find_field(&variant.fields, &key_name).map(|field| (variant, field.ty)),
        _ => None,
    });
    // The key type's `ChannelKey` bound is checked by the trait's associated type, whose error
    // (a custom message) lands on the user's type because the tokens keep its span.
    let key_ty = if let Some((_, ty)) = key_source {
        quote!(#ty)
    } else {
        let inner = required(variants.first().and_then(|v| v.fields.first()), ident)?.ty;
        quote!(<#inner as ::statelesse::SseEvent>::Key)
    };
    let source = key_source.map(|(variant, _)| variant);
    let mut arms = Arms::default();
    for variant in variants {
        arms.push(ident, &key_name, &key_ty, source, variant)?;
    }
    let Arms {
        key: key_arms,
        name: name_arms,
        names,
        from_impls,
    } = arms;

    let registration = register(input);
    let Presence {
        flag: presence_flag,
        impl_: presence_impl,
    } = presence(input);
    let (span, self_ty) = at_type(ident);
    Ok(quote_spanned! {span=>
        #[automatically_derived]
        impl ::statelesse::SseEvent for #self_ty {
            type Key = #key_ty;
            const DOMAIN: &'static str = #domain;
            const KEY_FIELD: ::core::option::Option<&'static str> =
                ::core::option::Option::Some(#key_name);
            const KIND: ::statelesse::EventKind = ::statelesse::EventKind::Stream {
                name: #name,
                variants: &[#(#names),*],
            };
            const PATH: &'static str = #path;
            #presence_flag

            #[allow(clippy::match_same_arms)]
            fn key(&self) -> &Self::Key {
                match self {
                    #(#key_arms)*
                }
            }

            fn event_name(&self) -> &'static str {
                match self {
                    #(#name_arms)*
                }
            }

            fn to_data(&self) -> ::statelesse::__private::serde_json::Result<::std::vec::Vec<u8>> {
                ::statelesse::__private::encode_variant(self)
            }

            fn from_data(
                event: &str,
                data: &[u8],
            ) -> ::statelesse::__private::serde_json::Result<Self> {
                ::statelesse::__private::decode_variant(&[#(#names),*], event, data)
            }
        }
        #(#from_impls)*
        #presence_impl
        #registration
    })
}

/// The per-variant parts of an enum stream's impl.
#[derive(Default)]
struct Arms {
    key: Vec<TokenStream>,
    name: Vec<TokenStream>,
    names: Vec<String>,
    from_impls: Vec<TokenStream>,
}

impl Arms {
    fn push(
        &mut self,
        ident: &Ident,
        key_name: &str,
        key_ty: &TokenStream,
        source: Option<&Variant<'_>>,
        variant: &Variant<'_>,
    ) -> syn::Result<()> {
        let variant_ident = variant.ident;
        let variant_name = variant.name();
        match variant.style {
            Style::Named => {
                let field = required(find_field(&variant.fields, key_name), ident)?;
                let member = required(field.ident, ident)?;
                // Other struct variants convert their key through `SameKey`, whose error names
                // both types at the variant's field when they differ.
                let body = if source.is_some_and(|source| std::ptr::eq(source, variant)) {
                    quote!(key)
                } else {
                    let ty = field.ty;
                    quote_spanned! {ty.span()=>
                        <#ty as ::statelesse::__private::SameKey<#key_ty>>::same_key(key)
                    }
                };
                self.key
                    .push(quote!(Self::#variant_ident { #member: key, .. } => #body,));
                self.name
                    .push(quote!(Self::#variant_ident { .. } => #variant_name,));
            }
            Style::Newtype => {
                let inner = required(variant.fields.first(), ident)?.ty;
                let body = quote_spanned! {inner.span()=>
                    <#inner as ::statelesse::__private::KeyedBy<#key_ty>>::keyed_key(event)
                };
                self.key.push(quote!(Self::#variant_ident(event) => #body,));
                self.name
                    .push(quote!(Self::#variant_ident(..) => #variant_name,));
                self.from_impls.push(from_impl(ident, variant_ident, inner));
            }
            Style::Tuple | Style::Unit => {
                return Err(syn::Error::new_spanned(
                    variant_ident,
                    "statelesse-macros: an invalid variant passed validation; please report this bug",
                ));
            }
        }
        self.names.push(variant_name);
        Ok(())
    }
}

fn from_impl(ident: &Ident, variant: &Ident, inner: &Type) -> TokenStream {
    quote! {
        #[automatically_derived]
        impl ::core::convert::From<#inner> for #ident {
            fn from(event: #inner) -> Self {
                Self::#variant(event)
            }
        }
    }
}

fn custom_path(input: &Input<'_>) -> Option<String> {
    input.attrs.path.as_ref().map(LitStr::value)
}

/// The span of the `SseEvent` impl, and the type's name carrying it: located at the type's name,
/// with the derive's hygiene. An unmet supertrait (a payload that is not `Serialize`) is then one
/// error under the user's type name, rather than one there and one at the derive.
fn at_type(ident: &Ident) -> (Span, Ident) {
    let span = Span::call_site().located_at(ident.span());
    let mut self_ty = ident.clone();
    self_ty.set_span(span);
    (span, self_ty)
}

/// What `#[sse(presence = Member)]` adds: `SseEvent::PRESENCE` in the impl, and the `Presence`
/// impl naming the member type. Nothing for a type without it.
struct Presence {
    flag: TokenStream,
    impl_: TokenStream,
}

fn presence(input: &Input<'_>) -> Presence {
    let Some(member) = &input.attrs.presence else {
        return Presence {
            flag: TokenStream::new(),
            impl_: TokenStream::new(),
        };
    };
    let ident = input.ident;
    // The member's bounds are checked by the associated type's, whose error lands on the
    // member type written in the attribute.
    let member_ty = quote_spanned! {member.span()=> #member};
    Presence {
        flag: quote!(
            const PRESENCE: bool = true;
        ),
        impl_: quote! {
            #[automatically_derived]
            impl ::statelesse::Presence for #ident {
                type Member = #member_ty;
            }
        },
    }
}

/// Registers the type through statelesse, whose features (not the derive's) decide where. The
/// call sits at the type's name, where an unmet bound of the registration (no `TS` impl) is
/// then reported; a presence type registers its member type too.
fn register(input: &Input<'_>) -> TokenStream {
    let ident = input.ident;
    let (span, _) = at_type(ident);
    match &input.attrs.presence {
        None => quote_spanned! {span=>
            ::statelesse::__private::register_event!(#ident);
        },
        Some(member) => quote_spanned! {span=>
            ::statelesse::__private::register_event!(#ident, #member);
        },
    }
}

/// Every error, plus an impl that stops the type's uses from cascading into more errors
/// (thiserror's fallback). Its bounds are higher-ranked so that they are checked only where the
/// impl is used: a type that is not `Serialize` gets no extra error from the stub.
fn fallback(node: &DeriveInput, error: &syn::Error) -> TokenStream {
    let ident = &node.ident;
    let errors = error.to_compile_error();
    let mut generics = node.generics.clone();
    let (_, ty_generics, _) = node.generics.split_for_impl();
    generics
        .make_where_clause()
        .predicates
        .push(syn::parse_quote! {
            for<'__statelesse> #ident #ty_generics: ::statelesse::__private::serde::Serialize
                + ::statelesse::__private::serde::de::DeserializeOwned
                + ::core::marker::Send
                + ::core::marker::Sync
                + 'static
        });
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    quote! {
        #errors
        #[automatically_derived]
        impl #impl_generics ::statelesse::SseEvent for #ident #ty_generics #where_clause {
            type Key = ();
            const DOMAIN: &'static str = "";
            const KEY_FIELD: ::core::option::Option<&'static str> = ::core::option::Option::None;
            const KIND: ::statelesse::EventKind = ::statelesse::EventKind::Broadcast { name: "" };
            const PATH: &'static str = "";

            fn key(&self) -> &Self::Key {
                &()
            }

            fn event_name(&self) -> &'static str {
                ""
            }
        }
    }
}
