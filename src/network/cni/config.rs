//! CNI network configurations: `.conflist` files, and `.conf`/`.json` single-plugin files
//! wrapped into a list of one plugin.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::CniError;

/// A parsed network configuration list. Plugin configurations stay raw JSON and are passed on
/// to the plugins as they are, with `name`, `cniVersion`, `prevResult` and `runtimeConfig`
/// injected.
#[derive(Debug, Clone, PartialEq)]
pub struct CniNetwork {
    pub name: String,
    pub cni_version: String,
    pub disable_check: bool,
    /// Plugin configurations in chain order; each an object with a string `type`.
    pub plugins: Vec<Value>,
    /// The file it was loaded from, if any.
    pub path: Option<PathBuf>,
}

impl CniNetwork {
    /// Load a `.conflist` (an object with `plugins`) or a `.conf`/`.json` single plugin
    /// configuration (an object with `type`), which becomes a list of one plugin.
    pub fn load(path: &Path) -> Result<CniNetwork, CniError> {
        let bytes = std::fs::read(path).map_err(|source| CniError::ReadConfig {
            path: path.to_path_buf(),
            source,
        })?;
        let mut net = CniNetwork::parse(&bytes, path.extension().and_then(|e| e.to_str()))
            .map_err(|msg| CniError::InvalidConfig {
                path: path.to_path_buf(),
                msg,
            })?;
        net.path = Some(path.to_path_buf());
        Ok(net)
    }

    /// Load the default network of `dir` (the first `.conflist`/`.conf`/`.json` by file name);
    /// `None` when there is none.
    pub fn load_default(dir: &Path) -> Result<Option<CniNetwork>, CniError> {
        match super::super::default_network_file(dir) {
            Some(path) => CniNetwork::load(&path).map(Some),
            None => Ok(None),
        }
    }

    /// Parse configuration bytes; `extension` decides list vs single plugin when given
    /// (`conflist` → list), otherwise the presence of `plugins` does.
    pub fn parse(bytes: &[u8], extension: Option<&str>) -> Result<CniNetwork, String> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let Value::Object(obj) = value else {
            return Err("not a JSON object".to_string());
        };
        let is_list = match extension {
            Some("conflist") => true,
            Some("conf") => false,
            _ => obj.contains_key("plugins"),
        };
        let name = string_field(&obj, "name")?
            .ok_or("missing network name")?
            .to_string();
        if name.is_empty() {
            return Err("empty network name".to_string());
        }
        let cni_version = string_field(&obj, "cniVersion")?
            .unwrap_or("0.1.0")
            .to_string();
        let disable_check = match obj.get("disableCheck") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            // libcni also accepts the strings "true"/"false".
            Some(Value::String(s)) if s == "true" => true,
            Some(Value::String(s)) if s == "false" => false,
            Some(_) => return Err("disableCheck is not a boolean".to_string()),
        };
        let plugins = if is_list {
            match obj.get("plugins") {
                Some(Value::Array(p)) => p.clone(),
                Some(_) => return Err("plugins is not an array".to_string()),
                None => return Err("missing plugins".to_string()),
            }
        } else {
            vec![Value::Object(obj.clone())]
        };
        if plugins.is_empty() {
            return Err("no plugins".to_string());
        }
        for (i, p) in plugins.iter().enumerate() {
            let Value::Object(p) = p else {
                return Err(format!("plugin {i} is not an object"));
            };
            match string_field(p, "type").map_err(|e| format!("plugin {i}: {e}"))? {
                Some(t) if valid_type(t) => {}
                Some(t) => return Err(format!("plugin {i}: invalid type {t:?}")),
                None => return Err(format!("plugin {i}: missing type")),
            }
        }
        Ok(CniNetwork {
            name,
            cni_version,
            disable_check,
            plugins,
            path: None,
        })
    }
}

fn string_field<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{key} is not a string")),
    }
}

/// A plugin type names a binary in a plugin directory: no path separators, no `.`/`..`.
fn valid_type(t: &str) -> bool {
    !t.is_empty() && t != "." && t != ".." && !t.contains('/') && !t.contains('\0')
}

/// A plugin configuration's `type` (validated at load time).
pub fn plugin_type(plugin: &Value) -> &str {
    plugin.get("type").and_then(Value::as_str).unwrap_or("")
}

/// The stdin of one plugin invocation: its configuration with the list's `name` and
/// `cniVersion`, `prevResult` when there is one, and `runtimeConfig` holding the capability
/// arguments its `capabilities` map enables.
pub fn plugin_stdin(
    net: &CniNetwork,
    plugin: &Value,
    prev: Option<&Value>,
    capability_args: &Map<String, Value>,
) -> Value {
    let mut conf = match plugin {
        Value::Object(o) => o.clone(),
        _ => Map::new(),
    };
    conf.insert("name".into(), Value::String(net.name.clone()));
    conf.insert("cniVersion".into(), Value::String(net.cni_version.clone()));
    match prev {
        Some(p) => {
            conf.insert("prevResult".into(), p.clone());
        }
        None => {
            conf.remove("prevResult");
        }
    }
    let mut runtime = Map::new();
    if let Some(Value::Object(caps)) = plugin.get("capabilities") {
        for (cap, enabled) in caps {
            if enabled == &Value::Bool(true)
                && let Some(v) = capability_args.get(cap)
            {
                runtime.insert(cap.clone(), v.clone());
            }
        }
    }
    if runtime.is_empty() {
        conf.remove("runtimeConfig");
    } else {
        conf.insert("runtimeConfig".into(), Value::Object(runtime));
    }
    Value::Object(conf)
}
