//! The TypeScript renderer: one `.ts` module, or an ES module `.js` with its `.d.ts`.
//!
//! The three forms share their text: the type section (payload types, runtime types, handler
//! interfaces) is identical in `.ts` and `.d.ts`, and the code (runtime and clients) is written
//! once with its type-only parts between `«` and `»`, which the `.ts` form keeps and the `.js`
//! form drops.

use std::fmt::Write as _;

use super::{
    EventModel, GAP_EVENT, HEADER, LAST_EVENT_ID_QUERY, ManifestError, Model, PathPart,
    SNAPSHOT_EVENT, TypeDecl,
};

/// The runtime's types, valid TypeScript shared by the `.ts` and `.d.ts` forms.
const RUNTIME_TYPES: &str = include_str!("runtime/types.ts");

/// The runtime's code, with its type-only parts between `«` and `»`.
const RUNTIME_CODE: &str = include_str!("runtime/client.ts.in");

/// Names the runtime declares at the top level of the module.
pub(super) const RUNTIME_NAMES: &[&str] = &[
    "DEFAULT_BASE_URL",
    "SseClose",
    "SseDeliver",
    "SseError",
    "SseEventSourceConstructor",
    "SseEventSourceLike",
    "SseGap",
    "SseHandlers",
    "SseMessageEventLike",
    "SseOptions",
    "events",
    "sseOpen",
];

/// Handlers every stream accepts; an enum stream's variant handlers must not take these names.
pub(super) const COMMON_HANDLERS: &[&str] =
    &["onError", "onEvent", "onGap", "onOpen", "onSnapshot"];

/// Names a key parameter must not take (JavaScript reserved words and the names a client's body
/// uses); such a parameter gets a `Key` suffix.
pub(super) const RESERVED_PARAMS: &[&str] = &[
    "DEFAULT_BASE_URL",
    "arguments",
    "await",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "encodeURIComponent",
    "enum",
    "eval",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "handlers",
    "if",
    "implements",
    "import",
    "in",
    "instanceof",
    "interface",
    "let",
    "new",
    "null",
    "options",
    "package",
    "private",
    "protected",
    "public",
    "return",
    "sseOpen",
    "static",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "yield",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// One `.ts` module.
    TypeScript,
    /// The `.js` ES module.
    JavaScript,
    /// The `.d.ts` of the `.js` module.
    Declarations,
}

/// The `.ts` module.
pub(super) fn module(model: &Model) -> String {
    let mut out = header();
    types(&mut out, model);
    values(&mut out, model, Form::TypeScript);
    out
}

/// The `.js` module.
pub(super) fn javascript(model: &Model) -> Result<String, ManifestError> {
    reject_enums(model)?;
    let mut out = header();
    values(&mut out, model, Form::JavaScript);
    Ok(out)
}

/// The `.d.ts` of the `.js` module.
pub(super) fn declarations(model: &Model) -> Result<String, ManifestError> {
    reject_enums(model)?;
    let mut out = header();
    types(&mut out, model);
    values(&mut out, model, Form::Declarations);
    Ok(out)
}

/// A TypeScript enum is a value too, which the `.js` form would have to define.
fn reject_enums(model: &Model) -> Result<(), ManifestError> {
    match model.types.iter().find(|decl| decl.is_enum()) {
        Some(decl) => Err(ManifestError::UnsupportedType {
            name: decl.name.clone(),
        }),
        None => Ok(()),
    }
}

/// The exported declaration of a payload type, with its doc comment.
pub(super) fn declaration(decl: &TypeDecl) -> String {
    let mut out = decl.docs.clone().unwrap_or_default();
    out.push_str("export ");
    out.push_str(&decl.decl);
    out
}

fn header() -> String {
    format!(
        "{HEADER}\n//\n\
         // Typed EventSource clients of the server's events, from their Rust types.\n\
         // Regenerate with `statelesse::manifest::Manifest` (see the docs of `statelesse::manifest`).\n"
    )
}

