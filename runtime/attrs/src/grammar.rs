//! Parsing of attribute arguments into [`Options`].
//!
//! Every error carries the span of the offending token and, for an unknown option, the
//! list of valid ones.

use std::collections::BTreeSet;

use proc_macro2::{Span, TokenStream};
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, LitStr, Meta, Token};

use crate::duration::parse_duration_ms;
use crate::options::*;
use crate::Kind;

/// Parses the arguments of `#[forge::<kind>(...)]` (the tokens inside the parentheses).
pub fn parse_options(kind: Kind, args: TokenStream) -> syn::Result<Options> {
    let (positional, metas) = split_args.parse2(args)?;
    if let (Some(literal), false) = (&positional, kind == Kind::Cron) {
        return Err(syn::Error::new(
            literal.span(),
            format!(
                "#[forge::{}] takes only named options; valid options: {}",
                kind.attribute_name(),
                valid_options(kind).join(", ")
            ),
        ));
    }
    let mut reader = Reader::new(kind);
    match kind {
        Kind::Query => query(&mut reader, metas).map(Options::Query),
        Kind::Mutation => mutation(&mut reader, metas).map(Options::Mutation),
        Kind::Job => job(&mut reader, metas).map(Options::Job),
        Kind::Cron => cron(&mut reader, positional, metas).map(Options::Cron),
        Kind::Workflow => workflow(&mut reader, metas).map(Options::Workflow),
        Kind::Daemon => daemon(&mut reader, metas).map(Options::Daemon),
        Kind::Webhook => webhook(&mut reader, metas).map(Options::Webhook),
        Kind::McpTool => mcp_tool(&mut reader, metas).map(Options::McpTool),
        Kind::Model => model(&mut reader, metas).map(Options::Model),
    }
}

/// The option names each attribute accepts, as listed in error messages.
fn valid_options(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Query => &[
            "public",
            "unscoped",
            "scope",
            "cache",
            "tables",
            "timeout",
            "rate_limit",
        ],
        Kind::Mutation => &["transactional", "public", "timeout", "rate_limit"],
        Kind::Job => &["retry", "timeout", "queue", "priority"],
        Kind::Cron => &[
            "\"<cron expression>\"",
            "every",
            "daily_at",
            "timezone",
            "catch_up",
            "timeout",
        ],
        Kind::Workflow => &["name", "version", "active", "timeout"],
        Kind::Daemon => &["leader_elected", "replicated", "restart"],
        Kind::Webhook => &["path", "signature", "tolerance", "idempotency"],
        Kind::McpTool => &["name", "title", "read_only", "rate_limit"],
        Kind::Model => &["table"],
    }
}

const RETRY_OPTIONS: &[&str] = &["max_attempts", "backoff", "base", "max"];

fn split_args(input: ParseStream) -> syn::Result<(Option<LitStr>, Vec<Meta>)> {
    let mut positional = None;
    if input.peek(LitStr) {
        positional = Some(input.parse()?);
        if !input.is_empty() {
            input.parse::<Token![,]>()?;
        }
    }
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated(input)?;
    Ok((positional, metas.into_iter().collect()))
}

/// Reads options one by one, rejecting unknown and repeated names.
struct Reader {
    context: String,
    valid: &'static [&'static str],
    seen: BTreeSet<String>,
}

impl Reader {
    fn new(kind: Kind) -> Self {
        Reader {
            context: format!("#[forge::{}]", kind.attribute_name()),
            valid: valid_options(kind),
            seen: BTreeSet::new(),
        }
    }

    fn nested(context: String, valid: &'static [&'static str]) -> Self {
        Reader {
            context,
            valid,
            seen: BTreeSet::new(),
        }
    }

    /// The option's name, after checking it is known and not repeated.
    fn name(&mut self, meta: &Meta) -> syn::Result<String> {
        let path = meta.path();
        let Some(ident) = path.get_ident() else {
            return Err(self.unknown(path.span(), &quote_path(path)));
        };
        let name = ident.to_string();
        if !self.valid.contains(&name.as_str()) {
            return Err(self.unknown(ident.span(), &name));
        }
        if !self.seen.insert(name.clone()) {
            return Err(syn::Error::new(
                ident.span(),
                format!("option `{name}` is given twice in {}", self.context),
            ));
        }
        Ok(name)
    }

    fn unknown(&self, span: Span, name: &str) -> syn::Error {
        syn::Error::new(
            span,
            format!(
                "unknown option `{name}` for {}; valid options: {}",
                self.context,
                self.valid.join(", ")
            ),
        )
    }
}

