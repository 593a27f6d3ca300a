//! The operator's profile schema: what a user's `metadata` may hold.
//!
//! `AUTHGATE_PROFILE_SCHEMA` names a JSON Schema file (draft 2020-12). Its top-level `required`
//! list is split off: a survey may be filled in over several requests, so a missing answer never
//! fails a `PATCH /auth/me`, it only keeps `profile_complete` false. The rest of the schema
//! applies to the merged metadata on every PATCH.
//!
//! Without the variable the service uses [`ProfileSchema::none`], which accepts any metadata and
//! requires nothing, so callers treat both cases alike and need no `Option`.

use std::{collections::BTreeMap, error::Error, fmt, path::Path};

use boon::{
    CompileError, Compiler, Draft, ErrorKind, InstanceToken, SchemaIndex, Schemas, Type, UrlLoader,
    ValidationError,
};
use serde_json::Value;

use super::accounts::Metadata;

/// The address the schema is compiled under. Any absolute URL would do: `.invalid` can never
/// resolve, so not even a bug could fetch from it. Relative `$ref`s resolve against it, which is
/// why messages strip [`SCHEMA_BASE`] back off.
const SCHEMA_URL: &str = "https://authgate.invalid/profile-schema.json";
const SCHEMA_BASE: &str = "https://authgate.invalid/";
const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// A compiled profile schema, or none: see the module documentation.
pub struct ProfileSchema {
    /// `None` when no schema is configured.
    compiled: Option<Compiled>,
    /// The schema's top-level `required`, in the schema's order.
    required: Vec<String>,
}

/// The schema without its top-level `required`, compiled once at start-up because it is used
/// on every PATCH.
struct Compiled {
    schemas: Schemas,
    index: SchemaIndex,
}

impl fmt::Debug for ProfileSchema {
    // By hand: the compiled schema has no `Debug`, and what matters when printing the
    // configuration is whether a schema is set and what it requires.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileSchema")
            .field("configured", &self.compiled.is_some())
            .field("required", &self.required)
            .finish()
    }
}

impl ProfileSchema {
    /// No schema: any metadata object is accepted and no key is required.
    pub fn none() -> ProfileSchema {
        ProfileSchema {
            compiled: None,
            required: Vec::new(),
        }
    }

