//! The emulated pods: each pod's container is a real local process on a real PTY whose output
//! fans out to every attach stream; `exec` processes get their own PTY, per stream.

use std::{
    collections::BTreeMap,
    io::{self, Read, Write},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    thread,
    time::Duration,
};

use bytes::Bytes;
use k8s_openapi::{
    api::core::v1::{
        Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
        ContainerStatus, Pod as KPod, PodSpec as KPodSpec, PodStatus,
    },
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
    jiff::Timestamp,
};
use portable_pty::{native_pty_system, ChildKiller, CommandBuilder, PtySize};
use tokio::sync::{broadcast, mpsc, watch};

use crate::cli::PodSpec;

/// Output chunks buffered per attach stream before a slow one starts losing output.
const ATTACH_BACKLOG: usize = 1024;
/// Queued stdin writes and resizes per PTY.
const INPUT_CAPACITY: usize = 64;
/// How long an exited process's remaining output may take to drain before the exit is reported.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);
/// Terminal size of a fresh PTY, until the first resize.
const DEFAULT_SIZE: (u16, u16) = (80, 24);

/// What a PTY produces, in order: output, then at most one exit.
#[derive(Debug, Clone)]
pub enum TtyEvent {
    /// Bytes read from the PTY master.
    Output(Bytes),
    /// The process exited with this code (signals map to 128 + signal number).
    Exited(i32),
}

/// What a stream asks of a PTY.
#[derive(Debug)]
pub enum TtyInput {
    /// Bytes for the terminal's input.
    Data(Bytes),
    /// New window size.
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
}

/// Where a PTY's output goes.
pub enum Sink {
    /// Shared by every attach stream of a pod; a lagging stream loses output, never blocks others.
    Broadcast(broadcast::Sender<TtyEvent>),
    /// A single exec stream; the PTY reader waits for it (back-pressure, like a real pipe).
    Channel(mpsc::Sender<TtyEvent>),
}

impl Sink {
    fn send(&self, ev: TtyEvent) -> bool {
        match self {
            Sink::Broadcast(tx) => {
                // No attached stream is fine: the container keeps running unobserved.
                let _ = tx.send(ev);
                true
            }
            Sink::Channel(tx) => tx.blocking_send(ev).is_ok(),
        }
    }
}

/// A process on its own PTY, driven by three threads (reader, writer, waiter).
pub struct PtyProcess {
    input: mpsc::Sender<TtyInput>,
    killer: Mutex<Box<dyn ChildKiller + Send + Sync>>,
    exited: Arc<AtomicBool>,
}

impl PtyProcess {
    /// Starts `argv` on a new PTY; output goes to `sink`, then `on_exit` runs with the exit code.
    pub fn spawn(
        argv: &[String],
        sink: Sink,
        on_exit: impl FnOnce(i32, &Sink) + Send + 'static,
    ) -> io::Result<Self> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
        let pair = native_pty_system()
            .openpty(size(DEFAULT_SIZE.0, DEFAULT_SIZE.1))
            .map_err(io::Error::other)?;
        let mut cmd = CommandBuilder::new(program);
        cmd.args(args);
        cmd.env("TERM", "xterm-256color");
        let mut child = pair.slave.spawn_command(cmd).map_err(io::Error::other)?;
        // The child holds the only slave fd now, so the master reads EOF/EIO once it is gone.
        drop(pair.slave);
        let master = pair.master;
        let mut reader = master.try_clone_reader().map_err(io::Error::other)?;
        let mut writer = master.take_writer().map_err(io::Error::other)?;
        let killer = child.clone_killer();
        let exited = Arc::new(AtomicBool::new(false));

        let (input_tx, mut input_rx) = mpsc::channel::<TtyInput>(INPUT_CAPACITY);
        thread::Builder::new()
            .name("pty-writer".into())
            .spawn(move || {
                while let Some(msg) = input_rx.blocking_recv() {
                    let result = match msg {
                        TtyInput::Data(data) => {
                            writer.write_all(&data).and_then(|()| writer.flush())
                        }
                        TtyInput::Resize { cols, rows } => {
                            master.resize(size(cols, rows)).map_err(io::Error::other)
                        }
                    };
                    if let Err(err) = result {
                        tracing::debug!(%err, "pty input dropped");
                    }
                }
                // Dropping the master here hangs the terminal up.
            })?;

