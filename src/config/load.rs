//! Finding, checking and merging the configuration files, then applying flags.
//!
//! Each file is parsed and deserialised on its own first, so a wrong key or type is
//! reported with that file's name; then the files' TOML tables are merged deeply
//! (tables merge, arrays and scalars are replaced whole) and the merge is
//! deserialised. A map from each key to the last file that set it lets value
//! checks on the merged result name the file responsible.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::{fs, io};

use toml::{Table, Value};

use super::validate::{KeyPath, Seg};
use super::{Config, ConfigError, ConfigSources, Origin, Overrides};

impl ConfigSources {
    /// The files to read, in the order they apply: the main file if it exists, then
    /// the drop-in directory's `*.toml` files sorted by name (byte order).
    /// Hidden files (editor leftovers such as `.#x.toml`) and directories are skipped.
    pub fn files(&self) -> Result<Vec<PathBuf>, ConfigError> {
        let mut files = Vec::new();
        match fs::metadata(&self.main) {
            Ok(_) => files.push(self.main.clone()),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                tracing::debug!(file = %self.main.display(), "no main config file, using defaults");
            }
            Err(e) => return Err(read_error(&self.main, e)),
        }

        let entries = match fs::read_dir(&self.drop_in_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                tracing::debug!(dir = %self.drop_in_dir.display(), "no config drop-in directory");
                return Ok(files);
            }
            Err(e) => return Err(read_error(&self.drop_in_dir, e)),
        };
        let mut drop_ins = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| read_error(&self.drop_in_dir, e))?.path();
            let name = path.file_name().unwrap_or_default();
            let is_toml = path.extension() == Some(OsStr::new("toml"));
            let hidden = name.as_encoded_bytes().starts_with(b".");
            // Follows symlinks; a dangling one is kept so that reading it reports the problem.
            let is_dir = fs::metadata(&path).is_ok_and(|m| m.is_dir());
            if is_toml && !hidden && !is_dir {
                drop_ins.push(path);
            } else {
                tracing::debug!(path = %path.display(), "ignoring non-drop-in entry");
            }
        }
        drop_ins.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        files.extend(drop_ins);
        Ok(files)
    }
}

impl Config {
    /// Reads the main file and drop-ins, applies `overrides` and validates the result.
    /// Missing files mean built-in defaults; any other problem is an error naming the
    /// file (or flag), the dotted key and what is wrong.
    pub fn load(sources: &ConfigSources, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut merged = Table::new();
        let mut origins = Origins::default();
        for file in sources.files()? {
            tracing::debug!(file = %file.display(), "reading config file");
            let text = fs::read_to_string(&file).map_err(|e| read_error(&file, e))?;
            let table = parse_file(&file, &text)?;
            origins.record(&table, &file, &mut Vec::new());
            merge(&mut merged, table);
        }

        // Each file was valid alone, so this only fails if merging broke an invariant;
        // report it like any other key error rather than panicking.
        let mut config: Config = serde_path_to_error::deserialize(merged).map_err(|e| {
            let key = key_path(e.path());
            ConfigError::Key {
                origin: origins.of(&key),
                key: key.to_string(),
                message: toml_terms(e.inner().message()),
            }
        })?;

        config.apply(overrides, &mut origins);
        config.check().map_err(|p| ConfigError::Key {
            origin: origins.of(&p.key),
            key: p.key.to_string(),
            message: p.message,
        })?;
        Ok(config)
    }

    fn apply(&mut self, overrides: &Overrides, origins: &mut Origins) {
        if let Some(listen) = &overrides.listen {
            self.api.listen = listen.clone();
            origins.set(&["api", "listen"], Origin::Flag("--listen"));
        }
        if let Some(root) = &overrides.root {
            self.root = root.clone();
            origins.set(&["root"], Origin::Flag("--root"));
        }
        if let Some(runroot) = &overrides.runroot {
            self.runroot = runroot.clone();
            origins.set(&["runroot"], Origin::Flag("--runroot"));
        }
        if let Some(level) = overrides.log_level {
            self.log_level = level;
            origins.set(&["log_level"], Origin::Flag("--log-level"));
        }
    }
}

fn read_error(path: &Path, source: io::Error) -> ConfigError {
    ConfigError::Read {
        path: path.to_owned(),
        source,
    }
}