    /// Reads and compiles the schema file at `path`. The error names the problem without the
    /// path, for a start-up message like `invalid AUTHGATE_PROFILE_SCHEMA=<path>: <problem>`.
    pub fn load(path: &Path) -> Result<ProfileSchema, String> {
        let text = std::fs::read_to_string(path).map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound => "the file does not exist".to_string(),
            _ => format!("the file cannot be read: {err}"),
        })?;
        let schema = serde_json::from_str(&text)
            .map_err(|err| format!("the file is not valid JSON: {err}"))?;
        ProfileSchema::from_json(schema)
    }

    /// Compiles a schema document. It must be an object schema of draft 2020-12 whose
    /// references all point inside the document: nothing is ever fetched.
    pub fn from_json(schema: Value) -> Result<ProfileSchema, String> {
        let Value::Object(mut schema) = schema else {
            return Err(
                "the schema must be a JSON object describing the metadata object, \
                 like {\"type\": \"object\", \"properties\": {…}}"
                    .into(),
            );
        };
        if let Some(declared) = schema.get("$schema")
            && declared.as_str().map(|url| url.trim_end_matches('#')) != Some(DRAFT_2020_12)
        {
            return Err(format!(
                "\"$schema\" is {declared}, but only JSON Schema draft 2020-12 is supported: \
                 use \"{DRAFT_2020_12}\" or leave \"$schema\" out"
            ));
        }
        if let Some(types) = schema.get("type") {
            let allows_object = match types {
                Value::String(name) => name == "object",
                Value::Array(names) => names.iter().any(|name| name == "object"),
                // A malformed `type` is left to the check against the metaschema below.
                _ => true,
            };
            if !allows_object {
                return Err(format!(
                    "the schema's \"type\" is {types}, but metadata is an object: \
                     the top level must describe an object"
                ));
            }
        }
        // Taken out before compiling so that validation ignores it; checked here by hand
        // because the metaschema no longer sees it.
        let required = match schema.remove("required") {
            None => Vec::new(),
            Some(Value::Array(keys)) => {
                let mut required: Vec<String> = Vec::with_capacity(keys.len());
                for key in keys {
                    let Value::String(key) = key else {
                        return Err(format!(
                            "\"required\" must list field names, but it holds {key}"
                        ));
                    };
                    if required.contains(&key) {
                        return Err(format!("\"required\" lists \"{key}\" twice"));
                    }
                    required.push(key);
                }
                required
            }
            Some(other) => {
                return Err(format!(
                    "\"required\" must be a list of field names, but it is {other}"
                ));
            }
        };

        let mut compiler = Compiler::new();
        compiler.set_default_draft(Draft::V2020_12);
        // Draft 2020-12 treats `format` as a mere note by default; an operator who writes
        // `"format": "date"` into a profile schema means it as a rule.
        compiler.enable_format_assertions();
        compiler.use_loader(Box::new(NoFetching));
        let mut schemas = Schemas::new();
        compiler
            .add_resource(SCHEMA_URL, Value::Object(schema))
            .map_err(describe_compile_error)?;
        let index = compiler
            .compile(SCHEMA_URL, &mut schemas)
            .map_err(describe_compile_error)?;
        Ok(ProfileSchema {
            compiled: Some(Compiled { schemas, index }),
            required,
        })
    }

    /// Problems of `metadata`, by field name (`metadata.<key>` for a problem of the value under
    /// a top-level key, `metadata` for one of the whole object); empty when valid. The
    /// top-level `required` is not checked here: see [`ProfileSchema::is_complete`].
    pub fn problems(&self, metadata: &Metadata) -> BTreeMap<String, Vec<String>> {
        let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let Some(compiled) = &self.compiled else {
            return fields;
        };
        // boon validates a `Value`; metadata is a few small fields, so the copy is cheap next
        // to the database round trip of the same request.
        let instance = Value::Object(metadata.clone().into_iter().collect());
        let Err(err) = compiled.schemas.validate(&instance, compiled.index) else {
            return fields;
        };
        let mut problems = Vec::new();
        collect(&err, &mut problems);
        for problem in problems {
            let (field, message) = problem.for_metadata();
            let messages = fields.entry(field).or_default();
            // Branches of `allOf` or a `$ref` may report the same thing twice.
            if !messages.contains(&message) {
                messages.push(message);
            }
        }
        fields
    }

    /// The schema's top-level `required` keys, in the schema's order.
    pub fn required_keys(&self) -> &[String] {
        &self.required
    }

    /// True when every key of the schema's top-level `required` is present in `metadata`.
    pub fn is_complete(&self, metadata: &Metadata) -> bool {
        self.required.iter().all(|key| metadata.contains_key(key))
    }
}

/// Refuses every document but the schema itself, so that a schema can never make the service
/// reach the network or the file system.
struct NoFetching;

impl UrlLoader for NoFetching {
    fn load(&self, url: &str) -> Result<Value, Box<dyn Error>> {
        Err(format!("{url} is outside the schema").into())
    }
}

fn describe_compile_error(err: CompileError) -> String {
    match err {
        CompileError::LoadUrlError { url, .. } => {
            let shown = url.strip_prefix(SCHEMA_BASE).unwrap_or(&url);
            format!(
                "the schema refers to {shown}, but authgate never fetches schemas: \
                 references must point inside the file, like \"#/$defs/name\""
            )
        }
        CompileError::ValidationError { src, .. } => {
            let mut problems = Vec::new();
            collect(&src, &mut problems);
            let problems: Vec<String> = problems.iter().map(Problem::in_schema).collect();
            format!("it is not a valid JSON Schema: {}", problems.join("; "))
        }
        CompileError::JsonPointerNotFound(reference)
        | CompileError::AnchorNotFound { reference, .. } => format!(
            "the reference {} points at nothing in the schema",
            reference.replace(SCHEMA_URL, "")
        ),
        other => {
            format!("it is not a usable JSON Schema: {other:#}").replace(SCHEMA_URL, "the schema")
        }
    }
}

/// One step of the path to a failing value.
enum Step {
    Key(String),
    Item(usize),
}

/// One failing value and what is wrong with it, as a sentence without its subject
/// ("must be at most 8").
struct Problem {
    path: Vec<Step>,
    predicate: String,
}

