//! The few calls of `org.freedesktop.systemd1.Manager` the driver needs, over zbus' blocking
//! API (`crius oci` is a short-lived synchronous process). The connection is the system bus
//! when there is one, else a peer-to-peer connection to systemd's private socket (root only,
//! through the relay of [`super::p2p`]): a host with systemd but no dbus daemon works too.
//!
//! Jobs are waited for by polling: the job object exists until the job finishes, then the
//! unit's `ActiveState` tells the outcome. Polling needs no match rules, which a peer-to-peer
//! connection has no bus daemon for.

use std::path::Path;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use zbus::blocking::Connection;
use zbus::blocking::connection::Builder;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

use super::super::CgroupError;
use super::props::{PropValue, Property};

const SYSTEM_BUS_SOCKET: &str = "/run/dbus/system_bus_socket";
const PRIVATE_SOCKET: &str = "/run/systemd/private";
const DEST: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER_IFACE: &str = "org.freedesktop.systemd1.Manager";
const PROPS_IFACE: &str = "org.freedesktop.DBus.Properties";
/// How long one call may wait for its answer (a wedged systemd must not hang `crius oci`).
const CALL_TIMEOUT: Duration = Duration::from_secs(25);
/// How long a start or stop job may take (runc waits 30 s too).
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// What the manager asks of systemd; a trait so that the manager's logic is tested with a fake.
pub(crate) trait Systemd: Send + Sync + std::fmt::Debug {
    /// systemd's major version.
    fn version(&self) -> Result<u32, CgroupError>;
    /// `StartTransientUnit(unit, "replace", props)` and wait for the job. `Ok(false)`: the unit
    /// already exists (systemd's `UnitExists`).
    fn start_transient_unit(&self, unit: &str, props: &[Property]) -> Result<bool, CgroupError>;
    /// `SetUnitProperties(unit, runtime=true, props)`.
    fn set_unit_properties(&self, unit: &str, props: &[Property]) -> Result<(), CgroupError>;
    /// `StopUnit(unit, "replace")` and wait; a unit that is not loaded is already stopped.
    fn stop_unit(&self, unit: &str) -> Result<(), CgroupError>;
    /// `ResetFailedUnit(unit)`; a unit that is not loaded has nothing to reset.
    fn reset_failed_unit(&self, unit: &str) -> Result<(), CgroupError>;
    /// The unit's `ActiveState`, `None` when it is not loaded.
    fn active_state(&self, unit: &str) -> Result<Option<String>, CgroupError>;
}

fn err(what: impl std::fmt::Display, e: impl std::fmt::Display) -> CgroupError {
    CgroupError::Systemd(format!("{what}: {e}"))
}

/// The D-Bus error name of a failed method call.
fn error_name(e: &zbus::Error) -> Option<&str> {
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.as_str()),
        _ => None,
    }
}

/// systemd over D-Bus; connects on first use, so a manager opened only to read files never
/// touches the bus.
#[derive(Debug, Default)]
pub(crate) struct DbusSystemd {
    conn: Mutex<Option<Connection>>,
}

impl DbusSystemd {
    fn conn(&self) -> Result<Connection, CgroupError> {
        let mut guard = self
            .conn
            .lock()
            .map_err(|_| CgroupError::Systemd("connection lock poisoned".into()))?;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let c = connect()?;
        *guard = Some(c.clone());
        Ok(c)
    }