fn quote_path(path: &syn::Path) -> String {
    path.segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

fn flag(meta: &Meta, name: &str) -> syn::Result<bool> {
    match meta {
        Meta::Path(_) => Ok(true),
        Meta::NameValue(nv) => match &nv.value {
            Expr::Lit(ExprLit {
                lit: Lit::Bool(b), ..
            }) => Ok(b.value),
            other => Err(syn::Error::new(
                other.span(),
                format!("`{name}` is a flag: write `{name}` or `{name} = true|false`"),
            )),
        },
        Meta::List(list) => Err(syn::Error::new(
            list.delimiter.span().join(),
            format!("`{name}` is a flag: write `{name}` or `{name} = true|false`"),
        )),
    }
}

fn string(meta: &Meta, name: &str, example: &str) -> syn::Result<LitStr> {
    if let Meta::NameValue(nv) = meta {
        if let Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) = &nv.value
        {
            return Ok(s.clone());
        }
        return Err(syn::Error::new(
            nv.value.span(),
            format!("`{name}` takes a string: `{name} = {example}`"),
        ));
    }
    Err(syn::Error::new(
        meta.span(),
        format!("`{name}` takes a string: `{name} = {example}`"),
    ))
}

fn non_empty_string(meta: &Meta, name: &str, example: &str) -> syn::Result<String> {
    let literal = string(meta, name, example)?;
    let value = literal.value();
    if value.trim().is_empty() {
        return Err(syn::Error::new(
            literal.span(),
            format!("`{name}` must not be empty: `{name} = {example}`"),
        ));
    }
    Ok(value)
}

fn duration(meta: &Meta, name: &str) -> syn::Result<u64> {
    let literal = string(meta, name, "\"30s\"")?;
    parse_duration_ms(&literal.value())
        .map_err(|message| syn::Error::new(literal.span(), format!("`{name}`: {message}")))
}

fn rate_limit(meta: &Meta) -> syn::Result<RateLimit> {
    let literal = string(meta, "rate_limit", "\"20/m\"")?;
    RateLimit::parse(&literal.value())
        .map_err(|message| syn::Error::new(literal.span(), format!("`rate_limit`: {message}")))
}

/// A duration that must be more than zero (a cache that lasts no time caches nothing);
/// a negative one gets its own message rather than "the number is missing".
fn positive_duration(meta: &Meta, name: &str) -> syn::Result<u64> {
    let literal = string(meta, name, "\"30s\"")?;
    let text = literal.value();
    if text.trim_start().starts_with('-') {
        return Err(syn::Error::new(
            literal.span(),
            format!("`{name}`: `{text}` is negative; give a positive duration such as \"30s\""),
        ));
    }
    let ms = duration(meta, name)?;
    if ms == 0 {
        return Err(syn::Error::new(
            literal.span(),
            format!(
                "`{name}`: a duration of zero caches nothing; give a positive duration such as \"30s\", or remove `{name}`"
            ),
        ));
    }
    Ok(ms)
}

fn integer<T: std::str::FromStr>(meta: &Meta, name: &str, example: &str) -> syn::Result<T>
where
    T::Err: std::fmt::Display,
{
    if let Meta::NameValue(nv) = meta {
        let (digits, span) = match &nv.value {
            Expr::Lit(ExprLit {
                lit: Lit::Int(i), ..
            }) => (i.base10_digits().to_owned(), i.span()),
            Expr::Unary(syn::ExprUnary {
                op: syn::UnOp::Neg(_),
                expr,
                ..
            }) => match &**expr {
                Expr::Lit(ExprLit {
                    lit: Lit::Int(i), ..
                }) => (format!("-{}", i.base10_digits()), i.span()),
                other => return Err(expected_integer(other.span(), name, example)),
            },
            other => return Err(expected_integer(other.span(), name, example)),
        };
        return digits
            .parse::<T>()
            .map_err(|e| syn::Error::new(span, format!("`{name}`: {e}")));
    }
    Err(expected_integer(meta.span(), name, example))
}

