//! ResourceSlices (`resource.k8s.io/v1`) of one node, and publishing them.
//!
//! A node's devices form one pool named after the node. A slice holds at
//! most [`MAX_DEVICES_PER_SLICE`] devices (the API's limit), so the pool is
//! split into `ceil(devices / 128)` slices (one empty slice when there are
//! no devices: an empty pool is not the same as no pool). Every slice of a
//! pool carries the pool's `generation` and `resourceSliceCount`; when
//! anything changes the generation goes up by one and every slice is
//! rewritten, so the scheduler never mixes two versions of the pool.
//!
//! `k8s-openapi` 0.29 with the workspace's `v1_33` feature has no
//! `resource.k8s.io/v1` types; `v1beta2`'s `ResourceSliceSpec` has the same
//! shape as `v1`'s (no `basic` wrapper), so [`ResourceSlice`] is that spec
//! under `apiVersion: resource.k8s.io/v1`.
//!
//! [`publish`] reconciles the node's slices through a [`SliceStore`]: the
//! API server ([`KubeStore`]) or memory ([`MemoryStore`], tests and
//! benchmarks).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Mutex;

use k8s_openapi::api::resource::v1beta2::{
    Device, DeviceAttribute, ResourcePool, ResourceSliceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::attributes::{PublishedDevice, Value};

/// The API's limit of devices in one slice.
pub const MAX_DEVICES_PER_SLICE: usize = 128;

/// A `resource.k8s.io/v1` ResourceSlice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSlice {
    #[serde(default = "api_version")]
    pub api_version: String,
    #[serde(default = "kind")]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: ResourceSliceSpec,
}

fn api_version() -> String {
    <ResourceSlice as k8s_openapi::Resource>::API_VERSION.into()
}
fn kind() -> String {
    <ResourceSlice as k8s_openapi::Resource>::KIND.into()
}

impl k8s_openapi::Resource for ResourceSlice {
    const API_VERSION: &'static str = "resource.k8s.io/v1";
    const GROUP: &'static str = "resource.k8s.io";
    const KIND: &'static str = "ResourceSlice";
    const VERSION: &'static str = "v1";
    const URL_PATH_SEGMENT: &'static str = "resourceslices";
    type Scope = k8s_openapi::ClusterResourceScope;
}

impl k8s_openapi::ListableResource for ResourceSlice {
    const LIST_KIND: &'static str = "ResourceSliceList";
}