    fn call<B>(&self, method: &str, body: &B) -> Result<zbus::message::Message, zbus::Error>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        let conn = self
            .conn()
            .map_err(|e| zbus::Error::Failure(e.to_string()))?;
        conn.call_method(Some(DEST), MANAGER_PATH, Some(MANAGER_IFACE), method, body)
    }

    fn get_property(&self, path: &str, iface: &str, name: &str) -> Result<OwnedValue, zbus::Error> {
        let conn = self
            .conn()
            .map_err(|e| zbus::Error::Failure(e.to_string()))?;
        let reply = conn.call_method(Some(DEST), path, Some(PROPS_IFACE), "Get", &(iface, name))?;
        reply.body().deserialize::<OwnedValue>()
    }

    /// Waits until the job object is gone (the job finished, whatever its result).
    fn wait_job(&self, job: &OwnedObjectPath) -> bool {
        let deadline = Instant::now() + JOB_TIMEOUT;
        let mut step = Duration::from_millis(2);
        while Instant::now() < deadline {
            if self
                .get_property(job.as_str(), "org.freedesktop.systemd1.Job", "State")
                .is_err()
            {
                return true;
            }
            thread::sleep(step);
            step = (step * 2).min(Duration::from_millis(50));
        }
        false
    }

    fn unit_string(
        &self,
        unit: &str,
        iface: &str,
        name: &str,
    ) -> Result<Option<String>, CgroupError> {
        let path = match self.call("GetUnit", &(unit,)) {
            Ok(reply) => reply
                .body()
                .deserialize::<OwnedObjectPath>()
                .map_err(|e| err(format_args!("GetUnit({unit})"), e))?,
            Err(e) if error_name(&e) == Some("org.freedesktop.systemd1.NoSuchUnit") => {
                return Ok(None);
            }
            Err(e) => return Err(err(format_args!("GetUnit({unit})"), e)),
        };
        let v = self
            .get_property(path.as_str(), iface, name)
            .map_err(|e| err(format_args!("reading {unit} {name}"), e))?;
        Ok(match &*v {
            Value::Str(s) => Some(s.as_str().to_string()),
            _ => None,
        })
    }
}

/// The system bus if it answers, else systemd's private socket peer-to-peer.
fn connect() -> Result<Connection, CgroupError> {
    let mut tried = Vec::new();
    if std::env::var_os("DBUS_SYSTEM_BUS_ADDRESS").is_some()
        || Path::new(SYSTEM_BUS_SOCKET).exists()
    {
        match Builder::system().and_then(|b| b.method_timeout(CALL_TIMEOUT).build()) {
            Ok(c) => return Ok(c),
            Err(e) => tried.push(format!("system bus: {e}")),
        }
    } else {
        tried.push(format!("system bus: no {SYSTEM_BUS_SOCKET}"));
    }
    if nix::unistd::geteuid().is_root() {
        let p2p = super::p2p::connect(Path::new(PRIVATE_SOCKET))
            .map_err(zbus::Error::from)
            .and_then(|s| {
                Builder::async_io_unix_stream(s)
                    .p2p()
                    .method_timeout(CALL_TIMEOUT)
                    .build()
            });
        match p2p {
            Ok(c) => return Ok(c),
            Err(e) => tried.push(format!("{PRIVATE_SOCKET}: {e}")),
        }
    } else {
        tried.push(format!("{PRIVATE_SOCKET}: only root may use it"));
    }
    Err(CgroupError::Systemd(format!(
        "connecting to the system bus: {}",
        tried.join("; ")
    )))
}

fn to_value(v: &PropValue) -> Value<'_> {
    match v {
        PropValue::Bool(b) => Value::Bool(*b),
        PropValue::Str(s) => Value::from(s.as_str()),
        PropValue::U64(n) => Value::U64(*n),
        PropValue::U32s(v) => Value::from(v.clone()),
        PropValue::Bytes(b) => Value::from(b.clone()),
    }
}

fn to_dbus(props: &[Property]) -> Vec<(&str, Value<'_>)> {
    props.iter().map(|(n, v)| (*n, to_value(v))).collect()
}

