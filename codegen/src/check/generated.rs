use super::Rule;

/// FG701 is reported by the CLI, which compares what `forge generate` would write with the
/// files on disk; only its documentation lives here.
pub const RULES: &[Rule] = &[Rule {
    code: "FG701",
    title: "a generated file is stale",
    explanation: "src/forge_generated.rs, the TypeScript client and forge.lock are generated from the source and committed. When the source changed and `forge generate` was not run, the glue registers the wrong handlers, the client sends the wrong shapes, and forge.lock misses the contracts and migrations it should protect. forge check shows the difference as a unified diff. The same holds for the migration that gives the tables queries read their change notifications (`forge_enable_reactivity`, for live queries): when no migration enables a table a query reads, or one still enables a table no query reads, `forge generate` writes the next migration, and until then live queries miss changes.",
    example: "error[FG701]: generated file `src/forge_generated.rs` is out of date\n  = help: run `forge generate` and commit the result\n\nerror[FG701]: migration `migrations/0003_forge_reactivity.sql` is missing: the tables queries read differ from those the migrations enable change notifications for\n  = help: run `forge generate` and commit the new migration",
}];
