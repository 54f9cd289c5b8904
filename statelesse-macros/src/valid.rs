//! The rules an `#[derive(SseEvent)]` input must follow, one function each.
//!
//! Every rule reports into the context and returns, so that one build shows every mistake.
//! Errors are spanned at the token to change and say how to change it.

use std::collections::BTreeMap;

use quote::ToTokens;
use syn::ext::IdentExt;
use syn::{Ident, LitStr};

use crate::ast::{Data, Field, Input, Style, Variant, find_field};
use crate::attr::suggest;
use crate::ctxt::Ctxt;

/// The SSE event names a route sends for its own frames, with what each frame does.
///
/// The source of truth is `statelesse::protocol::RESERVED_EVENT_NAMES`, which this crate cannot
/// import (a proc-macro crate cannot depend on the crate that re-exports it); the UI tests
/// `tests/ui/fail/reserved-*.rs` prove that the two lists agree.
const RESERVED_EVENT_NAMES: &[(&str, &str)] = &[
    ("gap", "reports lost events"),
    ("snapshot", "carries the initial state"),
    ("join", "announces a member's arrival"),
    ("leave", "announces a member's departure"),
    ("presence", "lists the channel's members"),
];

pub(crate) fn validate(cx: &Ctxt, input: &Input<'_>) {
    // A union is not an event at all; the other rules would only add noise.
    if let Data::Union(data) = &input.data {
        cx.error_spanned_by(
            data.union_token,
            "#[derive(SseEvent)] does not support unions; use a struct or an enum",
        );
        return;
    }
    check_no_generics(cx, input);
    check_no_field_attrs(cx, input);
    if check_sse_present(cx, input) {
        check_domain(cx, input);
        check_type_name(cx, input);
        check_reserved_type_name(cx, input);
        check_key(cx, input);
        check_path(cx, input);
    }
    if let Data::Enum(variants) = &input.data {
        check_variants(cx, input, variants);
        check_variant_names(cx, variants);
        check_reserved_variant_names(cx, variants);
        check_wrapped_types(cx, variants);
        check_serde_enum(cx, input);
        check_serde_variants(cx, variants);
    }
}

// Every event type is registered (for its route and the TypeScript client) and implements
// `SseEvent`, which is `'static` and `DeserializeOwned`: that needs one concrete type. A
// generic event would also need one registration per instantiation, which a derive cannot see.
fn check_no_generics(cx: &Ctxt, input: &Input<'_>) {
    if !input.generics.params.is_empty() {
        cx.error_spanned_by(
            input.generics,
            "#[derive(SseEvent)] does not support generic types: every event type is registered \
             for its route and the TypeScript client; remove the generic parameters",
        );
    }
}

// The key is chosen on the type, with `key = ".."`, so that the attribute says everything
// about channels in one place; an `#[sse]` on a field is a misunderstanding of that.
fn check_no_field_attrs(cx: &Ctxt, input: &Input<'_>) {
    let variant_fields = match &input.data {
        Data::Enum(variants) => variants.iter().flat_map(|v| &v.fields).collect(),
        Data::Struct(..) | Data::Union(_) => Vec::new(),
    };
    for field in input.struct_fields().iter().chain(variant_fields) {
        for attr in &field.sse {
            cx.error_spanned_by(
                attr,
                "#[sse] is not expected on a field; choose the key field with \
                 #[sse(key = \"...\")] on the type",
            );
        }
    }
}

// The domain is the only mandatory setting, so a type without `#[sse]` gets one error that
// says what to add, rather than one per missing key. Returns whether the attribute is there.
fn check_sse_present(cx: &Ctxt, input: &Input<'_>) -> bool {
    if input.attrs.sse.is_none() {
        cx.error_spanned_by(
            input.ident,
            "missing #[sse(domain = \"...\")] attribute; add it next to #[derive(SseEvent)]",
        );
        return false;
    }
    true
}

// The domain is the first part of every channel name: it must be there, non-empty, and free
// of the channel separator `:` and of anything else an SSE route or Redis would mangle.
fn check_domain(cx: &Ctxt, input: &Input<'_>) {
    if let Some(domain) = &input.attrs.domain {
        check_segment(cx, "domain", domain);
        return;
    }
    if let Some(sse) = input.attrs.sse
        && !input.attrs.malformed
        && !input.attrs.written.contains("domain")
    {
        cx.error_spanned_by(
            sse,
            "missing `domain` in #[sse(..)]; add `domain = \"...\"`, the first part of every \
             channel name",
        );
    }
}