/// "252.38-1~deb12u1" → 252.
pub(crate) fn parse_version(s: &str) -> Option<u32> {
    let s = s.trim().trim_start_matches('v');
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl Systemd for DbusSystemd {
    fn version(&self) -> Result<u32, CgroupError> {
        let v = self
            .get_property(MANAGER_PATH, MANAGER_IFACE, "Version")
            .map_err(|e| err("reading systemd's version", e))?;
        let s = match &*v {
            Value::Str(s) => s.as_str().to_string(),
            other => format!("{other:?}"),
        };
        parse_version(&s).ok_or_else(|| CgroupError::Systemd(format!("unparsable version {s:?}")))
    }

    fn start_transient_unit(&self, unit: &str, props: &[Property]) -> Result<bool, CgroupError> {
        let aux: Vec<(&str, Vec<(&str, Value<'_>)>)> = Vec::new();
        let reply = match self.call(
            "StartTransientUnit",
            &(unit, "replace", to_dbus(props), aux),
        ) {
            Ok(r) => r,
            Err(e) if error_name(&e) == Some("org.freedesktop.systemd1.UnitExists") => {
                return Ok(false);
            }
            Err(e) => return Err(err(format_args!("starting unit {unit}"), e)),
        };
        let job: OwnedObjectPath = reply
            .body()
            .deserialize()
            .map_err(|e| err(format_args!("starting unit {unit}"), e))?;
        if !self.wait_job(&job) {
            return Err(CgroupError::Systemd(format!(
                "timed out after {JOB_TIMEOUT:?} waiting for unit {unit} to start"
            )));
        }
        match self.active_state(unit)?.as_deref() {
            Some("active") => Ok(true),
            state => {
                let result = self
                    .unit_string(unit, "org.freedesktop.systemd1.Scope", "Result")
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                Err(CgroupError::Systemd(format!(
                    "unit {unit} did not start: state {}, result {result:?}",
                    state.unwrap_or("not loaded")
                )))
            }
        }
    }

    fn set_unit_properties(&self, unit: &str, props: &[Property]) -> Result<(), CgroupError> {
        if props.is_empty() {
            return Ok(());
        }
        self.call("SetUnitProperties", &(unit, true, to_dbus(props)))
            .map(drop)
            .map_err(|e| err(format_args!("setting properties of {unit}"), e))
    }

    fn stop_unit(&self, unit: &str) -> Result<(), CgroupError> {
        let reply = match self.call("StopUnit", &(unit, "replace")) {
            Ok(r) => r,
            Err(e) if error_name(&e) == Some("org.freedesktop.systemd1.NoSuchUnit") => {
                return Ok(());
            }
            Err(e) => return Err(err(format_args!("stopping unit {unit}"), e)),
        };
        let job: OwnedObjectPath = reply
            .body()
            .deserialize()
            .map_err(|e| err(format_args!("stopping unit {unit}"), e))?;
        if !self.wait_job(&job) {
            return Err(CgroupError::Systemd(format!(
                "timed out after {JOB_TIMEOUT:?} waiting for unit {unit} to stop"
            )));
        }
        Ok(())
    }

    fn reset_failed_unit(&self, unit: &str) -> Result<(), CgroupError> {
        match self.call("ResetFailedUnit", &(unit,)) {
            Ok(_) => Ok(()),
            Err(e) if error_name(&e) == Some("org.freedesktop.systemd1.NoSuchUnit") => Ok(()),
            Err(e) => Err(err(format_args!("resetting failed unit {unit}"), e)),
        }
    }

    fn active_state(&self, unit: &str) -> Result<Option<String>, CgroupError> {
        self.unit_string(unit, "org.freedesktop.systemd1.Unit", "ActiveState")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("252.38-1~deb12u1"), Some(252));
        assert_eq!(parse_version("v256"), Some(256));
        assert_eq!(parse_version("219"), Some(219));
        assert_eq!(parse_version("x"), None);
    }

    #[test]
    fn property_values_have_systemds_types() {
        use zbus::zvariant::DynamicType;
        let props: Vec<Property> = vec![
            ("Delegate", PropValue::Bool(true)),
            ("Slice", PropValue::Str("a.slice".into())),
            ("TasksMax", PropValue::U64(5)),
            ("PIDs", PropValue::U32s(vec![1])),
            ("AllowedCPUs", PropValue::Bytes(vec![3])),
        ];
        let sigs: Vec<String> = props
            .iter()
            .map(|(_, v)| to_value(v).value_signature().to_string())
            .collect();
        assert_eq!(sigs, ["b", "s", "t", "au", "ay"]);
        let aux: Vec<(&str, Vec<(&str, Value<'_>)>)> = Vec::new();
        let body = ("u", "replace", to_dbus(&props), aux);
        assert_eq!(body.signature().to_string(), "(ssa(sv)a(sa(sv)))");
    }

    #[test]
    fn no_bus_is_a_clear_error() {
        // This host has neither a system bus nor systemd; where it does, skip.
        if Path::new(SYSTEM_BUS_SOCKET).exists() || Path::new(PRIVATE_SOCKET).exists() {
            return;
        }
        let e = DbusSystemd::default().version().unwrap_err();
        assert!(
            e.to_string().contains("systemd: ")
                && e.to_string().contains("connecting to the system bus"),
            "{e}"
        );
    }
}
