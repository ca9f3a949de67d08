//! The DAG Tracker's journal records and snapshot.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::graph::{Core, DepKind, NodeState, TypeStat};
use crate::{ArtifactId, Micros};

/// Bytes serialized as one postcard byte string (length + raw bytes), read back as an owned
/// vector (postcard encodes a sequence of `u8` identically).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Raw<'a>(pub Cow<'a, [u8]>);

impl Serialize for Raw<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Raw<'_> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Raw(Cow::Owned(Vec::<u8>::deserialize(d)?)))
    }
}

/// One mutation. Workflows are named by their number (assigned in creation order), nodes by
/// their index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Rec<'a> {
    Create {
        name: Cow<'a, str>,
    },
    Drop {
        wf: u32,
    },
    AddNodes {
        wf: u32,
        names: Vec<Cow<'a, str>>,
        node_type: Option<Cow<'a, str>>,
        estimate: Option<f64>,
        at: Micros,
    },
    AddEdges {
        wf: u32,
        kind: DepKind,
        edges: Cow<'a, [(u32, u32)]>,
        at: Micros,
    },
    AddAlternative {
        wf: u32,
        node: u32,
        alt: u32,
        at: Micros,
    },
    Transition {
        wf: u32,
        node: u32,
        state: NodeState,
        at: Micros,
        duration: Option<f64>,
    },
    /// Node indexes as little-endian u32, all moved to `state` in order.
    Batch {
        wf: u32,
        state: NodeState,
        at: Micros,
        nodes: Raw<'a>,
    },
    Reset {
        wf: u32,
        node: u32,
        at: Micros,
    },
    Checkpoint {
        wf: u32,
    },
    Rollback {
        wf: u32,
        id: u32,
        at: Micros,
    },
    DropCheckpoint {
        wf: u32,
        id: u32,
    },
    SetEstimate {
        wf: u32,
        node: u32,
        estimate: Option<f64>,
    },
    Bind {
        wf: u32,
        node: u32,
        artifact: ArtifactId,
    },
    Unbind {
        wf: u32,
        node: u32,
        artifact: ArtifactId,
    },
}

/// A workflow in a snapshot (borrowed for writing).
#[derive(Serialize)]
pub(crate) struct WfSnapRef<'a> {
    pub name: &'a str,
    pub core: &'a Core,
    pub checkpoints: &'a [(u32, Core)],
    pub next_checkpoint: u32,
}

/// A workflow read from a snapshot.
#[derive(Deserialize)]
pub(crate) struct WfSnap {
    pub name: String,
    pub core: Core,
    pub checkpoints: Vec<(u32, Core)>,
    pub next_checkpoint: u32,
}

/// The snapshot (borrowed for writing).
#[derive(Serialize)]
pub(crate) struct SnapRef<'a> {
    pub version: u32,
    pub workflows: Vec<Option<WfSnapRef<'a>>>,
    pub types: &'a [TypeStat],
}

/// The snapshot as read.
#[derive(Deserialize)]
pub(crate) struct Snap {
    pub version: u32,
    pub workflows: Vec<Option<WfSnap>>,
    pub types: Vec<TypeStat>,
}

/// Format version of the snapshot.
pub(crate) const SNAPSHOT_VERSION: u32 = 1;