        let sink = Arc::new(sink);
        let (drained_tx, drained_rx) = std::sync::mpsc::sync_channel::<()>(1);
        let reader_sink = Arc::clone(&sink);
        thread::Builder::new()
            .name("pty-reader".into())
            .spawn(move || {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let chunk = Bytes::copy_from_slice(&buf[..n]);
                            if !reader_sink.send(TtyEvent::Output(chunk)) {
                                break;
                            }
                        }
                    }
                }
                let _ = drained_tx.send(());
            })?;

        let exited_flag = Arc::clone(&exited);
        thread::Builder::new()
            .name("pty-waiter".into())
            .spawn(move || {
                let code = match child.wait() {
                    Ok(status) => exit_code(&status),
                    Err(_) => 1,
                };
                exited_flag.store(true, Ordering::SeqCst);
                // A background job may keep the slave open; do not wait for it forever.
                let _ = drained_rx.recv_timeout(DRAIN_AFTER_EXIT);
                on_exit(code, &sink);
            })?;

        Ok(Self {
            input: input_tx,
            killer: Mutex::new(killer),
            exited,
        })
    }

    /// Queues terminal input; waits while the PTY is not reading (bounded queue).
    pub async fn write(&self, input: TtyInput) -> bool {
        self.input.send(input).await.is_ok()
    }

    /// Hangs up and kills the process unless it already exited.
    pub fn kill(&self) {
        if self.exited.load(Ordering::SeqCst) {
            return;
        }
        let killer = self
            .killer
            .lock()
            .map(|k| k.clone_killer())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone_killer());
        // portable-pty escalates SIGHUP to SIGKILL with short sleeps; keep that off the runtime.
        let _ = thread::Builder::new()
            .name("pty-kill".into())
            .spawn(move || {
                let mut killer = killer;
                let _ = killer.kill();
            });
    }
}