/// The type section: payload types, runtime types, each event's handlers and messages.
fn types(out: &mut String, model: &Model) {
    out.push_str("\n// Payload types, from the Rust types through ts-rs.\n");
    for decl in &model.types {
        out.push('\n');
        out.push_str(&declaration(decl));
        out.push('\n');
    }

    out.push_str("\n// Client types.\n\n");
    out.push_str(RUNTIME_TYPES);

    out.push_str("\n// Handlers of each stream.\n");
    for event in &model.events {
        out.push('\n');
        event_types(out, event);
    }
}

fn event_types(out: &mut String, event: &EventModel) {
    let client = &event.client;
    let name = comment(event.info.name());
    if event.is_stream() {
        let _ = writeln!(
            out,
            "/** An event of the `{name}` stream, discriminated by its SSE event name. */"
        );
        let _ = writeln!(out, "export type {client}Message =");
        for (index, payload) in event.payloads.iter().enumerate() {
            let end = if index + 1 == event.payloads.len() {
                ";"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  | {{ event: {}; data: {} }}{end}",
                string(payload.event),
                payload.ts_type
            );
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "/** Handlers of the `{name}` stream: one per event, and `onEvent` for every event. */"
        );
        let _ = writeln!(
            out,
            "export interface {client}Handlers<S = unknown> extends SseHandlers<S> {{"
        );
        for (handler, payload) in event.variant_handlers() {
            let _ = writeln!(
                out,
                "  /** Receives each `{}` event and its id. */\n  {handler}?: (payload: {}, id: string) => void;",
                comment(payload.event),
                payload.ts_type
            );
        }
        let _ = writeln!(
            out,
            "  /** Every event of the stream, after its own handler. */\n  \
             onEvent?: (message: {client}Message, id: string) => void;\n}}"
        );
    } else {
        let _ = writeln!(out, "/** Handlers of the `{name}` stream. */");
        let _ = writeln!(
            out,
            "export interface {client}Handlers<S = unknown> extends SseHandlers<S> {{"
        );
        let _ = writeln!(
            out,
            "  /** Receives each `{name}` event and its id. */\n  onEvent?: (payload: {}, id: string) => void;\n}}",
            event.ts_type
        );
    }
}

/// The value section: base URL, event metadata, runtime and clients.
fn values(out: &mut String, model: &Model, form: Form) {
    out.push_str("\n// Clients.\n\n");
    out.push_str("/** The base URL of every client, unless a call passes `options.baseUrl`. */\n");
    match form {
        Form::TypeScript => {
            let _ = writeln!(
                out,
                "export const DEFAULT_BASE_URL: string = {};",
                string(&model.base_url)
            );
        }
        Form::JavaScript => {
            let _ = writeln!(
                out,
                "export const DEFAULT_BASE_URL = {};",
                string(&model.base_url)
            );
        }
        Form::Declarations => out.push_str("export declare const DEFAULT_BASE_URL: string;\n"),
    }

    out.push_str("\n/** Each stream's domain, SSE event names, key and route path template. */\n");
    let metadata = metadata(model);
    match form {
        Form::TypeScript => {
            let _ = writeln!(out, "export const events = {} as const;", metadata.value(0));
        }
        Form::JavaScript => {
            let _ = writeln!(out, "export const events = {};", metadata.value(0));
        }
        Form::Declarations => {
            let _ = writeln!(out, "export declare const events: {};", metadata.ty(0));
        }
    }

    if form != Form::Declarations {
        out.push('\n');
        out.push_str(&typed(&runtime_code(), form == Form::TypeScript));
    }

    for event in &model.events {
        out.push('\n');
        client(out, event, form);
    }
}

fn runtime_code() -> String {
    RUNTIME_CODE
        .replace("__GAP_EVENT__", &string(GAP_EVENT))
        .replace("__SNAPSHOT_EVENT__", &string(SNAPSHOT_EVENT))
        .replace(
            "__LAST_EVENT_ID_QUERY__",
            &string(&format!("{LAST_EVENT_ID_QUERY}=")),
        )
}

