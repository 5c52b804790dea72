//! Work a reply need not wait for — RemoveContainer's directories and record — run on a
//! blocking thread after the reply, as containerd's snapshotter removes a container's
//! directories after its metadata. Tracked by pod, so that RemovePodSandbox, and a daemon
//! stopping cleanly, finish it first: a removed pod leaves nothing behind. A crash before it
//! ends leaves the container's record marked `Removing`, and start-up finishes the removal.

use std::sync::Mutex;

use tokio::task::JoinHandle;

use super::lock;

#[derive(Default)]
pub struct Deferred {
    /// (pod id, task), oldest first; finished tasks are dropped as new ones come.
    tasks: Mutex<Vec<(String, JoinHandle<()>)>>,
}

impl Deferred {
    /// Runs `work` on a blocking thread, on behalf of pod `sandbox_id`.
    pub fn spawn(&self, sandbox_id: &str, work: impl FnOnce() + Send + 'static) {
        let task = tokio::task::spawn_blocking(work);
        let mut tasks = lock(&self.tasks);
        tasks.retain(|(_, task)| !task.is_finished());
        tasks.push((sandbox_id.to_owned(), task));
    }

    /// Waits for the work done on behalf of `sandbox_id` (`None`: of every pod).
    pub async fn finish(&self, sandbox_id: Option<&str>) {
        let mine: Vec<JoinHandle<()>> = {
            let mut tasks = lock(&self.tasks);
            let (mine, rest) = std::mem::take(&mut *tasks)
                .into_iter()
                .partition(|(pod, _)| sandbox_id.is_none_or(|id| id == pod));
            *tasks = rest;
            mine.into_iter().map(|(_, task)| task).collect()
        };
        for task in mine {
            if let Err(e) = task.await {
                tracing::error!("work deferred past a reply failed: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn finish_waits_for_one_pods_work_only() {
        let deferred = Deferred::default();
        let done = Arc::new(AtomicUsize::new(0));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let d = done.clone();
        deferred.spawn("a", move || {
            std::thread::sleep(Duration::from_millis(50));
            d.fetch_add(1, Ordering::SeqCst);
        });
        let d = done.clone();
        deferred.spawn("b", move || {
            let _ = hold.recv();
            d.fetch_add(10, Ordering::SeqCst);
        });
        deferred.finish(Some("a")).await;
        assert_eq!(
            done.load(Ordering::SeqCst),
            1,
            "a's work done, b's still held"
        );
        release.send(()).unwrap();
        deferred.finish(None).await;
        assert_eq!(done.load(Ordering::SeqCst), 11);
        assert!(lock(&deferred.tasks).is_empty());
    }
}
