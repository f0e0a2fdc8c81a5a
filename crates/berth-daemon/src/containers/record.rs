//! What the daemon records of a container: its config (fixed at create,
//! changed only by `update` and `rename`) and its run state (changed by
//! every lifecycle step). Both are stored whole, as JSON, in the
//! `containers` table, so each change is one atomic row update.

use berth_api::models::ContainerCreateBody;
use serde::{Deserialize, Serialize};

/// The container as created.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// The create request as the client sent it (with the image's
    /// defaults not merged in: `spec` merges them at start).
    pub create: ContainerCreateBody,
    /// The image as the client named it (`Config.Image`).
    pub image_name: String,
    /// Docker's `Path` and `Args` (entrypoint and command).
    pub path: String,
    pub args: Vec<String>,
    pub hostname: String,
    /// The OCI runtime's name (`berth-runtime` is the embedded one).
    pub runtime: String,
    /// Its volumes (named, anonymous, the image's) and what it inherited
    /// through `VolumesFrom`, named at create (docker's MountPoints).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mount_points: Vec<crate::volumes::MountPoint>,
    /// `network disconnect` took it off the network NetworkMode names
    /// (docker keeps NetworkMode; the container joins the rest).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub left_mode_network: bool,
    /// Created at API 1.44 or later: read-only binds whose request leaves
    /// their depth open are read-only on every submount (dockerd's default
    /// from 1.44), not on the top mount only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recursive_read_only: bool,
}

/// Docker's container states.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Has a live process (a shim serves it).
    pub fn is_live(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

/// The last recorded run state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    pub status: Status,
    /// The init's host pid while running.
    pub pid: u32,
    pub shim_pid: u32,
    pub exit_code: i32,
    /// Why the last start failed, if it did.
    pub error: String,
    pub oom_killed: bool,
    /// Nanoseconds since the epoch; 0 = never.
    pub started_at: u64,
    pub finished_at: u64,
    pub restart_count: u32,
    /// Stopped by the user (`stop`, `kill`): `unless-stopped` and
    /// `always` do not restart it until it is started again.
    pub manually_stopped: bool,
    /// State.Health while a healthcheck runs (and its last state after).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<super::health::Health>,
}

/// One exec instance (`POST /containers/{id}/exec`), kept in memory: docker
/// forgets them at restart too.
#[derive(Debug, Clone)]
pub struct ExecRecord {
    pub id: String,
    pub container_id: String,
    pub config: berth_api::models::ExecConfig,
    pub process: Option<oci_spec::runtime::Process>,
    pub running: bool,
    pub pid: u32,
    pub exit_code: Option<i32>,
}
