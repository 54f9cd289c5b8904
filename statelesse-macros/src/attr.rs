//! The `#[sse(..)]` attributes, parsed into literals that keep their spans, and the few
//! `#[serde(..)]` keys that change how an event travels.

use std::collections::BTreeSet;

use proc_macro2::TokenTree;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, Expr, ExprLit, Ident, Lit, LitStr, Meta, Token, Type};

use crate::ctxt::Ctxt;

/// The keys `#[sse(..)]` accepts on a struct or an enum.
const TYPE_KEYS: &[&str] = &["domain", "key", "name", "path", "presence"];

/// The keys `#[sse(..)]` accepts on an enum variant.
const VARIANT_KEYS: &[&str] = &["name"];

/// Words users reach for that mean one of our keys.
const ALIASES: &[(&str, &str)] = &[
    ("rename", "name"),
    ("event", "name"),
    ("event_name", "name"),
    ("route", "path"),
    ("url", "path"),
    ("key_field", "key"),
    ("field", "key"),
    ("channel", "domain"),
    ("member", "presence"),
    ("members", "presence"),
    ("identity", "presence"),
];

/// `#[sse(domain = "..", key = "..", name = "..", path = "..", presence = Type)]` on a struct or
/// an enum.
pub(crate) struct TypeAttrs<'a> {
    /// The first `#[sse]` attribute, `None` when the type has none.
    pub(crate) sse: Option<&'a Attribute>,
    /// Whether an `#[sse]` attribute could not be read at all (its error is already reported).
    pub(crate) malformed: bool,
    /// The keys written, with a valid value or not: a key with a bad value is not also missing.
    pub(crate) written: BTreeSet<&'static str>,
    pub(crate) domain: Option<LitStr>,
    pub(crate) key: Option<LitStr>,
    pub(crate) name: Option<LitStr>,
    pub(crate) path: Option<LitStr>,
    /// The member identity type of a presence type: a type, not a string.
    pub(crate) presence: Option<Type>,
}

impl<'a> TypeAttrs<'a> {
    pub(crate) fn from_ast(cx: &Ctxt, attrs: &'a [Attribute]) -> Self {
        let mut domain = Slot::new("domain");
        let mut key = Slot::new("key");
        let mut name = Slot::new("name");
        let mut path = Slot::new("path");
        let mut presence = TypeSlot::default();
        let mut sse = None;
        let mut malformed = false;
        for attr in attrs.iter().filter(|attr| attr.path().is_ident("sse")) {
            sse.get_or_insert(attr);
            malformed |= !parse_sse(cx, attr, Placement::Type, |meta, ident| {
                let slot = match ident.to_string().as_str() {
                    "domain" => &mut domain,
                    "key" => &mut key,
                    "name" => &mut name,
                    "path" => &mut path,
                    "presence" => {
                        presence.set(cx, meta)?;
                        return Ok(true);
                    }
                    _ => return Ok(false),
                };
                slot.set(cx, meta)?;
                Ok(true)
            });
        }
        let mut written: BTreeSet<&'static str> = [&domain, &key, &name, &path]
            .into_iter()
            .filter(|slot| slot.written)
            .map(|slot| slot.name)
            .collect();
        if presence.written {
            written.insert("presence");
        }
        Self {
            sse,
            malformed,
            written,
            domain: domain.value,
            key: key.value,
            name: name.value,
            path: path.value,
            presence: presence.value,
        }
    }
}

/// `#[sse(name = "..")]` on an enum variant.
pub(crate) struct VariantAttrs {
    pub(crate) name: Option<LitStr>,
}

impl VariantAttrs {
    pub(crate) fn from_ast(cx: &Ctxt, attrs: &[Attribute]) -> Self {
        let mut name = Slot::new("name");
        for attr in attrs.iter().filter(|attr| attr.path().is_ident("sse")) {
            parse_sse(cx, attr, Placement::Variant, |meta, ident| {
                if ident == "name" {
                    name.set(cx, meta)?;
                    Ok(true)
                } else {
                    Ok(false)
                }
            });
        }
        Self { name: name.value }
    }
}

/// The `#[sse]` attributes of a field: none is accepted, they are kept to be reported.
pub(crate) fn sse_attrs(attrs: &[Attribute]) -> Vec<&Attribute> {
    attrs
        .iter()
        .filter(|attr| attr.path().is_ident("sse"))
        .collect()
}