/// The client function of one event.
fn client(out: &mut String, event: &EventModel, form: Form) {
    let info = &event.info;
    let client = &event.client;
    let of_key = info
        .key_field
        .map(|field| format!(" of one `{}`", comment(field)))
        .unwrap_or_default();
    let handlers = match event.variant_handlers().first() {
        Some((handler, payload)) if event.is_stream() => format!(
            "Calls `handlers.{handler}(payload, id)` for each `{}` event (and so on for\n \
             * each event of the stream), then `handlers.onEvent(message, id)`",
            comment(payload.event)
        ),
        _ => "Calls `handlers.onEvent(payload, id)` for each event".to_owned(),
    };
    let _ = writeln!(
        out,
        "/**\n * Opens the `{name}` stream{of_key} (domain `{domain}`): `GET {path}`.\n *\n \
         * {handlers}.\n \
         * After an error, reopens it after the last event id it saw. Returns the function that\n \
         * closes it.\n */",
        name = comment(info.name()),
        domain = comment(info.domain),
        path = comment(info.path),
    );

    let key = event
        .key_param
        .as_ref()
        .map(|param| (param.as_str(), info.key_ts_type));
    let mut typed_params = String::new();
    let mut plain_params = String::new();
    if let Some((param, ts_type)) = key {
        let _ = write!(typed_params, "{param}: {ts_type}, ");
        let _ = write!(plain_params, "{param}, ");
    }
    let _ = write!(
        typed_params,
        "handlers: {client}Handlers<S>, options?: SseOptions"
    );
    plain_params.push_str("handlers, options");

    match form {
        Form::Declarations => {
            let _ = writeln!(
                out,
                "export declare function subscribe{client}<S = unknown>({typed_params}): SseClose;"
            );
            return;
        }
        Form::TypeScript => {
            let _ = writeln!(
                out,
                "export function subscribe{client}<S = unknown>({typed_params}): SseClose {{"
            );
        }
        Form::JavaScript => {
            let _ = writeln!(out, "export function subscribe{client}({plain_params}) {{");
        }
    }

    let path = path_expression(event);
    let names: Vec<String> = event
        .payloads
        .iter()
        .map(|payload| string(payload.event))
        .collect();
    let mut body = String::new();
    let _ = writeln!(
        body,
        "  return sseOpen(\n    {path},\n    [{}],",
        names.join(", ")
    );
    if event.is_stream() {
        let _ = writeln!(
            body,
            "    (event, data, id) => {{\n      \
             const message = {{ event, data }}« as {client}Message»;\n      \
             switch (message.event) {{"
        );
        for (handler, payload) in event.variant_handlers() {
            let _ = writeln!(
                body,
                "        case {}:\n          \
                 if (handlers.{handler}) handlers.{handler}(message.data, id);\n          \
                 break;",
                string(payload.event)
            );
        }
        body.push_str(
            "      }\n      if (handlers.onEvent) handlers.onEvent(message, id);\n    },\n",
        );
    } else {
        let _ = writeln!(
            body,
            "    (_event, data, id) => {{\n      \
             if (handlers.onEvent) handlers.onEvent(data« as {}», id);\n    }},",
            event.ts_type
        );
    }
    body.push_str("    handlers,\n    options,\n  );\n}\n");
    out.push_str(&typed(&body, form == Form::TypeScript));
}

/// The JavaScript expression of an event's URL path, the key URL-encoded.
fn path_expression(event: &EventModel) -> String {
    let parts: Vec<String> = event
        .path
        .iter()
        .map(|part| match (part, &event.key_param) {
            (PathPart::Literal(text), _) => string(text),
            (PathPart::Key, Some(param)) => format!("encodeURIComponent(String({param}))"),
            // A placeholder without a key field was rejected when the path was parsed.
            (PathPart::Key, None) => string(""),
        })
        .collect();
    if parts.is_empty() {
        string("")
    } else {
        parts.join(" + ")
    }
}

/// Keeps (`keep_types`) or drops the text between `«` and `»`, removing the markers.
fn typed(source: &str, keep_types: bool) -> String {
    let mut out = String::with_capacity(source.len());
    let mut in_types = false;
    for c in source.chars() {
        match c {
            '«' => in_types = true,
            '»' => in_types = false,
            c if keep_types || !in_types => out.push(c),
            _ => {}
        }
    }
    out
}