fn expected_integer(span: Span, name: &str, example: &str) -> syn::Error {
    syn::Error::new(
        span,
        format!("`{name}` takes an integer: `{name} = {example}`"),
    )
}

fn query(reader: &mut Reader, metas: Vec<Meta>) -> syn::Result<QueryOptions> {
    let mut options = QueryOptions::default();
    for meta in &metas {
        match reader.name(meta)?.as_str() {
            "public" => options.public = flag(meta, "public")?,
            "unscoped" => options.unscoped = flag(meta, "unscoped")?,
            "scope" => {
                let literal = string(meta, "scope", "\"global\"")?;
                if literal.value() != "global" {
                    return Err(syn::Error::new(
                        literal.span(),
                        "the only scope is \"global\" (the same as `unscoped`); private queries are scoped to the caller by default",
                    ));
                }
                options.unscoped = true;
            }
            "cache" => options.cache_ms = Some(positive_duration(meta, "cache")?),
            "tables" => options.tables = tables(meta)?,
            "timeout" => options.timeout_ms = Some(duration(meta, "timeout")?),
            "rate_limit" => options.rate_limit = Some(rate_limit(meta)?),
            _ => unreachable!("every valid query option is handled"),
        }
    }
    Ok(options)
}

fn tables(meta: &Meta) -> syn::Result<Vec<String>> {
    let hint = "`tables` lists table names: `tables(\"orders\", \"users\")`";
    let Meta::List(list) = meta else {
        return Err(syn::Error::new(meta.span(), hint));
    };
    let names = list
        .parse_args_with(Punctuated::<LitStr, Token![,]>::parse_terminated)
        .map_err(|e| syn::Error::new(e.span(), hint))?;
    if names.is_empty() {
        return Err(syn::Error::new(list.span(), hint));
    }
    names
        .iter()
        .map(|name| {
            let value = name.value();
            if value.trim().is_empty() {
                Err(syn::Error::new(
                    name.span(),
                    "a table name must not be empty",
                ))
            } else {
                Ok(value)
            }
        })
        .collect()
}

fn mutation(reader: &mut Reader, metas: Vec<Meta>) -> syn::Result<MutationOptions> {
    let mut options = MutationOptions::default();
    for meta in &metas {
        match reader.name(meta)?.as_str() {
            "transactional" => options.transactional = flag(meta, "transactional")?,
            "public" => options.public = flag(meta, "public")?,
            "timeout" => options.timeout_ms = Some(duration(meta, "timeout")?),
            "rate_limit" => options.rate_limit = Some(rate_limit(meta)?),
            _ => unreachable!("every valid mutation option is handled"),
        }
    }
    Ok(options)
}

fn job(reader: &mut Reader, metas: Vec<Meta>) -> syn::Result<JobOptions> {
    let mut options = JobOptions::default();
    for meta in &metas {
        match reader.name(meta)?.as_str() {
            "retry" => options.retry = retry(meta)?,
            "timeout" => options.timeout_ms = Some(duration(meta, "timeout")?),
            "queue" => options.queue = non_empty_string(meta, "queue", "\"default\"")?,
            "priority" => options.priority = integer(meta, "priority", "0")?,
            _ => unreachable!("every valid job option is handled"),
        }
    }
    Ok(options)
}