/// The top-level keys of every `#[serde(..)]` attribute, e.g. `tag` in
/// `#[serde(tag = "type", rename_all = "camelCase")]`.
///
/// Only the keys matter (whether an enum is tagged, a variant skipped), so the tokens are
/// scanned rather than parsed: serde owns its grammar and reports its own mistakes.
pub(crate) fn serde_keys(attrs: &[Attribute]) -> Vec<Ident> {
    let mut keys = Vec::new();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("serde")) {
        let Meta::List(list) = &attr.meta else {
            continue;
        };
        let mut at_start = true;
        for token in list.tokens.clone() {
            match token {
                TokenTree::Ident(ident) if at_start => {
                    keys.push(ident);
                    at_start = false;
                }
                TokenTree::Punct(punct) if punct.as_char() == ',' => at_start = true,
                _ => at_start = false,
            }
        }
    }
    keys
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Placement {
    Type,
    Variant,
}

/// One key's value; a second occurrence is an error on the second (serde's `Attr::set`).
struct Slot {
    name: &'static str,
    written: bool,
    value: Option<LitStr>,
}

impl Slot {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            written: false,
            value: None,
        }
    }

    fn set(&mut self, cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
        self.written = true;
        let Some(lit) = lit_str(cx, self.name, meta)? else {
            return Ok(());
        };
        if self.value.is_some() {
            cx.error_spanned_by(
                &meta.path,
                format!("duplicate sse attribute `{}`; remove this one", self.name),
            );
        } else {
            self.value = Some(lit);
        }
        Ok(())
    }
}

/// The value of `presence = Type`: a type (a path such as `Player` or `crate::auth::User`), where
/// the other keys take strings. A second occurrence is an error on the second.
#[derive(Default)]
struct TypeSlot {
    written: bool,
    value: Option<Type>,
}

impl TypeSlot {
    fn set(&mut self, cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
        self.written = true;
        let Some(ty) = member_type(cx, meta)? else {
            return Ok(());
        };
        if self.value.is_some() {
            cx.error_spanned_by(
                &meta.path,
                "duplicate sse attribute `presence`; remove this one",
            );
        } else {
            self.value = Some(ty);
        }
        Ok(())
    }
}

/// The type after `presence =`, or `None` after reporting what was expected instead.
fn member_type(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<Type>> {
    const EXPECTED: &str =
        "expected `presence = Type`, the type of a member's identity, such as `presence = Player`";
    if !meta.input.peek(Token![=]) {
        if meta.input.is_empty() || meta.input.peek(Token![,]) {
            cx.error_spanned_by(&meta.path, EXPECTED);
            return Ok(None);
        }
        return Err(meta.error(EXPECTED));
    }
    let value = meta.value()?;
    if value.is_empty() || value.peek(Token![,]) {
        cx.error_spanned_by(&meta.path, EXPECTED);
        return Ok(None);
    }
    if value.peek(LitStr) {
        let lit: LitStr = value.parse()?;
        cx.error_spanned_by(
            &lit,
            format!(
                "`presence` takes a type, not a string: write `presence = {}`",
                lit.value()
            ),
        );
        return Ok(None);
    }
    if value.peek(Lit) {
        let lit: Lit = value.parse()?;
        cx.error_spanned_by(&lit, EXPECTED);
        return Ok(None);
    }
    Ok(Some(value.parse()?))
}

/// Parses the keys of one `#[sse(..)]`; `known` stores a key and returns whether it knew it.
///
/// Errors in a value are reported and the parse goes on with the next key, so that one build
/// shows every mistake; only a syntax error ends this attribute. Returns `false` when the
/// attribute was not a list at all.
fn parse_sse(
    cx: &Ctxt,
    attr: &Attribute,
    placement: Placement,
    mut known: impl FnMut(&ParseNestedMeta<'_>, &Ident) -> syn::Result<bool>,
) -> bool {
    if !matches!(attr.meta, Meta::List(_)) {
        let example = match placement {
            Placement::Type => "#[sse(domain = \"...\")]",
            Placement::Variant => "#[sse(name = \"...\")]",
        };
        cx.error_spanned_by(
            attr,
            format!("expected attribute arguments in parentheses: {example}"),
        );
        return false;
    }
    let result = attr.parse_nested_meta(|meta| {
        if let Some(ident) = meta.path.get_ident()
            && known(&meta, ident)?
        {
            return Ok(());
        }
        cx.syn_error(meta.error(unknown_key_message(&meta, placement)));
        skip_value(&meta)
    });
    if let Err(error) = result {
        cx.syn_error(error);
    }
    true
}

/// The string literal after `name =`, or `None` after reporting what was expected instead.
fn lit_str(cx: &Ctxt, name: &str, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<LitStr>> {
    let expected = format!("expected `{name} = \"...\"`");
    if !meta.input.peek(Token![=]) {
        if meta.input.is_empty() || meta.input.peek(Token![,]) {
            cx.error_spanned_by(&meta.path, expected);
            return Ok(None);
        }
        return Err(meta.error(expected));
    }
    let expr: Expr = meta.value()?.parse()?;
    let mut value = &expr;
    while let Expr::Group(group) = value {
        value = &group.expr;
    }
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) if lit.suffix().is_empty() => Ok(Some(lit.clone())),
        _ => {
            cx.error_spanned_by(&expr, expected);
            Ok(None)
        }
    }
}

/// Consumes the value of a key that was reported, so that parsing goes on with the next key.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if !meta.input.is_empty() && !meta.input.peek(Token![,]) {
        meta.input.parse::<TokenTree>()?;
    }
    Ok(())
}