/// A JavaScript (and JSON) string literal of `text`, ASCII only, so it never contains a marker
/// or a line terminator.
pub(super) fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            c => {
                let mut units = [0_u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
    out
}

/// Text safe inside a `/** .. */` comment.
fn comment(text: &str) -> String {
    text.replace("*/", "*\\/")
}

/// A literal that renders both as a JavaScript value and as its TypeScript `readonly` type.
enum Literal {
    Null,
    Str(String),
    List(Vec<Literal>),
    Object(Vec<(String, Literal)>),
}

impl Literal {
    fn value(&self, depth: usize) -> String {
        self.render(depth, false)
    }

    fn ty(&self, depth: usize) -> String {
        self.render(depth, true)
    }

    fn render(&self, depth: usize, as_type: bool) -> String {
        match self {
            Self::Null => "null".to_owned(),
            Self::Str(text) => string(text),
            Self::List(items) => {
                let items: Vec<String> = items
                    .iter()
                    .map(|item| item.render(depth, as_type))
                    .collect();
                let list = format!("[{}]", items.join(", "));
                if as_type {
                    format!("readonly {list}")
                } else {
                    list
                }
            }
            Self::Object(fields) => {
                let indent = "  ".repeat(depth + 1);
                let mut out = String::from("{\n");
                for (key, value) in fields {
                    let value = value.render(depth + 1, as_type);
                    if as_type {
                        let _ = writeln!(out, "{indent}readonly {key}: {value};");
                    } else {
                        let _ = writeln!(out, "{indent}{key}: {value},");
                    }
                }
                out.push_str(&"  ".repeat(depth));
                out.push('}');
                out
            }
        }
    }
}

fn metadata(model: &Model) -> Literal {
    let entries = model
        .events
        .iter()
        .map(|event| {
            let info = &event.info;
            let optional = |value: Option<&str>| {
                value.map_or(Literal::Null, |value| Literal::Str(value.to_owned()))
            };
            let kind = if event.is_stream() {
                "stream"
            } else if info.key_field.is_some() {
                "keyed"
            } else {
                "broadcast"
            };
            let fields = vec![
                ("domain".to_owned(), Literal::Str(info.domain.to_owned())),
                ("kind".to_owned(), Literal::Str(kind.to_owned())),
                ("name".to_owned(), Literal::Str(info.name().to_owned())),
                ("key".to_owned(), optional(info.key_field)),
                (
                    "keyType".to_owned(),
                    optional(info.key_field.map(|_| info.key_ts_type)),
                ),
                ("path".to_owned(), Literal::Str(info.path.to_owned())),
                (
                    "events".to_owned(),
                    Literal::List(
                        event
                            .payloads
                            .iter()
                            .map(|payload| Literal::Str(payload.event.to_owned()))
                            .collect(),
                    ),
                ),
            ];
            (event.client.clone(), Literal::Object(fields))
        })
        .collect();
    Literal::Object(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_keeps_or_drops_marked_text() {
        let source = "function f«<S>»(a«: string»)«: void» {}";
        assert_eq!(typed(source, true), "function f<S>(a: string): void {}");
        assert_eq!(typed(source, false), "function f(a) {}");
    }

    #[test]
    fn strings_are_ascii_and_escaped() {
        assert_eq!(string("a\"b\\c\n"), r#""a\"b\\c\n""#);
        assert_eq!(
            string("é«😀\u{2028}"),
            r#""\u00e9\u00ab\ud83d\ude00\u2028""#
        );
    }

    #[test]
    fn comments_cannot_end_early() {
        assert_eq!(comment("/a*/b"), "/a*\\/b");
    }

    #[test]
    fn runtime_types_use_only_runtime_names() {
        for line in RUNTIME_TYPES
            .lines()
            .filter(|line| line.starts_with("export "))
        {
            let name = line
                .split_whitespace()
                .nth(2)
                .map(|name| name.trim_end_matches(|c: char| !c.is_alphanumeric()))
                .unwrap_or_default();
            let name = name.split('<').next().unwrap_or_default();
            assert!(
                RUNTIME_NAMES.contains(&name),
                "{name} is not in RUNTIME_NAMES"
            );
        }
    }
}