// The event name is a part of channel names and the SSE `event:` field (axum panics on a line
// break there), so it follows the same character rules as the domain. A name taken from a
// non-ASCII identifier is rejected at the identifier.
fn check_type_name(cx: &Ctxt, input: &Input<'_>) {
    match &input.attrs.name {
        Some(name) => check_segment(cx, "name", name),
        None => check_ident_name(cx, input.ident, "type"),
    }
}

fn check_ident_name(cx: &Ctxt, ident: &Ident, what: &str) {
    let name = ident.unraw().to_string();
    if let Some(c) = name.chars().find(|c| !is_name_char(*c)) {
        cx.error_spanned_by(
            ident,
            format!(
                "the event name `{name}` cannot contain {}; rename the {what} or set \
                 #[sse(name = \"...\")] with only ASCII letters, digits, `_` and `-`",
                describe(c)
            ),
        );
    }
}

// A route sends frames of its own on the same stream as the events (a `gap` when events were
// lost, a `snapshot` with the initial state), and a client tells them apart by the SSE event
// name alone: an event so named would be read as one of them. An enum stream's own name is no
// SSE event name, so only a struct's name is checked here, and each variant's below.
fn check_reserved_type_name(cx: &Ctxt, input: &Input<'_>) {
    if matches!(input.data, Data::Struct(..)) {
        check_not_reserved(
            cx,
            &input.name(),
            input.attrs.name.as_ref(),
            input.ident,
            "type",
        );
    }
}