fn unknown_key_message(meta: &ParseNestedMeta<'_>, placement: Placement) -> String {
    let key = meta
        .path
        .get_ident()
        .map_or_else(|| tokens_to_string(&meta.path), Ident::to_string);
    let known = match placement {
        Placement::Type => TYPE_KEYS,
        Placement::Variant => {
            if TYPE_KEYS.contains(&key.as_str()) {
                return format!(
                    "`{key}` is not expected on a variant; it belongs in #[sse(..)] on the enum"
                );
            }
            VARIANT_KEYS
        }
    };
    let context = match placement {
        Placement::Type => "",
        Placement::Variant => " on a variant",
    };
    match suggest(&key, known) {
        Some(suggestion) => {
            format!("unknown sse attribute `{key}`{context}; did you mean `{suggestion}`?")
        }
        None => format!(
            "unknown sse attribute `{key}`{context}; expected {}",
            one_of(known)
        ),
    }
}

fn tokens_to_string(tokens: &impl quote::ToTokens) -> String {
    tokens.to_token_stream().to_string().replace(' ', "")
}

/// "`domain`, `key`, `name` or `path`".
fn one_of(keys: &[&str]) -> String {
    let quoted: Vec<String> = keys.iter().map(|key| format!("`{key}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}

/// The known key closest to a misspelt one, if it is close enough to be what was meant.
pub(crate) fn suggest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let lower = key.to_ascii_lowercase();
    if let Some((_, target)) = ALIASES.iter().find(|(alias, _)| *alias == lower)
        && let Some(found) = known.iter().find(|known| *known == target)
    {
        return Some(found);
    }
    known
        .iter()
        .map(|candidate| (edit_distance(&lower, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 3).max(1) + 1)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and transpositions
/// of adjacent characters (so `kye` is one edit from `key`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposition_is_one_edit() {
        assert_eq!(edit_distance("kye", "key"), 1);
        assert_eq!(suggest("kye", TYPE_KEYS), Some("key"));
    }

    #[test]
    fn close_misspellings_are_suggested() {
        assert_eq!(suggest("domian", TYPE_KEYS), Some("domain"));
        assert_eq!(suggest("Domain", TYPE_KEYS), Some("domain"));
        assert_eq!(suggest("nme", TYPE_KEYS), Some("name"));
        assert_eq!(suggest("paths", TYPE_KEYS), Some("path"));
    }

    #[test]
    fn aliases_are_suggested() {
        assert_eq!(suggest("rename", TYPE_KEYS), Some("name"));
        assert_eq!(suggest("route", TYPE_KEYS), Some("path"));
    }

    #[test]
    fn unrelated_words_get_no_suggestion() {
        assert_eq!(suggest("serialize", TYPE_KEYS), None);
        assert_eq!(suggest("x", TYPE_KEYS), None);
    }

    #[test]
    fn keys_are_listed_in_prose() {
        assert_eq!(
            one_of(TYPE_KEYS),
            "`domain`, `key`, `name`, `path` or `presence`"
        );
        assert_eq!(one_of(VARIANT_KEYS), "`name`");
    }
}