/// Parses one file and checks it against the schema by itself.
fn parse_file(file: &Path, text: &str) -> Result<Table, ConfigError> {
    let table: Table = text.parse().map_err(|e: toml::de::Error| {
        let (line, column) = line_column(text, e.span().map_or(0, |s| s.start));
        ConfigError::Syntax {
            file: file.to_owned(),
            line,
            column,
            message: e.message().trim_end().to_owned(),
        }
    })?;
    serde_path_to_error::deserialize::<_, Config>(table.clone()).map_err(|e| ConfigError::Key {
        origin: Origin::File(file.to_owned()),
        key: key_path(e.path()).to_string(),
        message: toml_terms(e.inner().message()),
    })?;
    Ok(table)
}

/// serde speaks of sequences and maps; TOML users know arrays and tables.
fn toml_terms(message: &str) -> String {
    message
        .replace("invalid type: sequence", "invalid type: array")
        .replace("invalid type: map", "invalid type: table")
        .replace("expected a sequence", "expected an array")
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

fn key_path(path: &serde_path_to_error::Path) -> KeyPath {
    use serde_path_to_error::Segment;
    KeyPath(
        path.iter()
            .filter_map(|seg| match seg {
                Segment::Seq { index } => Some(Seg::Index(*index)),
                Segment::Map { key } | Segment::Enum { variant: key } => {
                    Some(Seg::Key(key.clone()))
                }
                Segment::Unknown => None,
            })
            .collect(),
    )
}

/// Deep merge: tables merge key by key; anything else in `overlay` replaces `base`'s value.
fn merge(base: &mut Table, overlay: Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(base_table)), Value::Table(overlay_table)) => {
                merge(base_table, overlay_table)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Which file or flag last set each key (tables included, so an invalid registry
/// name is traced to the file that declared it).
#[derive(Debug, Default)]
struct Origins(BTreeMap<Vec<String>, Origin>);

impl Origins {
    fn record(&mut self, table: &Table, file: &Path, prefix: &mut Vec<String>) {
        for (key, value) in table {
            prefix.push(key.clone());
            self.0.insert(prefix.clone(), Origin::File(file.to_owned()));
            if let Value::Table(inner) = value {
                self.record(inner, file, prefix);
            }
            prefix.pop();
        }
    }

    fn set(&mut self, keys: &[&str], origin: Origin) {
        self.0
            .insert(keys.iter().map(|k| (*k).to_owned()).collect(), origin);
    }

    /// Who set the key (for an array element: the array, as arrays are set whole).
    /// Enclosing tables are not consulted: a file that sets `[image] pull_timeout`
    /// did not set `image.max_concurrent_downloads`.
    fn of(&self, key: &KeyPath) -> Origin {
        self.0.get(&key.keys()).cloned().unwrap_or(Origin::Default)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{LogLevel, RegistryConfig};
    use super::*;
    use std::time::Duration;
    use tempfile::TempDir;

    /// A temp dir with `crius.toml` and `crius.d/`; files are written on demand.
    struct Setup {
        dir: TempDir,
    }

    impl Setup {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            fs::create_dir(dir.path().join("crius.d")).unwrap();
            Setup { dir }
        }

        fn sources(&self) -> ConfigSources {
            ConfigSources {
                main: self.dir.path().join("crius.toml"),
                drop_in_dir: self.dir.path().join("crius.d"),
            }
        }

        fn main(&self, text: &str) -> PathBuf {
            let path = self.sources().main;
            fs::write(&path, text).unwrap();
            path
        }

        fn drop_in(&self, name: &str, text: &str) -> PathBuf {
            let path = self.sources().drop_in_dir.join(name);
            fs::write(&path, text).unwrap();
            path
        }

        fn load(&self) -> Result<Config, ConfigError> {
            Config::load(&self.sources(), &Overrides::default())
        }

        fn error(&self) -> String {
            match self.load() {
                Err(e) => e.to_string(),
                Ok(c) => panic!("load should fail, got {c:?}"),
            }
        }
    }

    #[test]
    fn missing_files_give_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let sources = ConfigSources {
            main: dir.path().join("nope.toml"),
            drop_in_dir: dir.path().join("nope.d"),
        };
        assert_eq!(sources.files().unwrap(), Vec::<PathBuf>::new());
        let config = Config::load(&sources, &Overrides::default()).unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn empty_files_give_defaults() {
        let s = Setup::new();
        s.main("");
        s.drop_in("10-empty.toml", "# nothing\n");
        assert_eq!(s.load().unwrap(), Config::default());
    }

    #[test]
    fn main_file_sets_values() {
        let s = Setup::new();
        s.main(
            r#"
            root = "/srv/crius"
            log_level = "debug"
            [api]
            grpc_max_recv_msg_size = 1024
            [image]
            pull_timeout = "1h 30s"
            [image.registries."localhost:5000"]
            insecure = true
            "#,
        );
        let c = s.load().unwrap();
        assert_eq!(c.root, PathBuf::from("/srv/crius"));
        assert_eq!(c.log_level, LogLevel::Debug);
        assert_eq!(c.api.grpc_max_recv_msg_size, 1024);
        assert_eq!(c.api.grpc_max_send_msg_size, 16 * 1024 * 1024);
        assert_eq!(c.image.pull_timeout, Duration::from_secs(3630));
        assert!(c.image.registry("localhost:5000").insecure);
        assert_eq!(c.runroot, Config::default().runroot);
    }

    #[test]
    fn drop_ins_apply_in_name_order() {
        let s = Setup::new();
        s.main("log_level = \"error\"\n");
        // Byte order: "10-" < "20-" < "9-", so 9-last.toml is applied last.
        s.drop_in("9-last.toml", "log_level = \"trace\"\n");
        s.drop_in("20-mid.toml", "log_level = \"debug\"\nroot = \"/twenty\"\n");
        s.drop_in("10-first.toml", "log_level = \"warn\"\nroot = \"/ten\"\n");
        let files = s.sources().files().unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["crius.toml", "10-first.toml", "20-mid.toml", "9-last.toml"]
        );

        let c = s.load().unwrap();
        assert_eq!(c.log_level, LogLevel::Trace);
        assert_eq!(c.root, PathBuf::from("/twenty"));
    }

    #[test]
    fn tables_merge_deeply_arrays_are_replaced() {
        let s = Setup::new();
        s.main(
            r#"
            [image]
            max_concurrent_downloads = 5
            unqualified_search_registries = ["quay.io", "docker.io"]
            [image.registries."docker.io"]
            mirrors = ["a.mirror", "b.mirror"]
            "#,
        );
        s.drop_in(
            "10-reg.toml",
            r#"
            [image]
            unqualified_search_registries = ["registry.local"]
            [image.registries."docker.io"]
            insecure = true
            [image.registries.quay]
            mirrors = ["c.mirror"]
            "#,
        );
        s.drop_in(
            "20-mirrors.toml",
            "image.registries.\"docker.io\".mirrors = [\"z.mirror\"]\n",
        );
        let c = s.load().unwrap();
        assert_eq!(c.image.max_concurrent_downloads, 5);
        assert_eq!(c.image.unqualified_search_registries, ["registry.local"]);
        assert_eq!(
            c.image.registry("docker.io"),
            RegistryConfig {
                mirrors: vec!["z.mirror".into()],
                insecure: true
            }
        );
        assert_eq!(c.image.registry("quay").mirrors, ["c.mirror"]);
    }

    #[test]
    fn non_toml_hidden_and_directory_entries_are_ignored() {
        let s = Setup::new();
        s.drop_in("README", "not toml at all [");
        s.drop_in("10-x.toml.bak", "not toml at all [");
        s.drop_in(".#10-x.toml", "not toml at all [");
        fs::create_dir(s.sources().drop_in_dir.join("sub.toml")).unwrap();
        let good = s.drop_in("50-ok.toml", "log_level = \"warn\"\n");
        assert_eq!(s.sources().files().unwrap(), [good]);
        assert_eq!(s.load().unwrap().log_level, LogLevel::Warn);
    }

    #[test]
    fn unknown_key_names_file_and_key() {
        let s = Setup::new();
        let file = s.drop_in("10-api.toml", "[api]\nlistn = \"/run/x.sock\"\n");
        assert_eq!(
            s.error(),
            format!(
                "{}: api.listn: unknown field `listn`, expected one of \
                 `listen`, `grpc_max_recv_msg_size`, `grpc_max_send_msg_size`",
                file.display()
            )
        );
    }

    #[test]
    fn unknown_section_and_registry_key_are_rejected() {
        let s = Setup::new();
        let file = s.main("[runtimes]\ndefault = \"crun\"\n");
        assert!(
            s.error().starts_with(&format!(
                "{}: runtimes: unknown field `runtimes`",
                file.display()
            )),
            "{}",
            s.error()
        );

        let s = Setup::new();
        let file = s.main("[image.registries.\"localhost:5000\"]\nmirror = [\"x\"]\n");
        assert!(
            s.error().starts_with(&format!(
                "{}: image.registries.\"localhost:5000\".mirror: unknown field `mirror`",
                file.display()
            )),
            "{}",
            s.error()
        );
    }

    #[test]
    fn wrong_type_names_file_and_key() {
        let s = Setup::new();
        s.main("[image]\nmax_concurrent_downloads = 4\n");
        let file = s.drop_in("10-reg.toml", "[image]\nmax_concurrent_downloads = \"a\"\n");
        assert_eq!(
            s.error(),
            format!(
                "{}: image.max_concurrent_downloads: invalid type: string \"a\", expected u32",
                file.display()
            )
        );

        let s = Setup::new();
        let file = s.main("[image]\nunqualified_search_registries = [\"quay.io\", 5]\n");
        assert_eq!(
            s.error(),
            format!(
                "{}: image.unqualified_search_registries[1]: \
                 invalid type: integer `5`, expected a string",
                file.display()
            )
        );

        let s = Setup::new();
        let file = s.main("log_level = \"verbose\"\n");
        assert!(
            s.error().starts_with(&format!(
                "{}: log_level: unknown variant `verbose`, expected one of",
                file.display()
            )),
            "{}",
            s.error()
        );
    }

    #[test]
    fn type_errors_use_toml_terms() {
        let s = Setup::new();
        let file = s.main("image = 5\n");
        assert_eq!(
            s.error(),
            format!(
                "{}: image: invalid type: integer `5`, expected a table",
                file.display()
            )
        );

        let s = Setup::new();
        let file = s.main("[image.registries.\"a.io\"]\nmirrors = \"x\"\n");
        assert_eq!(
            s.error(),
            format!(
                "{}: image.registries.\"a.io\".mirrors: invalid type: string \"x\", expected an array",
                file.display()
            )
        );

        let s = Setup::new();
        let file = s.main("root = [\"/a\"]\n");
        assert!(
            s.error()
                .starts_with(&format!("{}: root: invalid type: array", file.display())),
            "{}",
            s.error()
        );
    }

    #[test]
    fn each_file_is_checked_alone() {
        // A later drop-in setting the key does not excuse a wrong type in an earlier file.
        let s = Setup::new();
        let file = s.main("[api]\ngrpc_max_send_msg_size = -1\n");
        s.drop_in("10-fix.toml", "[api]\ngrpc_max_send_msg_size = 1024\n");
        assert!(
            s.error()
                .starts_with(&format!("{}: api.grpc_max_send_msg_size: ", file.display())),
            "{}",
            s.error()
        );
    }

    #[test]
    fn bad_durations_name_file_and_key() {
        let s = Setup::new();
        let file = s.main("[image]\npull_timeout = \"10 parsecs\"\n");
        assert!(
            s.error().starts_with(&format!(
                "{}: image.pull_timeout: invalid duration \"10 parsecs\"",
                file.display()
            )),
            "{}",
            s.error()
        );

        let s = Setup::new();
        let file = s.main("[image]\npull_timeout = 600\n");
        assert_eq!(
            s.error(),
            format!(
                "{}: image.pull_timeout: invalid type: integer `600`, \
                 expected a duration string such as \"90s\", \"10m\" or \"1h 30m\"",
                file.display()
            )
        );

        let s = Setup::new();
        s.main("[image]\npull_timeout = \"0s\"\n");
        assert_eq!(s.load().unwrap().image.pull_time_limit(), None);
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let s = Setup::new();
        let file = s.drop_in("10-broken.toml", "root = \"/x\"\n[api\nlisten = 1\n");
        let err = s.error();
        assert!(err.starts_with(&format!("{}:2:", file.display())), "{err}");
        assert!(!err.contains('\n'), "one-line message: {err}");

        let s = Setup::new();
        let file = s.main("root = \"/a\"\nroot = \"/b\"\n");
        assert!(
            s.error().starts_with(&format!("{}:2:", file.display())),
            "{}",
            s.error()
        );
    }

    #[test]
    fn invalid_mirror_is_rejected_with_key() {
        let s = Setup::new();
        s.main("[image.registries.\"localhost:5000\"]\ninsecure = true\n");
        let file = s.drop_in(
            "10-reg.toml",
            "[image.registries.\"localhost:5000\"]\nmirrors = [\"mirror.local\", \"http://x\"]\n",
        );
        assert_eq!(
            s.error(),
            format!(
                "{}: image.registries.\"localhost:5000\".mirrors[1]: \"http://x\" is not a host[:port]",
                file.display()
            )
        );
    }

    #[test]
    fn invalid_value_names_the_last_file_that_set_it() {
        let s = Setup::new();
        s.main("[image]\nmax_concurrent_downloads = 8\n");
        let file = s.drop_in("10-a.toml", "[image]\nmax_concurrent_downloads = 0\n");
        s.drop_in("20-b.toml", "[image]\npull_timeout = \"1m\"\n");
        assert_eq!(
            s.error(),
            format!(
                "{}: image.max_concurrent_downloads: must be between 1 and 64, got 0",
                file.display()
            )
        );

        // Overridden by a later valid value: fine.
        s.drop_in("30-c.toml", "[image]\nmax_concurrent_downloads = 2\n");
        assert_eq!(s.load().unwrap().image.max_concurrent_downloads, 2);
    }

    #[test]
    fn invalid_registry_name_names_its_file() {
        let s = Setup::new();
        let file = s.drop_in("10-reg.toml", "[image.registries.\"http://quay.io\"]\n");
        assert_eq!(
            s.error(),
            format!(
                "{}: image.registries.\"http://quay.io\": \"http://quay.io\" is not a host[:port]",
                file.display()
            )
        );
    }

    #[test]
    fn flags_override_files() {
        let s = Setup::new();
        s.main("root = \"/file/root\"\nlog_level = \"warn\"\n[api]\nlisten = \"/file.sock\"\n");
        s.drop_in("10-x.toml", "runroot = \"/file/run\"\n");
        let overrides = Overrides {
            listen: Some("/flag.sock".into()),
            root: Some("/flag/root".into()),
            runroot: Some("/flag/run".into()),
            log_level: Some(LogLevel::Trace),
        };
        let c = Config::load(&s.sources(), &overrides).unwrap();
        assert_eq!(c.api.listen, PathBuf::from("/flag.sock"));
        assert_eq!(c.root, PathBuf::from("/flag/root"));
        assert_eq!(c.runroot, PathBuf::from("/flag/run"));
        assert_eq!(c.log_level, LogLevel::Trace);

        // Flags not given leave file values alone.
        let only_level = Overrides {
            log_level: Some(LogLevel::Debug),
            ..Overrides::default()
        };
        let c = Config::load(&s.sources(), &only_level).unwrap();
        assert_eq!(c.api.listen, PathBuf::from("/file.sock"));
        assert_eq!(c.log_level, LogLevel::Debug);
    }

    #[test]
    fn invalid_flag_value_names_the_flag() {
        let s = Setup::new();
        s.main("[api]\nlisten = \"/file.sock\"\n");
        let overrides = Overrides {
            listen: Some("relative.sock".into()),
            ..Overrides::default()
        };
        let err = Config::load(&s.sources(), &overrides).unwrap_err();
        assert_eq!(
            err.to_string(),
            "flag --listen: api.listen: \"relative.sock\" is not an absolute path"
        );
    }

    #[test]
    fn unreadable_sources_are_errors() {
        let s = Setup::new();
        fs::create_dir(s.sources().main).unwrap();
        let err = s.error();
        assert!(
            err.starts_with(&format!("{}: cannot read: ", s.sources().main.display())),
            "{err}"
        );

        let dir = tempfile::tempdir().unwrap();
        let not_a_dir = dir.path().join("crius.d");
        fs::write(&not_a_dir, "").unwrap();
        let sources = ConfigSources {
            main: dir.path().join("crius.toml"),
            drop_in_dir: not_a_dir.clone(),
        };
        let err = Config::load(&sources, &Overrides::default()).unwrap_err();
        assert!(matches!(err, ConfigError::Read { ref path, .. } if *path == not_a_dir));
    }

    #[test]
    fn dangling_drop_in_symlink_is_an_error() {
        let s = Setup::new();
        let link = s.sources().drop_in_dir.join("10-gone.toml");
        std::os::unix::fs::symlink("/nonexistent/crius.toml", &link).unwrap();
        assert!(matches!(s.load(), Err(ConfigError::Read { path, .. }) if path == link));
    }

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("abc", 0), (1, 1));
        assert_eq!(line_column("a\nbé c", 6), (2, 4));
        assert_eq!(line_column("x", 99), (1, 2));
    }
}
