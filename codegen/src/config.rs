//! `forge.toml`, the project's configuration.

use serde::Deserialize;

/// Where `forge.toml` says things go, with the defaults of DESIGN.md.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub project: ProjectConfig,
    #[serde(default)]
    pub generate: GenerateConfig,
    #[serde(default)]
    pub check: CheckConfig,
    /// Read by the runtime, not by codegen; accepted here so that a forge.toml with a
    /// `[server]` section is not an unknown-key error.
    #[serde(default)]
    pub server: ServerConfig,
}

/// `[server]`: where the app listens (`FORGE_ADDR` overrides it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub addr: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Rust,
    Typescript,
    Dioxus,
    /// One JSON Schema document of the API (`emit::jsonschema`).
    Jsonschema,
    /// The OpenAPI 3.1 document of the RPC API (`emit::openapi`).
    Openapi,
}

impl Target {
    /// The target a `--target` flag or a `targets` entry names (`"jsonschema"`).
    pub fn parse(name: &str) -> Result<Target, ConfigError> {
        use serde::de::IntoDeserializer;
        let name: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
            name.into_deserializer();
        Target::deserialize(name).map_err(|e| ConfigError {
            message: e.to_string(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenerateConfig {
    /// What `forge generate` writes.
    pub targets: Vec<Target>,
    /// The Rust glue file, relative to the project root.
    pub rust_out: String,
    /// The TypeScript client's directory, relative to the project root.
    pub typescript_out: String,
    /// The Dioxus client's directory (it holds one `mod.rs`), relative to the project root.
    pub dioxus_out: String,
    /// The JSON Schema document, relative to the project root.
    pub jsonschema_out: String,
    /// The directory of the OpenAPI document (`openapi.json`), relative to the project root.
    pub openapi_out: String,
}

impl GenerateConfig {
    /// The directory a target's files go under, for the targets that write a directory.
    pub fn out_dir(&self, target: Target) -> Option<&str> {
        let dir = match target {
            Target::Typescript => &self.typescript_out,
            Target::Dioxus => &self.dioxus_out,
            Target::Openapi => &self.openapi_out,
            Target::Rust | Target::Jsonschema => return None,
        };
        Some(dir.trim_end_matches('/'))
    }
}

impl Default for GenerateConfig {
    fn default() -> Self {
        GenerateConfig {
            targets: vec![Target::Rust, Target::Typescript],
            rust_out: crate::parse::GENERATED_RUST_FILE.to_owned(),
            typescript_out: "frontend/src/lib/forge".to_owned(),
            dioxus_out: "frontend/src/forge".to_owned(),
            jsonschema_out: "schema/forge.schema.json".to_owned(),
            openapi_out: "schema".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckConfig {
    /// Columns that tie a row to its owner (rule FG101).
    pub owner_columns: Vec<String>,
    /// Rule codes this project turns off (`allow = ["FG103"]`).
    pub allow: Vec<String>,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            owner_columns: ["user_id", "owner_id", "tenant_id"]
                .map(str::to_owned)
                .to_vec(),
            allow: Vec::new(),
        }
    }
}

/// forge.toml could not be read; the message names the line and column.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    pub message: String,
}

impl Config {
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError {
            message: e.to_string().trim_end().to_owned(),
        })?;
        if config.generate.rust_out != crate::parse::GENERATED_RUST_FILE
            && config.generate.rust_out.starts_with("src/")
        {
            // The parser skips exactly one generated file; anything else under src/ would
            // be read back as user code.
            return Err(ConfigError {
                message: format!(
                    "`generate.rust_out = \"{}\"`: the Rust glue lives at `{}` (the parser skips that file); remove the setting or point it outside `src/`",
                    config.generate.rust_out,
                    crate::parse::GENERATED_RUST_FILE
                ),
            });
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let config = Config::parse("[project]\nname = \"app\"\n").expect("minimal config parses");
        assert_eq!(config.generate, GenerateConfig::default());
        assert_eq!(
            config.check.owner_columns,
            ["user_id", "owner_id", "tenant_id"]
        );
    }

    #[test]
    fn unknown_keys_are_errors_with_a_position() {
        let error = Config::parse("[project]\nname = \"app\"\n[generate]\ntarget = [\"rust\"]\n")
            .expect_err("unknown key is refused");
        assert!(error.message.contains("line 4"), "{}", error.message);
        assert!(
            error.message.contains("unknown field `target`"),
            "{}",
            error.message
        );
    }

    #[test]
    fn targets_and_outputs() {
        let config = Config::parse(
            "[project]\nname = \"app\"\n[generate]\ntargets = [\"typescript\"]\ntypescript_out = \"web/api\"\n",
        )
        .expect("config parses");
        assert_eq!(config.generate.targets, [Target::Typescript]);
        assert_eq!(config.generate.typescript_out, "web/api");
        let config = Config::parse(
            "[project]\nname = \"app\"\n[generate]\ntargets = [\"rust\", \"dioxus\"]\ndioxus_out = \"web/src/api\"\n",
        )
        .expect("config parses");
        assert_eq!(config.generate.targets, [Target::Rust, Target::Dioxus]);
        assert_eq!(config.generate.dioxus_out, "web/src/api");
        assert!(
            Config::parse("[project]\nname = \"a\"\n[generate]\nrust_out = \"src/glue.rs\"\n")
                .is_err()
        );
    }

    #[test]
    fn targets_parse_by_their_config_names() {
        assert_eq!(Target::parse("jsonschema").ok(), Some(Target::Jsonschema));
        assert_eq!(Target::parse("rust").ok(), Some(Target::Rust));
        assert_eq!(Target::parse("openapi").ok(), Some(Target::Openapi));
        let error = Target::parse("swagger").expect_err("no such target");
        assert!(error.message.contains("openapi"), "{}", error.message);
        let config = Config::parse(
            "[project]\nname = \"app\"\n[generate]\ntargets = [\"jsonschema\"]\njsonschema_out = \"api.json\"\n",
        )
        .expect("config parses");
        assert_eq!(config.generate.targets, [Target::Jsonschema]);
        assert_eq!(config.generate.jsonschema_out, "api.json");
        let config = Config::parse(
            "[project]\nname = \"app\"\n[generate]\ntargets = [\"rust\", \"openapi\"]\nopenapi_out = \"docs/api\"\n",
        )
        .expect("config parses");
        assert_eq!(config.generate.targets, [Target::Rust, Target::Openapi]);
        assert_eq!(config.generate.openapi_out, "docs/api");
    }

    #[test]
    fn the_runtime_server_section_is_accepted() {
        let config =
            Config::parse("[project]\nname = \"app\"\n[server]\naddr = \"0.0.0.0:8080\"\n")
                .expect("[server] is part of forge.toml");
        assert_eq!(config.server.addr.as_deref(), Some("0.0.0.0:8080"));
    }
}