fn check_reserved_variant_names(cx: &Ctxt, variants: &[Variant<'_>]) {
    for variant in variants {
        check_not_reserved(
            cx,
            &variant.name(),
            variant.attrs.name.as_ref(),
            variant.ident,
            "variant",
        );
    }
}

/// Reports `name` if it is reserved, at the `name` literal that set it, else at the identifier
/// it was taken from.
fn check_not_reserved(cx: &Ctxt, name: &str, lit: Option<&LitStr>, ident: &Ident, what: &str) {
    let Some((_, frame)) = RESERVED_EVENT_NAMES
        .iter()
        .find(|(reserved, _)| *reserved == name)
    else {
        return;
    };
    let message =
        format!("the event name `{name}` is reserved for the route's own frame that {frame}");
    match lit {
        Some(lit) => cx.error_spanned_by(
            lit,
            format!("{message}; choose another #[sse(name = \"...\")]"),
        ),
        None => cx.error_spanned_by(
            ident,
            format!(
                "{message}; rename the {what}, or set another event name with \
                 #[sse(name = \"...\")]"
            ),
        ),
    }
}

// A struct's key must be one of its named fields: its type is the channel's key type and its
// name the route's placeholder. An enum stream always has a key, carried by every variant.
fn check_key(cx: &Ctxt, input: &Input<'_>) {
    match (&input.data, &input.attrs.key) {
        (Data::Struct(style, fields), Some(key)) => {
            if *style != Style::Named {
                cx.error_spanned_by(
                    key,
                    format!(
                        "`key` must name a field, but `{}` has no named fields; use a struct \
                         with named fields, or remove `key` for a broadcast event",
                        input.ident
                    ),
                );
            } else if find_field(fields, &key.value()).is_none() {
                cx.error_spanned_by(key, no_such_field(&key.value(), input.ident, fields));
            }
        }
        (Data::Enum(_), None) if !input.attrs.malformed && !input.attrs.written.contains("key") => {
            if let Some(sse) = input.attrs.sse {
                cx.error_spanned_by(
                    sse,
                    "an enum stream needs `key = \"...\"`: the field that every variant \
                     carries and that selects the channel",
                );
            }
        }
        _ => {}
    }
}

fn no_such_field(key: &str, ident: &Ident, fields: &[Field<'_>]) -> String {
    let names: Vec<String> = fields
        .iter()
        .filter_map(|field| field.ident.map(|ident| ident.unraw().to_string()))
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let listed: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    let hint = suggest(key, &refs)
        .map(|suggestion| format!(" (did you mean `{suggestion}`?)"))
        .unwrap_or_default();
    format!(
        "no field `{key}` in `{ident}`; `key` must name one of its fields: {}{hint}",
        listed.join(", ")
    )
}

// A custom route path must start at the root and contain exactly one placeholder, the key
// field, which the route parses into the key type; a keyless event has no placeholder at all.
// Checked here so that a typo is a compile error rather than a route that never matches.
fn check_path(cx: &Ctxt, input: &Input<'_>) {
    let Some(path) = &input.attrs.path else {
        return;
    };
    let value = path.value();
    let key = input.key_name();
    if !value.starts_with('/') {
        let example = key.as_ref().map_or_else(
            || "\"/sse/news\"".to_owned(),
            |key| format!("\"/sse/game/{{{key}}}\""),
        );
        cx.error_spanned_by(path, format!("`path` must start with `/`, e.g. {example}"));
        return;
    }
    if let Some(c) = value
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#'))
    {
        cx.error_spanned_by(
            path,
            format!(
                "`path` cannot contain {}; give only the URL path",
                describe(c)
            ),
        );
        return;
    }
    let placeholders = match placeholders(&value) {
        Ok(placeholders) => placeholders,
        Err(message) => {
            cx.error_spanned_by(path, message);
            return;
        }
    };
    let Some(key) = key else {
        if let Some(first) = placeholders.first() {
            cx.error_spanned_by(
                path,
                format!(
                    "`path` of an event without a key cannot contain placeholders; remove \
                     `{{{first}}}`, or add `key = \"...\"` to #[sse(..)]"
                ),
            );
        }
        return;
    };
    if let Some(other) = placeholders.iter().find(|name| **name != key) {
        cx.error_spanned_by(
            path,
            format!("`path` placeholder `{{{other}}}` is not the key field; use `{{{key}}}`"),
        );
    } else if placeholders.is_empty() {
        cx.error_spanned_by(
            path,
            format!("`path` must contain the key placeholder `{{{key}}}`"),
        );
    } else if placeholders.len() > 1 {
        cx.error_spanned_by(
            path,
            format!("the key placeholder `{{{key}}}` appears more than once in `path`"),
        );
    }
}

/// The names of the `{placeholders}` of a path template.
fn placeholders(path: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut rest = path;
    while let Some(start) = rest.find(['{', '}']) {
        if rest[start..].starts_with('}') {
            return Err("unmatched `}` in `path`".to_owned());
        }
        let after = &rest[start + 1..];
        let Some(end) = after
            .find(['{', '}'])
            .filter(|end| after[*end..].starts_with('}'))
        else {
            return Err("unclosed `{` in `path`".to_owned());
        };
        names.push(after[..end].to_owned());
        rest = &after[end + 1..];
    }
    Ok(names)
}

// Each variant of an enum stream is one SSE event of a channel selected by the key, so each
// must carry the key: a struct variant as a field, a newtype variant through the event it
// wraps (checked by the compiler in the expansion). Unit and tuple variants carry no key, and
// a tuple's data would be a bare JSON array that no client can read by name.
fn check_variants(cx: &Ctxt, input: &Input<'_>, variants: &[Variant<'_>]) {
    if variants.is_empty() {
        cx.error_spanned_by(
            input.ident,
            format!(
                "enum `{}` has no variants; an enum stream needs at least one",
                input.ident
            ),
        );
        return;
    }
    let key = input.key_name();
    let key_field = key
        .as_ref()
        .map_or_else(|| "the key field".to_owned(), |key| format!("`{key}`"));
    for variant in variants {
        let ident = variant.ident;
        match variant.style {
            Style::Unit => cx.error_spanned_by(
                ident,
                format!(
                    "variant `{ident}` has no fields; every variant of an enum stream carries \
                     the key: add the field {key_field}, or wrap an event with the same key, \
                     as in `{ident}({ident}Event)`"
                ),
            ),
            Style::Tuple => cx.error_spanned_by(
                ident,
                format!(
                    "tuple variant `{ident}` is not supported in an enum stream; use named \
                     fields including {key_field}, or wrap a single event, as in \
                     `{ident}({ident}Event)`"
                ),
            ),
            Style::Named => {
                if let Some(key) = &key
                    && find_field(&variant.fields, key).is_none()
                {
                    cx.error_spanned_by(
                        ident,
                        format!(
                            "variant `{ident}` has no field `{key}`; every variant of an enum \
                             stream carries the key: add `{key}`"
                        ),
                    );
                }
            }
            Style::Newtype => {}
        }
    }
}

// The variant names are the SSE event names of the stream, by which a client and `from_data`
// tell variants apart: each must be a valid event name, and no two may be equal.
fn check_variant_names(cx: &Ctxt, variants: &[Variant<'_>]) {
    let mut seen = BTreeMap::new();
    for variant in variants {
        match &variant.attrs.name {
            Some(name) => check_segment(cx, "name", name),
            None => check_ident_name(cx, variant.ident, "variant"),
        }
        let name = variant.name();
        if let Some(first) = seen.insert(name.clone(), variant.ident) {
            let span = variant
                .attrs
                .name
                .as_ref()
                .map_or_else(|| variant.ident.to_token_stream(), LitStr::to_token_stream);
            cx.error_spanned_by(
                span,
                format!(
                    "variant `{}` has the event name `{name}`, like variant `{first}`; give \
                     one of them another #[sse(name = \"...\")]",
                    variant.ident
                ),
            );
        }
    }
}

// Each newtype variant gets `impl From<Inner> for Enum`; two variants wrapping the same type
// would make those impls conflict, and a client could not tell the two events apart by type.
fn check_wrapped_types(cx: &Ctxt, variants: &[Variant<'_>]) {
    let mut seen = BTreeMap::new();
    for variant in variants.iter().filter(|v| v.style == Style::Newtype) {
        let ty = variant.fields[0].ty;
        let text = ty.to_token_stream().to_string();
        if let Some(first) = seen.insert(text, variant.ident) {
            let shown = ty.to_token_stream().to_string().replace(' ', "");
            cx.error_spanned_by(
                ty,
                format!(
                    "`{shown}` is already wrapped by variant `{first}`; wrap each event type in \
                     one variant only, so that `From<{shown}>` is unambiguous"
                ),
            );
        }
    }
}

// statelesse sends each variant as its own SSE event, named after the variant, whose data is
// the variant's content; serde's container modes that put the tag into the data, drop it, or
// serialize through another type would break that framing at run time, so they are refused
// at compile time.
fn check_serde_enum(cx: &Ctxt, input: &Input<'_>) {
    for key in &input.serde {
        let written = match key.to_string().as_str() {
            "tag" => "#[serde(tag = \"...\")]",
            "content" => "#[serde(content = \"...\")]",
            "untagged" => "#[serde(untagged)]",
            "into" => "#[serde(into = \"...\")]",
            "from" => "#[serde(from = \"...\")]",
            "try_from" => "#[serde(try_from = \"...\")]",
            _ => continue,
        };
        cx.error_spanned_by(
            key,
            format!(
                "{written} cannot be used on an enum stream: statelesse sends each variant as \
                 its own SSE event, named after the variant, whose data is the variant's \
                 content; remove it"
            ),
        );
    }
}

// Decoding finds a variant by its index among all variants; serde numbers variants without
// the skipped ones when deserializing, so a skipped variant would shift every later one.
fn check_serde_variants(cx: &Ctxt, variants: &[Variant<'_>]) {
    for key in variants.iter().flat_map(|variant| &variant.serde) {
        if matches!(
            key.to_string().as_str(),
            "skip" | "skip_serializing" | "skip_deserializing" | "other" | "untagged"
        ) {
            cx.error_spanned_by(
                key,
                format!(
                    "#[serde({key})] cannot be used on a variant of an enum stream: every \
                     variant is an SSE event of the stream; remove it, or move the variant out \
                     of the enum"
                ),
            );
        }
    }
}

/// Checks a `domain` or `name` literal: non-empty, and only `[A-Za-z0-9_-]`.
fn check_segment(cx: &Ctxt, what: &str, lit: &LitStr) {
    let value = lit.value();
    if value.is_empty() {
        let role = if what == "domain" {
            "the first part of every channel name"
        } else {
            "the SSE event name"
        };
        cx.error_spanned_by(lit, format!("`{what}` cannot be empty: it is {role}"));
    } else if let Some(c) = value.chars().find(|c| !is_name_char(*c)) {
        cx.error_spanned_by(
            lit,
            format!(
                "`{what}` cannot contain {}; use only ASCII letters, digits, `_` and `-`",
                describe(c)
            ),
        );
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// How a refused character is named in a message, with the reason it is special, if any.
fn describe(c: char) -> String {
    match c {
        ':' => "`:`, the separator of channel names".to_owned(),
        '{' | '}' => format!("`{c}`, which delimits Redis Cluster hash tags"),
        ' ' => "a space".to_owned(),
        '\t' => "a tab".to_owned(),
        '\r' | '\n' => "a line break".to_owned(),
        c if c.is_whitespace() => "whitespace".to_owned(),
        c if c.is_control() => format!("the control character `{}`", c.escape_debug()),
        c => format!("`{c}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_listed_in_order() {
        assert_eq!(
            placeholders("/sse/{a}/x/{b}").unwrap(),
            vec!["a".to_owned(), "b".to_owned()]
        );
        assert!(placeholders("/sse/news").unwrap().is_empty());
    }

    #[test]
    fn unbalanced_braces_are_refused() {
        assert_eq!(
            placeholders("/sse/{a").unwrap_err(),
            "unclosed `{` in `path`"
        );
        assert_eq!(
            placeholders("/sse/{a{b}").unwrap_err(),
            "unclosed `{` in `path`"
        );
        assert_eq!(
            placeholders("/sse/a}").unwrap_err(),
            "unmatched `}` in `path`"
        );
    }

    #[test]
    fn separators_are_named_with_their_reason() {
        assert_eq!(describe(':'), "`:`, the separator of channel names");
        assert_eq!(describe(' '), "a space");
        assert_eq!(describe('.'), "`.`");
    }
}