fn retry(meta: &Meta) -> syn::Result<RetryOptions> {
    let Meta::List(list) = meta else {
        return Err(syn::Error::new(
            meta.span(),
            "`retry` takes options: `retry(max_attempts = 3, backoff = \"exponential\", base = \"1s\", max = \"5m\")`",
        ));
    };
    let metas = list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?;
    let mut reader = Reader::nested("retry(...)".to_owned(), RETRY_OPTIONS);
    let mut retry = RetryOptions::default();
    for meta in &metas {
        match reader.name(meta)?.as_str() {
            "max_attempts" => {
                retry.max_attempts = integer(meta, "max_attempts", "3")?;
                if retry.max_attempts == 0 {
                    return Err(syn::Error::new(
                        meta.span(),
                        "`max_attempts` must be at least 1",
                    ));
                }
            }
            "backoff" => {
                let literal = string(meta, "backoff", "\"exponential\"")?;
                retry.backoff = match literal.value().as_str() {
                    "exponential" => Backoff::Exponential,
                    "linear" => Backoff::Linear,
                    "fixed" => Backoff::Fixed,
                    other => {
                        return Err(syn::Error::new(
                            literal.span(),
                            format!("unknown backoff `{other}`; valid: \"exponential\", \"linear\", \"fixed\""),
                        ))
                    }
                };
            }
            "base" => retry.base_ms = duration(meta, "base")?,
            "max" => retry.max_ms = duration(meta, "max")?,
            _ => unreachable!("every valid retry option is handled"),
        }
    }
    if retry.base_ms > retry.max_ms {
        return Err(syn::Error::new(
            list.span(),
            "`base` must not be longer than `max`",
        ));
    }
    Ok(retry)
}

fn cron(
    reader: &mut Reader,
    positional: Option<LitStr>,
    metas: Vec<Meta>,
) -> syn::Result<CronOptions> {
    let mut schedule = positional.map(|literal| (Schedule::Cron(literal.value()), literal.span()));
    let mut timezone = None;
    let mut catch_up = 0;
    let mut timeout_ms = None;
    for meta in &metas {
        let name = reader.name(meta)?;
        let next = match name.as_str() {
            "every" => Some(Schedule::EveryMs(duration(meta, "every")?)),
            "daily_at" => {
                let literal = string(meta, "daily_at", "\"09:00\"")?;
                Some(Schedule::DailyAt(literal.value()))
            }
            "timezone" => {
                timezone = Some(non_empty_string(meta, "timezone", "\"Europe/Berlin\"")?);
                None
            }
            "catch_up" => {
                catch_up = integer(meta, "catch_up", "10")?;
                None
            }
            "timeout" => {
                timeout_ms = Some(duration(meta, "timeout")?);
                None
            }
            _ => unreachable!("every valid cron option is handled"),
        };
        if let Some(next) = next {
            if schedule.is_some() {
                return Err(syn::Error::new(
                    meta.span(),
                    "a cron has exactly one schedule: a cron expression, `every` or `daily_at`",
                ));
            }
            schedule = Some((next, meta.span()));
        }
    }
    let Some((schedule, _)) = schedule else {
        return Err(syn::Error::new(
            Span::call_site(),
            "#[forge::cron] needs a schedule: `#[forge::cron(\"0 9 * * *\")]`, `every = \"15m\"` or `daily_at = \"09:00\"`",
        ));
    };
    if schedule == Schedule::EveryMs(0) {
        return Err(syn::Error::new(
            Span::call_site(),
            "`every` must be longer than zero",
        ));
    }
    Ok(CronOptions {
        schedule,
        timezone,
        catch_up,
        timeout_ms,
    })
}

fn workflow(reader: &mut Reader, metas: Vec<Meta>) -> syn::Result<WorkflowOptions> {
    let mut options = WorkflowOptions::default();
    for meta in &metas {
        match reader.name(meta)?.as_str() {
            "name" => options.name = Some(non_empty_string(meta, "name", "\"onboarding\"")?),
            "version" => options.version = non_empty_string(meta, "version", "\"2026-03\"")?,
            "active" => options.active = flag(meta, "active")?,
            "timeout" => options.timeout_ms = Some(duration(meta, "timeout")?),
            _ => unreachable!("every valid workflow option is handled"),
        }
    }
    Ok(options)
}

fn daemon(reader: &mut Reader, metas: Vec<Meta>) -> syn::Result<DaemonOptions> {
    let mut options = DaemonOptions::default();
    let mut mode_given = false;
    for meta in &metas {
        let name = reader.name(meta)?;
        match name.as_str() {
            "leader_elected" | "replicated" => {
                if !matches!(meta, Meta::Path(_)) {
                    return Err(syn::Error::new(
                        meta.span(),
                        format!("`{name}` is a flag and takes no value"),
                    ));
                }
                if mode_given {
                    return Err(syn::Error::new(
                        meta.span(),
                        "a daemon is either `leader_elected` or `replicated`, not both",
                    ));
                }
                mode_given = true;
                options.mode = if name == "replicated" {
                    DaemonMode::Replicated
                } else {
                    DaemonMode::LeaderElected
                };
            }
            "restart" => options.restart_ms = duration(meta, "restart")?,
            _ => unreachable!("every valid daemon option is handled"),
        }
    }
    Ok(options)
}