impl Problem {
    /// The field (`metadata.<key>` or `metadata`) and the full sentence, which names the part
    /// of the value that failed when it lies deeper than the top-level key.
    fn for_metadata(&self) -> (String, String) {
        let (field, inner) = match self.path.split_first() {
            Some((Step::Key(key), inner)) => (format!("metadata.{key}"), inner),
            // Metadata is an object, so its first step is always a key.
            _ => ("metadata".to_string(), &self.path[..]),
        };
        // Innermost first: `"city" of item 2 must be a string.`
        let subject: Vec<String> = inner
            .iter()
            .rev()
            .map(|step| match step {
                Step::Key(key) => format!("\"{key}\""),
                Step::Item(index) => format!("item {}", index + 1),
            })
            .collect();
        let sentence = if subject.is_empty() {
            self.predicate.clone()
        } else {
            format!("{} {}", subject.join(" of "), self.predicate)
        };
        (field, format!("{}.", capitalized(&sentence)))
    }

    /// The problem of a schema document, located by JSON pointer for the operator.
    fn in_schema(&self) -> String {
        if self.path.is_empty() {
            return format!("the top level {}", self.predicate);
        }
        let pointer: String = self
            .path
            .iter()
            .map(|step| match step {
                Step::Key(key) => format!("/{}", key.replace('~', "~0").replace('/', "~1")),
                Step::Item(index) => format!("/{index}"),
            })
            .collect();
        format!("{pointer} {}", self.predicate)
    }
}

/// Flattens boon's tree of errors into the problems a person can act on.
fn collect(err: &ValidationError, out: &mut Vec<Problem>) {
    let path = || -> Vec<Step> {
        err.instance_location
            .tokens
            .iter()
            .map(|token| match token {
                InstanceToken::Prop(key) => Step::Key(key.to_string()),
                InstanceToken::Item(index) => Step::Item(*index),
            })
            .collect()
    };
    match &err.kind {
        // Containers of the real problems.
        ErrorKind::Group
        | ErrorKind::Schema { .. }
        | ErrorKind::Reference { .. }
        | ErrorKind::AllOf
            if !err.causes.is_empty() =>
        {
            for cause in &err.causes {
                collect(cause, out);
            }
        }
        // Each unknown key is its own problem, filed under that key.
        ErrorKind::AdditionalProperties { got } => {
            for key in got {
                let mut path = path();
                path.push(Step::Key(key.to_string()));
                out.push(Problem {
                    path,
                    predicate: "is not an allowed field".into(),
                });
            }
        }
        ErrorKind::PropertyName { prop } => {
            let mut path = path();
            path.push(Step::Key(prop.clone()));
            out.push(Problem {
                path,
                predicate: "is not an allowed field name".into(),
            });
        }
        kind => out.push(Problem {
            path: path(),
            predicate: describe(kind, &err.causes, err.instance_location.tokens.len()),
        }),
    }
}