impl Drop for PtyProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Wall-clock now (jiff's own `now` needs a feature k8s-openapi does not enable).
fn now() -> Timestamp {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_second(i64::try_from(since.as_secs()).unwrap_or(0))
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

fn size(cols: u16, rows: u16) -> PtySize {
    PtySize {
        rows,
        cols,
        pixel_width: 0,
        pixel_height: 0,
    }
}

/// Maps a portable-pty exit status to the code a container runtime would report.
fn exit_code(status: &portable_pty::ExitStatus) -> i32 {
    match status.signal() {
        None => i32::try_from(status.exit_code()).unwrap_or(255),
        Some(name) => {
            let signo = match name {
                "Hangup" => 1,
                "Interrupt" => 2,
                "Quit" => 3,
                "Aborted" => 6,
                "Killed" => 9,
                "Segmentation fault" => 11,
                "Terminated" => 15,
                _ => 0,
            };
            128 + signo
        }
    }
}

/// Lifecycle of an emulated pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodState {
    /// The main process runs.
    Running,
    /// The main process exited with this code (the pod is `Succeeded` or `Failed`).
    Exited(i32),
    /// The pod was deleted; its streams close without a status.
    Deleted,
}

/// One emulated pod.
pub struct Pod {
    /// Name, container and labels as declared.
    pub spec: PodSpec,
    /// Namespace the pod lives in.
    pub namespace: String,
    uid: String,
    created: Timestamp,
    shell: Vec<String>,
    state: watch::Sender<PodState>,
    output: broadcast::Sender<TtyEvent>,
    main: PtyProcess,
}

impl Pod {
    fn start(spec: PodSpec, namespace: &str, shell: &[String], serial: u64) -> io::Result<Self> {
        let (output, _) = broadcast::channel(ATTACH_BACKLOG);
        let (state, _) = watch::channel(PodState::Running);
        let exit_state = state.clone();
        let main = PtyProcess::spawn(shell, Sink::Broadcast(output.clone()), move |code, sink| {
            // State first, event second: a stream that subscribes in between sees the state.
            exit_state.send_if_modified(|s| {
                let running = *s == PodState::Running;
                if running {
                    *s = PodState::Exited(code);
                }
                running
            });
            sink.send(TtyEvent::Exited(code));
        })?;
        Ok(Self {
            spec,
            namespace: namespace.to_owned(),
            uid: format!("00000000-0000-4000-8000-{serial:012x}"),
            created: now(),
            shell: shell.to_vec(),
            state,
            output,
            main,
        })
    }

    /// Current lifecycle state.
    pub fn state(&self) -> PodState {
        *self.state.borrow()
    }

    /// `status.phase` as the API reports it.
    pub fn phase(&self) -> &'static str {
        match self.state() {
            PodState::Running => "Running",
            PodState::Exited(0) => "Succeeded",
            PodState::Exited(_) => "Failed",
            // Deleted pods are no longer served; this only shows in the DELETE response.
            PodState::Deleted => "Running",
        }
    }

    /// The container's main process (argv).
    pub fn command(&self) -> &[String] {
        &self.shell
    }

    /// Subscribes to the shared TTY output and to state changes (subscribe, then read the state).
    pub fn subscribe(&self) -> (broadcast::Receiver<TtyEvent>, watch::Receiver<PodState>) {
        (self.output.subscribe(), self.state.subscribe())
    }

    /// Watches state changes only (exec streams end when the pod is deleted).
    pub fn watch_state(&self) -> watch::Receiver<PodState> {
        self.state.subscribe()
    }

    /// Sends input to the container's TTY (shared by every attach stream).
    pub async fn write(&self, input: TtyInput) -> bool {
        self.main.write(input).await
    }

    /// The pod as Kubernetes JSON would describe it.
    pub fn to_k8s(&self) -> KPod {
        let state = self.state();
        let container_state = match state {
            PodState::Exited(code) => ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: code,
                    reason: Some(if code == 0 { "Completed" } else { "Error" }.into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            _ => ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(Time(self.created)),
                }),
                ..Default::default()
            },
        };
        KPod {
            metadata: ObjectMeta {
                name: Some(self.spec.name.clone()),
                namespace: Some(self.namespace.clone()),
                uid: Some(self.uid.clone()),
                labels: Some(self.spec.labels.clone()),
                creation_timestamp: Some(Time(self.created)),
                resource_version: Some("1".into()),
                deletion_timestamp: (state == PodState::Deleted).then(|| Time(now())),
                ..Default::default()
            },
            spec: Some(KPodSpec {
                containers: vec![Container {
                    name: self.spec.container.clone(),
                    image: Some("kube-emu.local/shell".into()),
                    command: Some(self.shell.clone()),
                    stdin: Some(true),
                    tty: Some(true),
                    ..Default::default()
                }],
                restart_policy: Some("Never".into()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(self.phase().into()),
                start_time: Some(Time(self.created)),
                container_statuses: Some(vec![ContainerStatus {
                    name: self.spec.container.clone(),
                    image: "kube-emu.local/shell".into(),
                    image_id: String::new(),
                    ready: state == PodState::Running,
                    restart_count: 0,
                    started: Some(state == PodState::Running),
                    state: Some(container_state),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn delete(&self) {
        self.state.send_replace(PodState::Deleted);
        self.main.kill();
    }
}

/// All pods of the emulated cluster.
pub struct Registry {
    pods: Mutex<BTreeMap<(String, String), Arc<Pod>>>,
    serial: AtomicU64,
}

impl Registry {
    /// Starts one main process per declared pod, all in `namespace`.
    pub fn start(namespace: &str, specs: Vec<PodSpec>, shell: &[String]) -> io::Result<Self> {
        let registry = Self {
            pods: Mutex::new(BTreeMap::new()),
            serial: AtomicU64::new(1),
        };
        for spec in specs {
            let serial = registry.serial.fetch_add(1, Ordering::Relaxed);
            let key = (namespace.to_owned(), spec.name.clone());
            let pod = Pod::start(spec, namespace, shell, serial)?;
            registry.lock().insert(key, Arc::new(pod));
        }
        Ok(registry)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Arc<Pod>>> {
        self.pods
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The pod `name` in `namespace`, if it exists.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        self.lock()
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Pods of `namespace` (all namespaces when `None`), by name.
    pub fn list(&self, namespace: Option<&str>) -> Vec<Arc<Pod>> {
        self.lock()
            .iter()
            .filter(|((ns, _), _)| namespace.is_none_or(|want| want == ns))
            .map(|(_, pod)| Arc::clone(pod))
            .collect()
    }

    /// Removes the pod, kills its processes and closes its streams.
    pub fn delete(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        let pod = self
            .lock()
            .remove(&(namespace.to_owned(), name.to_owned()))?;
        pod.delete();
        Some(pod)
    }

    /// Deletes every pod (emulator shutdown).
    pub fn shutdown(&self) {
        let pods = std::mem::take(&mut *self.lock());
        for pod in pods.values() {
            pod.delete();
        }
    }
}