fn webhook(reader: &mut Reader, metas: Vec<Meta>) -> syn::Result<WebhookOptions> {
    let mut path = None;
    let mut signature = None;
    let mut tolerance = None;
    let mut idempotency = None;
    for meta in &metas {
        match reader.name(meta)?.as_str() {
            "path" => {
                let literal = string(meta, "path", "\"/hooks/stripe\"")?;
                let value = literal.value();
                if !value.starts_with('/') || value.starts_with("/_api/") || value.contains(' ') {
                    return Err(syn::Error::new(
                        literal.span(),
                        "a webhook path starts with `/`, has no spaces and is outside `/_api/`: `path = \"/hooks/stripe\"`",
                    ));
                }
                path = Some(value);
            }
            "signature" => signature = Some(webhook_signature(meta)?),
            "tolerance" => tolerance = Some((duration(meta, "tolerance")?, meta.span())),
            "idempotency" => {
                let literal = string(meta, "idempotency", "\"header:Idempotency-Key\"")?;
                let value = literal.value();
                match value.split_once(':') {
                    Some(("header", name)) if !name.trim().is_empty() => {
                        idempotency = Some(Idempotency::Header {
                            name: name.trim().to_owned(),
                        })
                    }
                    _ => {
                        return Err(syn::Error::new(
                            literal.span(),
                            "`idempotency` names where the key comes from: `idempotency = \"header:Idempotency-Key\"`",
                        ))
                    }
                }
            }
            _ => unreachable!("every valid webhook option is handled"),
        }
    }
    let Some(path) = path else {
        return Err(syn::Error::new(
            Span::call_site(),
            "#[forge::webhook] needs a path: `#[forge::webhook(path = \"/hooks/stripe\")]`",
        ));
    };
    if let Some((ms, span)) = tolerance {
        match &mut signature {
            Some(
                WebhookSignature::Stripe { tolerance_ms, .. }
                | WebhookSignature::StandardWebhooks { tolerance_ms, .. },
            ) if ms > 0 => *tolerance_ms = ms,
            Some(WebhookSignature::Stripe { .. } | WebhookSignature::StandardWebhooks { .. }) => {
                return Err(syn::Error::new(span, "`tolerance` must be longer than zero"))
            }
            _ => {
                return Err(syn::Error::new(
                    span,
                    "`tolerance` is for schemes that sign a timestamp: `signature = stripe(\"ENV\")` or `standard_webhooks(\"ENV\")`",
                ))
            }
        }
    }
    Ok(WebhookOptions {
        path,
        signature,
        idempotency,
    })
}

fn webhook_signature(meta: &Meta) -> syn::Result<WebhookSignature> {
    let hint =
        "`signature` takes `hmac_sha256(\"Header-Name\", \"SECRET_ENV_VAR\")` (the header carrying the hex HMAC-SHA256 of the body, the environment variable holding the secret) or a provider's scheme: `stripe(\"SECRET_ENV_VAR\")`, `github(\"SECRET_ENV_VAR\")`, `standard_webhooks(\"SECRET_ENV_VAR\")`";
    let Meta::NameValue(nv) = meta else {
        return Err(syn::Error::new(meta.span(), hint));
    };
    let Expr::Call(call) = &nv.value else {
        return Err(syn::Error::new(nv.value.span(), hint));
    };
    let scheme = match &*call.func {
        Expr::Path(p) => p.path.get_ident().map(|i| i.to_string()),
        _ => None,
    };
    let arity = match scheme.as_deref() {
        Some("hmac_sha256") => 2,
        Some("stripe" | "github" | "standard_webhooks") => 1,
        _ => return Err(syn::Error::new(call.span(), hint)),
    };
    if call.args.len() != arity {
        return Err(syn::Error::new(call.span(), hint));
    }
    let literals = call
        .args
        .iter()
        .map(|arg| match arg {
            Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) if !s.value().trim().is_empty() => Ok(s.value()),
            other => Err(syn::Error::new(other.span(), hint)),
        })
        .collect::<syn::Result<Vec<_>>>()?;
    let tolerance_ms = DEFAULT_WEBHOOK_TOLERANCE_MS;
    let mut literals = literals.into_iter();
    let mut next = || literals.next().expect("the arity was checked");
    Ok(match scheme.as_deref() {
        Some("hmac_sha256") => WebhookSignature::HmacSha256 {
            header: next(),
            secret_env: next(),
        },
        Some("stripe") => WebhookSignature::Stripe {
            secret_env: next(),
            tolerance_ms,
        },
        Some("github") => WebhookSignature::Github { secret_env: next() },
        _ => WebhookSignature::StandardWebhooks {
            secret_env: next(),
            tolerance_ms,
        },
    })
}