impl k8s_openapi::Metadata for ResourceSlice {
    type Ty = ObjectMeta;
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The name of slice `index` of a node's pool: `<node>-<driver>-<index>`
/// with the driver's dots made dashes, cut to the 253 characters of a name.
pub fn slice_name(node: &str, driver: &str, index: usize) -> String {
    let mut n = format!("{node}-{}-{index}", driver.replace('.', "-"));
    n.truncate(253);
    n
}

fn attribute(v: &Value) -> DeviceAttribute {
    match v {
        Value::String(s) => DeviceAttribute {
            string: Some(s.clone()),
            ..Default::default()
        },
        Value::Int(i) => DeviceAttribute {
            int: Some(*i),
            ..Default::default()
        },
        Value::Bool(b) => DeviceAttribute {
            bool: Some(*b),
            ..Default::default()
        },
    }
}

/// The slices of a node's pool at `generation` (see the module docs).
pub fn build(
    driver: &str,
    node: &str,
    devices: &[PublishedDevice],
    generation: i64,
) -> Vec<ResourceSlice> {
    let chunks: Vec<&[PublishedDevice]> = if devices.is_empty() {
        vec![&[]]
    } else {
        devices.chunks(MAX_DEVICES_PER_SLICE).collect()
    };
    let count = chunks.len() as i64;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| ResourceSlice {
            api_version: api_version(),
            kind: kind(),
            metadata: ObjectMeta {
                name: Some(slice_name(node, driver, i)),
                ..Default::default()
            },
            spec: ResourceSliceSpec {
                driver: driver.to_string(),
                node_name: Some(node.to_string()),
                pool: ResourcePool {
                    name: node.to_string(),
                    generation,
                    resource_slice_count: count,
                },
                devices: Some(
                    chunk
                        .iter()
                        .map(|d| Device {
                            name: d.name.clone(),
                            attributes: Some(
                                d.attributes
                                    .iter()
                                    .map(|(k, v)| (k.clone(), attribute(v)))
                                    .collect(),
                            ),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            },
        })
        .collect()
}

/// Where slices live.
#[allow(async_fn_in_trait)]
pub trait SliceStore {
    /// The slices of `driver` on `node`.
    async fn list(&self, driver: &str, node: &str) -> Result<Vec<ResourceSlice>, kube::Error>;
    /// Creates a slice, or replaces the one of the same name.
    async fn apply(&self, slice: &ResourceSlice) -> Result<(), kube::Error>;
    /// Deletes a slice by name (absent is fine).
    async fn delete(&self, name: &str) -> Result<(), kube::Error>;
}

/// What [`publish`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The pool generation now published.
    pub generation: i64,
    pub slices: usize,
    /// Slices written (0 when nothing changed).
    pub written: usize,
    pub deleted: usize,
}

/// The parts of a slice a change shows in.
fn content(s: &ResourceSlice) -> (Option<&String>, i64, &Option<Vec<Device>>) {
    (
        s.metadata.name.as_ref(),
        s.spec.pool.resource_slice_count,
        &s.spec.devices,
    )
}

/// Publishes `devices` as the node's pool: nothing is written when the
/// published slices already hold exactly these devices in one generation;
/// otherwise every slice is written at the next generation, then slices
/// beyond the new count are deleted.
pub async fn publish(
    store: &impl SliceStore,
    driver: &str,
    node: &str,
    devices: &[PublishedDevice],
) -> Result<Published, kube::Error> {
    let mut existing = store.list(driver, node).await?;
    existing.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let current_gen = existing.iter().map(|s| s.spec.pool.generation).max();
    let one_gen = existing
        .iter()
        .all(|s| Some(s.spec.pool.generation) == current_gen);
    let same = |desired: &[ResourceSlice]| {
        let mut d: Vec<_> = desired.iter().map(content).collect();
        let mut e: Vec<_> = existing.iter().map(content).collect();
        d.sort_by(|a, b| a.0.cmp(&b.0));
        e.sort_by(|a, b| a.0.cmp(&b.0));
        d == e
    };
    if let Some(g) = current_gen {
        let desired = build(driver, node, devices, g);
        if one_gen && same(&desired) {
            return Ok(Published {
                generation: g,
                slices: desired.len(),
                written: 0,
                deleted: 0,
            });
        }
    }
    let generation = current_gen.map_or(1, |g| g + 1);
    let desired = build(driver, node, devices, generation);
    for s in &desired {
        store.apply(s).await?;
    }
    let keep: Vec<&String> = desired
        .iter()
        .filter_map(|s| s.metadata.name.as_ref())
        .collect();
    let mut deleted = 0;
    for s in &existing {
        if let Some(n) = &s.metadata.name
            && !keep.contains(&n)
        {
            store.delete(n).await?;
            deleted += 1;
        }
    }
    Ok(Published {
        generation,
        slices: desired.len(),
        written: desired.len(),
        deleted,
    })
}

/// Slices in memory (tests, benchmarks).
#[derive(Debug, Default)]
pub struct MemoryStore {
    pub slices: Mutex<BTreeMap<String, ResourceSlice>>,
}

impl SliceStore for MemoryStore {
    async fn list(&self, driver: &str, node: &str) -> Result<Vec<ResourceSlice>, kube::Error> {
        Ok(self
            .slices
            .lock()
            .expect("poisoned")
            .values()
            .filter(|s| s.spec.driver == driver && s.spec.node_name.as_deref() == Some(node))
            .cloned()
            .collect())
    }
    async fn apply(&self, slice: &ResourceSlice) -> Result<(), kube::Error> {
        let name = slice.metadata.name.clone().unwrap_or_default();
        self.slices
            .lock()
            .expect("poisoned")
            .insert(name, slice.clone());
        Ok(())
    }
    async fn delete(&self, name: &str) -> Result<(), kube::Error> {
        self.slices.lock().expect("poisoned").remove(name);
        Ok(())
    }
}

/// Slices on the API server.
#[derive(Clone)]
pub struct KubeStore {
    api: kube::Api<ResourceSlice>,
}

impl KubeStore {
    pub fn new(client: kube::Client) -> Self {
        Self {
            api: kube::Api::all(client),
        }
    }
}

impl SliceStore for KubeStore {
    async fn list(&self, driver: &str, node: &str) -> Result<Vec<ResourceSlice>, kube::Error> {
        let lp = kube::api::ListParams::default()
            .fields(&format!("spec.nodeName={node},spec.driver={driver}"));
        Ok(self.api.list(&lp).await?.items)
    }
    async fn apply(&self, slice: &ResourceSlice) -> Result<(), kube::Error> {
        let name = slice.metadata.name.as_deref().unwrap_or_default();
        let pp = kube::api::PatchParams::apply("sriov-dra-driver").force();
        self.api
            .patch(name, &pp, &kube::api::Patch::Apply(Cow::Borrowed(slice)))
            .await?;
        Ok(())
    }
    async fn delete(&self, name: &str) -> Result<(), kube::Error> {
        match self.api.delete(name, &Default::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sriov_host::PciAddress;

    fn devs(n: u32) -> Vec<PublishedDevice> {
        (0..n)
            .map(|i| {
                let a = PciAddress::new(
                    0,
                    0x10 + (i / 256) as u8,
                    ((i % 256) / 8) as u8,
                    (i % 8) as u8,
                )
                .unwrap();
                PublishedDevice {
                    name: crate::attributes::device_name(&a),
                    address: a,
                    attributes: [(
                        "resource.kubernetes.io/pciBusID".to_string(),
                        Value::String(a.to_string()),
                    )]
                    .into(),
                }
            })
            .collect()
    }

    #[test]
    fn split_at_128_with_one_generation_and_count() {
        let s = build("d.example.com", "n1", &devs(300), 7);
        assert_eq!(s.len(), 3);
        let sizes: Vec<usize> = s
            .iter()
            .map(|s| s.spec.devices.as_ref().unwrap().len())
            .collect();
        assert_eq!(sizes, vec![128, 128, 44]);
        assert!(
            s.iter()
                .all(|s| s.spec.pool.generation == 7 && s.spec.pool.resource_slice_count == 3)
        );
        assert!(
            s.iter()
                .all(|s| s.spec.pool.name == "n1" && s.spec.node_name.as_deref() == Some("n1"))
        );
        assert_eq!(s[2].metadata.name.as_deref(), Some("n1-d-example-com-2"));
        // No devices: one empty slice.
        let e = build("d", "n1", &[], 1);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].spec.devices.as_ref().unwrap().len(), 0);
    }

    #[test]
    fn serializes_as_resource_k8s_io_v1() {
        let s = &build("d", "n1", &devs(1), 1)[0];
        let v = serde_json::to_value(s).unwrap();
        assert_eq!(v["apiVersion"], "resource.k8s.io/v1");
        assert_eq!(v["kind"], "ResourceSlice");
        assert_eq!(v["spec"]["pool"]["resourceSliceCount"], 1);
        assert_eq!(
            v["spec"]["devices"][0]["attributes"]["resource.kubernetes.io/pciBusID"]["string"],
            "0000:10:00.0"
        );
        assert!(v["spec"]["devices"][0].get("basic").is_none());
        let back: ResourceSlice = serde_json::from_value(v).unwrap();
        assert_eq!(&back, s);
    }

    #[tokio::test]
    async fn publish_bumps_the_generation_only_on_change_and_deletes_extra_slices() {
        let store = MemoryStore::default();
        let p = publish(&store, "d", "n1", &devs(300)).await.unwrap();
        assert_eq!((p.generation, p.slices, p.written, p.deleted), (1, 3, 3, 0));
        let p = publish(&store, "d", "n1", &devs(300)).await.unwrap();
        assert_eq!(
            (p.generation, p.written),
            (1, 0),
            "unchanged: nothing written"
        );
        let p = publish(&store, "d", "n1", &devs(100)).await.unwrap();
        assert_eq!((p.generation, p.slices, p.written, p.deleted), (2, 1, 1, 2));
        let all = store.slices.lock().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(
            all.values().next().unwrap().spec.pool.resource_slice_count,
            1
        );
    }

    #[tokio::test]
    async fn other_nodes_and_drivers_are_left_alone() {
        let store = MemoryStore::default();
        publish(&store, "d", "n2", &devs(10)).await.unwrap();
        publish(&store, "other", "n1", &devs(10)).await.unwrap();
        let p = publish(&store, "d", "n1", &devs(0)).await.unwrap();
        assert_eq!((p.generation, p.slices), (1, 1));
        assert_eq!(store.slices.lock().unwrap().len(), 3);
    }
}
