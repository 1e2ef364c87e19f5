//! Name resolution across the crate's modules: `use` paths, `crate::`, `super::`, `self::`,
//! re-exports, glob imports and type aliases.

// A fast hash: the index is rebuilt at every regeneration in watch mode.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use crate::parse::syntax::{ParsedFile, RawAlias, RawType, Scope};

/// How deep `use` chains are followed before giving up (cycles, absurd re-export chains).
const MAX_DEPTH: u32 = 24;

pub struct Index<'a> {
    modules: HashSet<String>,
    scopes: HashMap<&'a str, Vec<&'a Scope>>,
    types: HashMap<String, &'a RawType>,
    aliases: HashMap<String, &'a RawAlias>,
}

/// What a path names.
#[derive(Debug)]
pub enum Target<'a> {
    Type {
        id: String,
    },
    Alias {
        def: &'a RawAlias,
    },
    /// A path outside the crate (`uuid::Uuid`) or a prelude name (`["Vec"]`).
    External(Vec<String>),
}

pub fn join(module: &str, name: &str) -> String {
    if module.is_empty() {
        name.to_owned()
    } else {
        format!("{module}::{name}")
    }
}

impl<'a> Index<'a> {
    /// Files are visited in the order given; the first definition of an id wins.
    pub fn new(files: &'a [ParsedFile]) -> Self {
        let mut index = Index {
            modules: HashSet::new(),
            scopes: HashMap::new(),
            types: HashMap::new(),
            aliases: HashMap::new(),
        };
        for file in files {
            for scope in &file.scopes {
                index.add_module(&scope.module);
                index
                    .scopes
                    .entry(scope.module.as_str())
                    .or_default()
                    .push(scope);
            }
            for def in &file.types {
                index
                    .types
                    .entry(join(&def.module, &def.name))
                    .or_insert(def);
            }
            for alias in &file.aliases {
                index
                    .aliases
                    .entry(join(&alias.module, &alias.name))
                    .or_insert(alias);
            }
        }
        index
    }

    fn add_module(&mut self, module: &str) {
        let mut path = String::new();
        for part in module.split("::").filter(|p| !p.is_empty()) {
            path = join(&path, part);
            self.modules.insert(path.clone());
        }
        self.modules.insert(String::new());
    }

    pub fn type_def(&self, id: &str) -> Option<&'a RawType> {
        self.types.get(id).copied()
    }

    /// Resolves `segments` as written in `module`.
    pub fn lookup(&self, module: &str, segments: &[String]) -> Option<Target<'a>> {
        self.lookup_at(module, segments, 0)
    }

    fn lookup_at(&self, module: &str, segments: &[String], depth: u32) -> Option<Target<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let (first, rest) = segments.split_first()?;
        match first.as_str() {
            "crate" => return self.in_crate(rest, depth),
            "self" | "super" => {
                let absolute = crate::parse::absolute_path(module, segments.to_vec())?;
                return self.in_crate(&absolute[1..], depth);
            }
            _ => {}
        }
        if rest.is_empty() {
            if let Some(target) = self.declared(module, first) {
                return Some(target);
            }
        }
        let child = join(module, first);
        if self.modules.contains(&child) && !rest.is_empty() {
            let mut path: Vec<String> = child.split("::").map(str::to_owned).collect();
            path.extend(rest.iter().cloned());
            return self.in_crate(&path, depth);
        }
        for scope in self.scopes(module) {
            if let Some(import) = scope.imports.iter().find(|i| &i.name == first) {
                let mut path = import.path.clone();
                path.extend(rest.iter().cloned());
                if path == segments {
                    // `use serde_json;` style self-imports of an extern crate.
                    return Some(Target::External(path));
                }
                return self.lookup_at(module, &path, depth + 1);
            }
        }
        if rest.is_empty() {
            for scope in self.scopes(module) {
                for glob in &scope.globs {
                    if glob.first().map(String::as_str) == Some("crate") {
                        let glob_module = glob[1..].join("::");
                        if let Some(target) = self.declared_or_imported(&glob_module, first, depth)
                        {
                            return Some(target);
                        }
                    }
                }
            }
            // Primitives and prelude names are never shadowed by another crate's glob.
            if super::known::is_known(segments) {
                return Some(Target::External(segments.to_vec()));
            }
            // A glob from another crate (`use forge::prelude::*`) may bring the name.
            for scope in self.scopes(module) {
                for glob in scope
                    .globs
                    .iter()
                    .filter(|g| g.first().map(String::as_str) != Some("crate"))
                {
                    let mut path = glob.clone();
                    path.push(first.clone());
                    if super::known::is_known(&path) {
                        return Some(Target::External(path));
                    }
                }
            }
        }
        Some(Target::External(segments.to_vec()))
    }

    fn scopes(&self, module: &str) -> impl Iterator<Item = &&'a Scope> {
        self.scopes.get(module).into_iter().flatten()
    }

    fn declared(&self, module: &str, name: &str) -> Option<Target<'a>> {
        let id = join(module, name);
        if self.types.contains_key(&id) {
            return Some(Target::Type { id });
        }
        self.aliases.get(&id).map(|def| Target::Alias { def })
    }

    fn declared_or_imported(&self, module: &str, name: &str, depth: u32) -> Option<Target<'a>> {
        if let Some(target) = self.declared(module, name) {
            return Some(target);
        }
        let imported = self
            .scopes(module)
            .any(|scope| scope.imports.iter().any(|i| i.name == name));
        if imported {
            return self.lookup_at(module, &[name.to_owned()], depth + 1);
        }
        None
    }

    /// `crate::a::b::Name`: a type or alias declared in `a::b`, or re-exported there.
    fn in_crate(&self, path: &[String], depth: u32) -> Option<Target<'a>> {
        let (name, module_path) = path.split_last()?;
        let module = module_path.join("::");
        if self.modules.contains(&module) {
            if let Some(target) = self.declared_or_imported(&module, name, depth) {
                return Some(target);
            }
        }
        // An item nested deeper than the module tree we know (an enum variant, an item of a
        // file forge did not read) cannot name a type it can describe.
        None
    }
}