/// What is wrong, as a predicate for the failing value. `depth` is the length of the failing
/// value's path, so the alternatives of `anyOf` can tell whether they speak of the same value.
fn describe(kind: &ErrorKind, causes: &[ValidationError], depth: usize) -> String {
    match kind {
        ErrorKind::Group
        | ErrorKind::Schema { .. }
        | ErrorKind::Reference { .. }
        | ErrorKind::AllOf
        | ErrorKind::ContentSchema => "is not valid".into(),
        ErrorKind::PropertyName { prop } => format!("must not have a field named \"{prop}\""),
        ErrorKind::RefCycle { .. } => {
            "cannot be checked: the profile schema refers to itself endlessly".into()
        }
        ErrorKind::FalseSchema | ErrorKind::Not => "is not allowed".into(),
        ErrorKind::Type { want, .. } => {
            let names: Vec<&str> = want.iter().map(type_name).collect();
            format!("must be {}", names.join(" or "))
        }
        ErrorKind::Enum { want } => match want.as_slice() {
            [only] => format!("must be {only}"),
            _ => format!("must be one of {}", joined(want.iter())),
        },
        ErrorKind::Const { want } => format!("must be {want}"),
        ErrorKind::Format { want, .. } => format!("must be a valid {want}"),
        ErrorKind::MinProperties { want, .. } => {
            format!("must have at least {}", counted(*want, "field"))
        }
        ErrorKind::MaxProperties { want, .. } => {
            format!("must have at most {}", counted(*want, "field"))
        }
        ErrorKind::AdditionalProperties { got } => {
            format!("must not have {}", field_list(got.iter()))
        }
        ErrorKind::Required { want } => format!("must have {}", field_list(want.iter())),
        ErrorKind::Dependency { prop, missing }
        | ErrorKind::DependentRequired { prop, missing } => format!(
            "must have {} when it has \"{prop}\"",
            field_list(missing.iter())
        ),
        ErrorKind::MinItems { want, .. } => {
            format!("must have at least {}", counted(*want, "item"))
        }
        ErrorKind::MaxItems { want, .. } => format!("must have at most {}", counted(*want, "item")),
        ErrorKind::Contains => "must include an item of the expected kind".into(),
        ErrorKind::MinContains { want, .. } => format!(
            "must include at least {} of the expected kind",
            counted(*want, "item")
        ),
        ErrorKind::MaxContains { want, .. } => format!(
            "must include at most {} of the expected kind",
            counted(*want, "item")
        ),
        ErrorKind::UniqueItems {
            got: [first, second],
        } => format!(
            "must not repeat items, but items {} and {} are the same",
            first + 1,
            second + 1
        ),
        ErrorKind::AdditionalItems { .. } => "has too many items".into(),
        ErrorKind::MinLength { want, .. } => {
            format!("must be at least {} long", counted(*want, "character"))
        }
        ErrorKind::MaxLength { want, .. } => {
            format!("must be at most {} long", counted(*want, "character"))
        }
        ErrorKind::Pattern { want, .. } => {
            format!("is not in the expected form (the pattern {want})")
        }
        ErrorKind::ContentEncoding { want, .. } => format!("must be {want}-encoded"),
        ErrorKind::ContentMediaType { want, .. } => format!("must be valid {want}"),
        ErrorKind::Minimum { want, .. } => format!("must be at least {want}"),
        ErrorKind::Maximum { want, .. } => format!("must be at most {want}"),
        ErrorKind::ExclusiveMinimum { want, .. } => format!("must be more than {want}"),
        ErrorKind::ExclusiveMaximum { want, .. } => format!("must be less than {want}"),
        ErrorKind::MultipleOf { want, .. } => format!("must be a multiple of {want}"),
        ErrorKind::AnyOf | ErrorKind::OneOf(None) => alternatives(causes, depth)
            .unwrap_or_else(|| "does not match any of the allowed forms".into()),
        ErrorKind::OneOf(Some(_)) => "matches more than one of the allowed forms".into(),
    }
}

/// "must be a string, or must be null" for an `anyOf`/`oneOf` whose every branch failed on the
/// value itself; `None` when a branch failed deeper down, which one sentence cannot say well.
fn alternatives(causes: &[ValidationError], depth: usize) -> Option<String> {
    if causes.is_empty() {
        return None;
    }
    let predicates = causes
        .iter()
        .map(|cause| {
            let leaf = innermost(cause);
            (leaf.causes.is_empty() && leaf.instance_location.tokens.len() == depth)
                .then(|| describe(&leaf.kind, &[], depth))
        })
        .collect::<Option<Vec<String>>>()?;
    Some(predicates.join(", or "))
}

/// Looks through wrappers around a single error, such as the one a `$ref` adds.
fn innermost<'e, 's, 'v>(err: &'e ValidationError<'s, 'v>) -> &'e ValidationError<'s, 'v> {
    match (&err.kind, err.causes.as_slice()) {
        (ErrorKind::Group | ErrorKind::Schema { .. } | ErrorKind::Reference { .. }, [only]) => {
            innermost(only)
        }
        _ => err,
    }
}

fn type_name(kind: Type) -> &'static str {
    match kind {
        Type::Null => "null",
        Type::Boolean => "true or false",
        Type::Number => "a number",
        Type::Integer => "a whole number",
        Type::String => "a string",
        Type::Array => "a list",
        Type::Object => "an object",
    }
}

