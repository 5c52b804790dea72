//! The manager's sequencing against a fake systemd and a fake v2 tree: what goes to systemd,
//! what to cgroupfs, and when.

use std::path::Path;
use std::sync::{Arc, Mutex};

use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use super::super::testutil::{fake_v2, get};
use super::dbus::Systemd;
use super::props::{PropValue, Property};
use super::*;

#[derive(Debug, Default)]
struct FakeState {
    calls: Vec<String>,
    started_props: Vec<Property>,
    set_props: Vec<Property>,
    /// What start_transient_unit answers: true = started, false = UnitExists.
    exists: bool,
    state: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct Fake(Arc<Mutex<FakeState>>);

impl Fake {
    fn calls(&self) -> Vec<String> {
        self.0.lock().unwrap().calls.clone()
    }
}

impl Systemd for Fake {
    fn version(&self) -> Result<u32, CgroupError> {
        Ok(252)
    }
    fn start_transient_unit(&self, unit: &str, props: &[Property]) -> Result<bool, CgroupError> {
        let mut s = self.0.lock().unwrap();
        s.calls.push(format!("start {unit}"));
        s.started_props = props.to_vec();
        Ok(!s.exists)
    }
    fn set_unit_properties(&self, unit: &str, props: &[Property]) -> Result<(), CgroupError> {
        let mut s = self.0.lock().unwrap();
        s.calls.push(format!("set {unit}"));
        s.set_props = props.to_vec();
        Ok(())
    }
    fn stop_unit(&self, unit: &str) -> Result<(), CgroupError> {
        self.0.lock().unwrap().calls.push(format!("stop {unit}"));
        Ok(())
    }
    fn reset_failed_unit(&self, unit: &str) -> Result<(), CgroupError> {
        let mut s = self.0.lock().unwrap();
        s.calls.push(format!("reset {unit}"));
        s.exists = false;
        Ok(())
    }
    fn active_state(&self, _unit: &str) -> Result<Option<String>, CgroupError> {
        Ok(self.0.lock().unwrap().state.clone())
    }
}

const PATH: &str = "kubepods-burstable-pod1.slice:crius:c1";
const DIR: &str =
    "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/crius-c1.scope";

fn manager(root: &Path, fake: &Fake) -> SystemdManager {
    fake_v2(root, "cpu cpuset io memory pids");
    SystemdManager::with_systemd(PATH, root, CgroupVersion::V2, Box::new(fake.clone())).unwrap()
}

fn limits() -> LinuxResources {
    serde_json::from_value(serde_json::json!({
        "memory": {"limit": 67108864},
        "cpu": {"quota": 50000, "period": 100000, "cpus": "0"},
        "pids": {"limit": 20},
    }))
    .unwrap()
}

fn prop<'a>(p: &'a [Property], name: &str) -> Option<&'a PropValue> {
    p.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
}

#[test]
fn first_task_starts_the_scope_then_files_are_written() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let fake = Fake::default();
    let m = manager(root, &fake);
    m.create().unwrap();
    m.apply(&limits()).unwrap();
    // Nothing yet: a scope cannot exist without a process.
    assert!(fake.calls().is_empty());
    assert!(!root.join(DIR).exists());

    m.add_task(Pid::from_raw(4242)).unwrap();
    assert_eq!(fake.calls(), ["start crius-c1.scope"]);
    let st = fake.0.lock().unwrap();
    assert_eq!(
        prop(&st.started_props, "PIDs"),
        Some(&PropValue::U32s(vec![4242]))
    );
    assert_eq!(
        prop(&st.started_props, "MemoryMax"),
        Some(&PropValue::U64(67108864))
    );
    assert_eq!(
        prop(&st.started_props, "TasksMax"),
        Some(&PropValue::U64(20))
    );
    assert_eq!(
        prop(&st.started_props, "Slice"),
        Some(&PropValue::Str("kubepods-burstable-pod1.slice".into()))
    );
    drop(st);
    let dir = root.join(DIR);
    assert_eq!(get(&dir, "memory.max"), "67108864");
    assert_eq!(get(&dir, "cpu.max"), "50000 100000");
    assert_eq!(get(&dir, "pids.max"), "20");
    assert_eq!(get(&dir, "cpuset.cpus"), "0");
    assert_eq!(get(&dir, "cgroup.procs"), "4242");

    // A second process (exec) joins by path; systemd is not asked again.
    m.add_task(Pid::from_raw(4243)).unwrap();
    assert_eq!(fake.calls(), ["start crius-c1.scope"]);
    assert_eq!(get(&dir, "cgroup.procs"), "4243");

    // A fake tree's directories hold plain files, so only the sequence is checked here.
    let _ = m.destroy();
    assert_eq!(
        fake.calls(),
        [
            "start crius-c1.scope",
            "stop crius-c1.scope",
            "reset crius-c1.scope"
        ]
    );
}