fn mcp_tool(reader: &mut Reader, metas: Vec<Meta>) -> syn::Result<McpToolOptions> {
    let mut options = McpToolOptions::default();
    for meta in &metas {
        match reader.name(meta)?.as_str() {
            "name" => {
                let literal = string(meta, "name", "\"tickets.list\"")?;
                let value = literal.value();
                let valid = !value.is_empty()
                    && value.len() <= 128
                    && value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
                if !valid {
                    return Err(syn::Error::new(
                        literal.span(),
                        "an MCP tool name has 1 to 128 characters from A-Z, a-z, 0-9, `_`, `-` and `.`",
                    ));
                }
                options.name = Some(value);
            }
            "title" => options.title = Some(non_empty_string(meta, "title", "\"List tickets\"")?),
            "read_only" => options.read_only = flag(meta, "read_only")?,
            "rate_limit" => options.rate_limit = Some(rate_limit(meta)?),
            _ => unreachable!("every valid mcp_tool option is handled"),
        }
    }
    Ok(options)
}

fn model(reader: &mut Reader, metas: Vec<Meta>) -> syn::Result<ModelOptions> {
    let mut options = ModelOptions::default();
    for meta in &metas {
        match reader.name(meta)?.as_str() {
            "table" => options.table = Some(non_empty_string(meta, "table", "\"users\"")?),
            _ => unreachable!("every valid model option is handled"),
        }
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(kind: Kind, text: &str) -> Result<Options, String> {
        let tokens = text.parse().expect("test input tokenizes");
        parse_options(kind, tokens).map_err(|e| e.to_string())
    }

    #[test]
    fn empty_arguments_give_defaults() {
        assert_eq!(
            parse(Kind::Query, ""),
            Ok(Options::Query(QueryOptions::default()))
        );
        assert_eq!(
            parse(Kind::Mutation, ""),
            Ok(Options::Mutation(MutationOptions::default()))
        );
        assert_eq!(
            parse(Kind::Job, ""),
            Ok(Options::Job(JobOptions::default()))
        );
    }

    #[test]
    fn query_options() {
        let Ok(Options::Query(q)) = parse(
            Kind::Query,
            r#"public, cache = "30s", tables("a", "b"), timeout = "5s""#,
        ) else {
            panic!("query options did not parse")
        };
        assert!(q.public && !q.unscoped);
        assert_eq!(q.cache_ms, Some(30_000));
        for (cache, message) in [
            ("0s", "`cache`: a duration of zero caches nothing"),
            ("0ms", "`cache`: a duration of zero caches nothing"),
            ("-5s", "`cache`: `-5s` is negative"),
        ] {
            let error = parse(Kind::Query, &format!("cache = {cache:?}")).unwrap_err();
            assert!(error.to_string().starts_with(message), "{cache}: {error}");
        }
        assert_eq!(q.tables, ["a", "b"]);
        assert_eq!(q.timeout_ms, Some(5_000));
        let Ok(Options::Query(q)) = parse(Kind::Query, r#"scope = "global""#) else {
            panic!("scope did not parse")
        };
        assert!(q.unscoped);
    }

    #[test]
    fn rate_limits() {
        for (kind, text) in [
            (Kind::Query, r#"rate_limit = "20/m""#),
            (Kind::Mutation, r#"rate_limit = "20/m""#),
            (Kind::McpTool, r#"rate_limit = "20/m""#),
        ] {
            let options = parse(kind, text).unwrap();
            assert_eq!(
                options.rate_limit(),
                Some(RateLimit {
                    count: 20,
                    per_ms: 60_000
                })
            );
        }
        assert_eq!(
            RateLimit::parse("5/s"),
            Ok(RateLimit {
                count: 5,
                per_ms: 1_000
            })
        );
        assert_eq!(
            RateLimit::parse(" 300 / h "),
            Ok(RateLimit {
                count: 300,
                per_ms: 3_600_000
            })
        );
        for (bad, says) in [
            (
                "20",
                "expected a number of calls per second, minute or hour",
            ),
            ("20/d", "unknown unit `d`"),
            ("20/min", "unknown unit `min`"),
            ("/m", "expected"),
            ("-1/m", "expected"),
            ("1.5/m", "expected"),
            ("0/m", "at least 1"),
            ("99999999999/m", "at most 1000000"),
        ] {
            let error = RateLimit::parse(bad).unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
        assert!(parse(Kind::Query, "rate_limit = 20")
            .unwrap_err()
            .contains("`rate_limit` takes a string: `rate_limit = \"20/m\"`"));
        assert!(parse(Kind::Job, r#"rate_limit = "20/m""#)
            .unwrap_err()
            .contains("unknown option `rate_limit`"));
    }

    #[test]
    fn unknown_option_lists_valid_ones() {
        let error = parse(Kind::Query, "pubic").unwrap_err();
        assert_eq!(
            error,
            "unknown option `pubic` for #[forge::query]; valid options: public, unscoped, scope, cache, tables, timeout, rate_limit"
        );
        let error = parse(Kind::Job, "retry(attempts = 3)").unwrap_err();
        assert!(
            error.contains("valid options: max_attempts, backoff, base, max"),
            "{error}"
        );
    }

    #[test]
    fn job_retry() {
        let Ok(Options::Job(job)) = parse(
            Kind::Job,
            r#"retry(max_attempts = 5, backoff = "linear", base = "2s", max = "1m"), timeout = "1h", queue = "mail", priority = -2"#,
        ) else {
            panic!("job options did not parse")
        };
        assert_eq!(
            job.retry,
            RetryOptions {
                max_attempts: 5,
                backoff: Backoff::Linear,
                base_ms: 2_000,
                max_ms: 60_000
            }
        );
        assert_eq!(job.queue, "mail");
        assert_eq!(job.priority, -2);
        assert!(parse(Kind::Job, r#"retry(backoff = "random")"#).is_err());
        assert!(parse(Kind::Job, "retry(max_attempts = 0)").is_err());
    }

    #[test]
    fn cron_schedules() {
        let Ok(Options::Cron(c)) = parse(
            Kind::Cron,
            r#""0 9 * * *", timezone = "Europe/Berlin", catch_up = 10"#,
        ) else {
            panic!("cron did not parse")
        };
        assert_eq!(c.schedule, Schedule::Cron("0 9 * * *".into()));
        assert_eq!(c.timezone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(c.catch_up, 10);
        assert!(matches!(
            parse(Kind::Cron, r#"every = "15m""#),
            Ok(Options::Cron(CronOptions {
                schedule: Schedule::EveryMs(900_000),
                ..
            }))
        ));
        assert!(parse(Kind::Cron, "")
            .unwrap_err()
            .contains("needs a schedule"));
        assert!(parse(Kind::Cron, r#""* * * * *", every = "1m""#)
            .unwrap_err()
            .contains("exactly one schedule"));
        assert!(parse(Kind::Query, r#""* * * * *""#).is_err());
    }

    #[test]
    fn webhook_options() {
        let Ok(Options::Webhook(w)) = parse(
            Kind::Webhook,
            r#"path = "/hooks/stripe", signature = hmac_sha256("Stripe-Signature", "STRIPE_SECRET"), idempotency = "header:Idempotency-Key""#,
        ) else {
            panic!("webhook did not parse")
        };
        assert_eq!(w.path, "/hooks/stripe");
        assert_eq!(
            w.signature,
            Some(WebhookSignature::HmacSha256 {
                header: "Stripe-Signature".into(),
                secret_env: "STRIPE_SECRET".into()
            })
        );
        assert_eq!(
            w.idempotency,
            Some(Idempotency::Header {
                name: "Idempotency-Key".into()
            })
        );
        assert!(parse(Kind::Webhook, "")
            .unwrap_err()
            .contains("needs a path"));
        assert!(parse(Kind::Webhook, r#"path = "/_api/x""#).is_err());
        assert!(parse(Kind::Webhook, r#"path = "/x", signature = md5("a", "b")"#).is_err());
    }

    #[test]
    fn webhook_provider_schemes() {
        let signature = |text: &str| match parse(Kind::Webhook, &format!(r#"path = "/h", {text}"#))
        {
            Ok(Options::Webhook(w)) => Ok(w.signature.unwrap()),
            Ok(other) => panic!("{other:?}"),
            Err(error) => Err(error),
        };
        assert_eq!(
            signature(r#"signature = stripe("STRIPE_SECRET")"#),
            Ok(WebhookSignature::Stripe {
                secret_env: "STRIPE_SECRET".into(),
                tolerance_ms: 300_000
            })
        );
        assert_eq!(
            signature(r#"signature = standard_webhooks("SVIX"), tolerance = "1m""#),
            Ok(WebhookSignature::StandardWebhooks {
                secret_env: "SVIX".into(),
                tolerance_ms: 60_000
            })
        );
        assert_eq!(
            signature(r#"tolerance = "10s", signature = stripe("S")"#),
            Ok(WebhookSignature::Stripe {
                secret_env: "S".into(),
                tolerance_ms: 10_000
            })
        );
        assert_eq!(
            signature(r#"signature = github("GH")"#),
            Ok(WebhookSignature::Github {
                secret_env: "GH".into()
            })
        );
        for (bad, says) in [
            (
                r#"signature = github("GH"), tolerance = "1m""#,
                "schemes that sign a timestamp",
            ),
            (r#"tolerance = "1m""#, "schemes that sign a timestamp"),
            (
                r#"signature = stripe("S"), tolerance = "0s""#,
                "longer than zero",
            ),
            (r#"signature = stripe("A", "B")"#, "a provider's scheme"),
            (r#"signature = github()"#, "a provider's scheme"),
            (r#"signature = stripe("")"#, "a provider's scheme"),
        ] {
            let error = signature(bad).unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }

    #[test]
    fn workflow_daemon_mcp_model() {
        let Ok(Options::Workflow(w)) = parse(
            Kind::Workflow,
            r#"name = "onboarding", version = "2026-03", active, timeout = "60d""#,
        ) else {
            panic!("workflow did not parse")
        };
        assert_eq!(w.name.as_deref(), Some("onboarding"));
        assert_eq!(w.version, "2026-03");
        assert!(w.active);
        assert!(matches!(
            parse(Kind::Daemon, r#"replicated, restart = "1s""#),
            Ok(Options::Daemon(DaemonOptions {
                mode: DaemonMode::Replicated,
                restart_ms: 1_000
            }))
        ));
        assert!(parse(Kind::Daemon, "replicated, leader_elected").is_err());
        assert!(parse(Kind::McpTool, r#"name = "tickets list""#).is_err());
        assert!(parse(Kind::Model, r#"table = "users""#).is_ok());
    }

    #[test]
    fn repeated_and_malformed_values() {
        assert!(parse(Kind::Query, "public, public")
            .unwrap_err()
            .contains("given twice"));
        assert!(parse(Kind::Query, r#"timeout = 5"#)
            .unwrap_err()
            .contains("takes a string"));
        assert!(parse(Kind::Query, r#"timeout = "5 minutes""#)
            .unwrap_err()
            .contains("invalid duration"));
        assert!(parse(Kind::Query, "public = 1")
            .unwrap_err()
            .contains("flag"));
        assert!(parse(Kind::Query, "tables()").is_err());
    }
}