fn counted(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// `the field "a"` or `the fields "a", "b"`.
fn field_list<T: fmt::Display>(keys: impl ExactSizeIterator<Item = T>) -> String {
    let noun = if keys.len() == 1 { "field" } else { "fields" };
    format!(
        "the {noun} {}",
        joined(keys.map(|key| format!("\"{key}\"")))
    )
}

fn joined<T: fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items
        .map(|item| item.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn capitalized(sentence: &str) -> String {
    let mut chars = sentence.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A mentoring platform's sign-up survey.
    fn survey() -> ProfileSchema {
        ProfileSchema::from_json(json!({
            "type": "object",
            "properties": {
                "department": {"type": "string", "maxLength": 100},
                "year": {"type": "integer", "minimum": 1, "maximum": 8},
                "interests": {
                    "type": "array",
                    "items": {"type": "string"},
                    "maxItems": 10
                }
            },
            "required": ["department", "year"],
            "additionalProperties": false
        }))
        .expect("the survey schema compiles")
    }

    fn metadata(value: Value) -> Metadata {
        match value {
            Value::Object(map) => map.into_iter().collect(),
            other => panic!("test metadata must be an object, not {other}"),
        }
    }

    fn problems(schema: &ProfileSchema, value: Value) -> BTreeMap<String, Vec<String>> {
        schema.problems(&metadata(value))
    }

    fn fields(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(field, messages)| {
                let messages = messages.iter().map(|m| m.to_string()).collect();
                (field.to_string(), messages)
            })
            .collect()
    }

    fn load_error(text: &str) -> String {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("profile.json");
        std::fs::write(&path, text).expect("the schema file is written");
        ProfileSchema::load(&path).expect_err("the schema must be refused")
    }

    #[test]
    fn valid_partial_metadata_passes_because_required_is_ignored() {
        let schema = survey();
        assert!(problems(&schema, json!({})).is_empty());
        assert!(problems(&schema, json!({"interests": ["rust", "chess"]})).is_empty());
        assert!(problems(&schema, json!({"department": "Physics", "year": 3})).is_empty());
    }

    #[test]
    fn wrong_type_is_reported_under_its_key() {
        let found = problems(&survey(), json!({"year": "third"}));
        assert_eq!(
            found,
            fields(&[("metadata.year", &["Must be a whole number."])])
        );
    }

    #[test]
    fn every_problem_of_one_key_is_reported() {
        let mut interests: Vec<Value> = (0..10).map(|i| json!(format!("topic {i}"))).collect();
        interests.insert(2, json!(7));
        let found = problems(&survey(), json!({"interests": interests, "year": 9}));
        assert_eq!(
            found,
            fields(&[
                (
                    "metadata.interests",
                    &["Must have at most 10 items.", "Item 3 must be a string."]
                ),
                ("metadata.year", &["Must be at most 8."]),
            ])
        );
    }

    #[test]
    fn unknown_keys_are_reported_under_each_key() {
        let found = problems(
            &survey(),
            json!({"department": "Law", "shoe_size": 44, "pet": "cat"}),
        );
        assert_eq!(
            found,
            fields(&[
                ("metadata.pet", &["Is not an allowed field."]),
                ("metadata.shoe_size", &["Is not an allowed field."]),
            ])
        );
    }

    #[test]
    fn problems_of_the_whole_object_go_under_metadata() {
        let schema = ProfileSchema::from_json(json!({"type": "object", "maxProperties": 1}))
            .expect("compiles");
        let found = problems(&schema, json!({"a": 1, "b": 2}));
        assert_eq!(
            found,
            fields(&[("metadata", &["Must have at most 1 field."])])
        );
    }

    #[test]
    fn nested_values_are_named_in_the_message() {
        let schema = ProfileSchema::from_json(json!({
            "type": "object",
            "properties": {
                "mentors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"name": {"type": "string", "minLength": 2}},
                        "required": ["name"]
                    }
                },
                "pronouns": {"anyOf": [{"type": "string"}, {"type": "null"}]}
            }
        }))
        .expect("compiles");
        let found = problems(
            &schema,
            json!({"mentors": [{"name": "Al"}, {"name": "A"}, {}], "pronouns": 3}),
        );
        assert_eq!(
            found,
            fields(&[
                (
                    "metadata.mentors",
                    &[
                        "\"name\" of item 2 must be at least 2 characters long.",
                        "Item 3 must have the field \"name\"."
                    ]
                ),
                ("metadata.pronouns", &["Must be a string, or must be null."]),
            ])
        );
    }

    #[test]
    fn formats_are_checked() {
        let schema = ProfileSchema::from_json(json!({
            "properties": {"started": {"type": "string", "format": "date"}}
        }))
        .expect("compiles");
        assert!(problems(&schema, json!({"started": "2024-09-01"})).is_empty());
        assert_eq!(
            problems(&schema, json!({"started": "first of September"})),
            fields(&[("metadata.started", &["Must be a valid date."])])
        );
    }

    #[test]
    fn completeness_follows_the_top_level_required_list() {
        let schema = survey();
        assert_eq!(schema.required_keys(), ["department", "year"]);
        assert!(!schema.is_complete(&metadata(json!({"department": "Law"}))));
        assert!(schema.is_complete(&metadata(json!({"department": "Law", "year": 2}))));
    }

    #[test]
    fn no_schema_accepts_everything_and_requires_nothing() {
        let schema = ProfileSchema::none();
        assert!(problems(&schema, json!({"anything": [1, {"goes": true}]})).is_empty());
        assert!(schema.required_keys().is_empty());
        assert!(schema.is_complete(&Metadata::new()));
    }

    #[test]
    fn a_local_ref_to_defs_works() {
        let schema = ProfileSchema::from_json(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://mentoring.example/profile.json",
            "type": "object",
            "$defs": {"level": {"enum": ["beginner", "intermediate", "expert"]}},
            "properties": {
                "rust": {"$ref": "#/$defs/level"},
                "go": {"$ref": "https://mentoring.example/profile.json#/$defs/level"}
            }
        }))
        .expect("a schema with local references compiles");
        assert!(problems(&schema, json!({"rust": "expert", "go": "beginner"})).is_empty());
        assert_eq!(
            problems(&schema, json!({"rust": "guru"})),
            fields(&[(
                "metadata.rust",
                &["Must be one of \"beginner\", \"intermediate\", \"expert\"."]
            )])
        );
    }

    #[test]
    fn a_missing_file_is_named() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let err = ProfileSchema::load(&dir.path().join("absent.json")).expect_err("refused");
        assert_eq!(err, "the file does not exist");
    }

    #[test]
    fn a_file_that_is_not_json_is_refused() {
        let err = load_error("{\"type\": \"object\",");
        assert!(err.starts_with("the file is not valid JSON: "), "{err}");
    }

    #[test]
    fn an_invalid_schema_is_refused() {
        let err = load_error(r#"{"type": 5}"#);
        assert!(
            err.starts_with("it is not a valid JSON Schema: /type "),
            "{err}"
        );
    }

    #[test]
    fn a_remote_ref_is_refused_without_fetching() {
        let err = load_error(
            r#"{"type": "object", "properties": {"x": {"$ref": "https://example.com/x.json"}}}"#,
        );
        assert_eq!(
            err,
            "the schema refers to https://example.com/x.json, but authgate never fetches \
             schemas: references must point inside the file, like \"#/$defs/name\""
        );
        let err = load_error(r#"{"properties": {"x": {"$ref": "other.json"}}}"#);
        assert!(
            err.starts_with("the schema refers to other.json, "),
            "{err}"
        );
        let err = load_error(r##"{"properties": {"x": {"$ref": "#/$defs/nothing"}}}"##);
        assert_eq!(
            err,
            "the reference #/$defs/nothing points at nothing in the schema"
        );
    }

    #[test]
    fn schemas_that_do_not_describe_an_object_are_refused() {
        for (schema, start) in [
            (json!(true), "the schema must be a JSON object"),
            (
                json!({"type": "string"}),
                "the schema's \"type\" is \"string\"",
            ),
            (
                json!({"$schema": "http://json-schema.org/draft-07/schema#"}),
                "\"$schema\" is \"http://json-schema.org/draft-07/schema#\"",
            ),
            (json!({"required": "year"}), "\"required\" must be a list"),
            (
                json!({"required": ["a", "a"]}),
                "\"required\" lists \"a\" twice",
            ),
        ] {
            let err = ProfileSchema::from_json(schema).expect_err("refused");
            assert!(err.starts_with(start), "{err}");
        }
    }

    #[test]
    fn the_compiled_schema_can_be_shared_between_requests() {
        fn shared<T: Send + Sync>() {}
        shared::<ProfileSchema>();
    }
}