#[test]
fn update_of_an_existing_container_sets_properties_and_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let fake = Fake::default();
    // The scope exists (made by systemd in real life).
    let first = manager(root, &fake);
    first.create().unwrap();
    first.add_task(Pid::from_raw(1)).unwrap();

    let fake2 = Fake::default();
    let m = SystemdManager::with_systemd(PATH, root, CgroupVersion::V2, Box::new(fake2.clone()))
        .unwrap();
    let r: LinuxResources =
        serde_json::from_value(serde_json::json!({"pids": {"limit": 7}})).unwrap();
    m.apply(&r).unwrap();
    assert_eq!(fake2.calls(), ["set crius-c1.scope"]);
    assert_eq!(
        fake2.0.lock().unwrap().set_props,
        vec![("TasksMax", PropValue::U64(7))]
    );
    assert_eq!(get(&root.join(DIR), "pids.max"), "7");
    assert_eq!(m.pids().unwrap(), vec![Pid::from_raw(1)]);
    assert_eq!(
        m.oom_source(),
        OomSource::V2 {
            memory_events: root.join(DIR).join("memory.events")
        }
    );
}

#[test]
fn an_existing_running_unit_is_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    {
        let mut s = fake.0.lock().unwrap();
        s.exists = true;
        s.state = Some("active".into());
    }
    let m = manager(tmp.path(), &fake);
    m.create().unwrap();
    m.add_task(Pid::from_raw(9)).unwrap();
    assert_eq!(fake.calls(), ["start crius-c1.scope"]);
}

#[test]
fn a_failed_leftover_is_reset_and_restarted() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    {
        let mut s = fake.0.lock().unwrap();
        s.exists = true;
        s.state = Some("failed".into());
    }
    let m = manager(tmp.path(), &fake);
    m.create().unwrap();
    m.add_task(Pid::from_raw(9)).unwrap();
    assert_eq!(
        fake.calls(),
        [
            "start crius-c1.scope",
            "reset crius-c1.scope",
            "start crius-c1.scope"
        ]
    );
}

#[test]
fn destroy_before_any_task_does_not_ask_systemd() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let m = manager(tmp.path(), &fake);
    m.create().unwrap();
    m.destroy().unwrap();
    assert!(fake.calls().is_empty());
}

#[test]
fn bad_resources_fail_before_systemd_is_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let m = manager(tmp.path(), &fake);
    m.create().unwrap();
    let r: LinuxResources =
        serde_json::from_value(serde_json::json!({"cpu": {"cpus": "1-0"}})).unwrap();
    m.apply(&r).unwrap();
    let e = m.add_task(Pid::from_raw(3)).unwrap_err();
    assert!(matches!(e, CgroupError::InvalidResource(_)), "{e}");
    assert!(fake.calls().is_empty());
    // The cleanup after a failed add_task asks systemd to stop whatever may exist.
    let _ = m.destroy();
    assert_eq!(
        fake.calls(),
        ["stop crius-c1.scope", "reset crius-c1.scope"]
    );
}

#[test]
fn v1_creates_its_own_hierarchies_up_front() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    super::super::testutil::fake_v1(root, &["cpuset", "freezer", "memory"]);
    let fake = Fake::default();
    let m = SystemdManager::with_systemd(PATH, root, CgroupVersion::V1, Box::new(fake.clone()))
        .unwrap();
    m.create().unwrap();
    assert!(root.join("freezer").join(DIR).is_dir());
    m.add_task(Pid::from_raw(5)).unwrap();
    assert_eq!(get(&root.join("freezer").join(DIR), "cgroup.procs"), "5");
    let st = fake.0.lock().unwrap();
    assert_eq!(
        prop(&st.started_props, "BlockIOAccounting"),
        Some(&PropValue::Bool(true))
    );
}
