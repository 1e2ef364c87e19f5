//! Finding the project and reading its configuration.

use std::path::{Path, PathBuf};

use forge_codegen::config::Config;

use crate::Fatal;

pub const CONFIG_FILE: &str = "forge.toml";

pub struct Project {
    pub root: PathBuf,
    pub config: Config,
    /// The raw text, part of the cache key.
    pub config_text: String,
}

impl Project {
    /// `--project DIR`, or the nearest directory from the current one upwards that holds
    /// a forge.toml.
    pub fn locate(explicit: Option<&Path>) -> Result<Project, Fatal> {
        let root = match explicit {
            Some(dir) => {
                if !dir.join(CONFIG_FILE).is_file() {
                    return Err(Fatal(format!(
                        "{} has no {CONFIG_FILE}; pass the directory of a forge project to --project",
                        dir.display()
                    )));
                }
                dir.to_path_buf()
            }
            None => {
                let cwd = std::env::current_dir()
                    .map_err(|e| Fatal(format!("cannot read the current directory: {e}")))?;
                cwd.ancestors()
                    .find(|dir| dir.join(CONFIG_FILE).is_file())
                    .map(Path::to_path_buf)
                    .ok_or_else(|| {
                        Fatal(format!(
                            "no {CONFIG_FILE} in {} or any parent directory; run forge inside a forge project (`forge new` creates one) or pass --project DIR",
                            cwd.display()
                        ))
                    })?
            }
        };
        let path = root.join(CONFIG_FILE);
        let config_text = std::fs::read_to_string(&path)
            .map_err(|e| Fatal(format!("cannot read {}: {e}", path.display())))?;
        let config =
            Config::parse(&config_text).map_err(|e| Fatal(format!("{}: {e}", path.display())))?;
        Ok(Project {
            root,
            config,
            config_text,
        })
    }

    /// forge's scratch space: caches that may be deleted at any time.
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("target").join("forge")
    }
}
